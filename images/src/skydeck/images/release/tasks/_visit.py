"""measureVisit: detection and measurement on one visit image -> ``sourceTable``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lsst.pex.config import Field
from lsst.pipe.base import (
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    Struct,
)
from lsst.pipe.base import connectionTypes as cT

from skydeck.images.release import _measure as m
from skydeck.images.release._geometry import ccd_visit_id


class MeasureVisitConnections(
    PipelineTaskConnections, dimensions=("instrument", "visit", "detector")
):
    visit_image = cT.Input(
        doc="Calibrated visit image (nJy) with variance and mask.",
        name="visit_image",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "visit", "detector"),
    )
    sources = cT.Output(
        doc="Sources detected and measured on the visit image (DP0.2 Source columns).",
        name="sourceTable",
        storageClass="DataFrame",
        dimensions=("instrument", "visit", "detector"),
    )


class MeasureVisitTaskConfig(PipelineTaskConfig, pipelineConnections=MeasureVisitConnections):
    threshold = Field[float](doc="Detection threshold (PSF-filtered S/N).", default=5.0)
    fit_radius_fwhm = Field[float](doc="PSF-fit stamp half-size in units of FWHM.", default=2.5)


def bad_pixels(masked: Any) -> np.ndarray:
    """Pixels excluded from measurement: BAD, SAT and NO_DATA."""
    mask = masked.mask
    bad = np.zeros(masked.image.array.shape, dtype=bool)
    for plane in ("BAD", "SAT", "NO_DATA"):
        bad |= mask.get(plane)
    return bad


class MeasureVisitTask(PipelineTask):
    """Detect sources above a PSF-filtered S/N threshold and measure them."""

    ConfigClass = MeasureVisitTaskConfig
    _DefaultName = "measureVisit"
    config: MeasureVisitTaskConfig

    def run(self, visit_image: Any) -> Struct:
        md = visit_image.metadata
        visit, detector, band = int(md["VISIT"]), int(md["DETECTOR"]), str(md["BAND"])
        fwhm_pix = float(md["PSF_FWHM"]) / float(md["PIXSCALE"])
        psf = m.moffat(fwhm_pix, float(md["PSF_BETA"]))
        sigma = m.psf_sigma(fwhm_pix)
        image = visit_image.image.array
        var = visit_image.variance.array
        bad = bad_pixels(visit_image)
        mask_get = m.cached_planes(visit_image.mask.get)
        peaks, _ = m.detect(image, var, bad, sigma, self.config.threshold)
        radius = int(np.ceil(self.config.fit_radius_fwhm * fwhm_pix))
        wcs = visit_image.fits_wcs
        ccdvisit = ccd_visit_id(visit, detector)
        rows = []
        for k, peak in enumerate(peaks):
            x, y, xerr, yerr, cflag = m.centroid(image, var, bad, peak.x, peak.y, sigma)
            flux, err, pflag = m.psf_flux(image, var, bad, psf, x, y, radius)
            ap9, ap9err, apflag = m.aperture_flux(image, var, x, y, 9.0)
            row = {
                "sourceId": (ccdvisit << 16) + k + 1,
                "ccdVisitId": ccdvisit,
                "visit": visit,
                "detector": detector,
                "band": band,
                "x": x,
                "y": y,
                "xErr": xerr,
                "yErr": yerr,
                "centroid_flag": cflag,
                "psfFlux": flux,
                "psfFluxErr": err,
                "psfFlux_flag": pflag,
                "ap09Flux": ap9,
                "ap09FluxErr": ap9err,
                "ap09Flux_flag": apflag,
                "footprintArea_value": peak.area,
            }
            row.update(m.pixel_flags(mask_get, x, y, 2))
            rows.append(row)
        table = pd.DataFrame(rows, columns=_SOURCE_COLUMNS)
        if len(table):
            ra, dec = wcs.all_pix2world(table["x"].to_numpy(), table["y"].to_numpy(), 0)
            table["coord_ra"], table["coord_dec"] = ra, dec
        table["detect_isPrimary"] = ~table["centroid_flag"].astype(bool)
        return Struct(sources=table.astype(_SOURCE_DTYPES))


_SOURCE_DTYPES: dict[str, Any] = {
    "sourceId": "int64",
    "coord_ra": "float64",
    "coord_dec": "float64",
    "ccdVisitId": "int64",
    "visit": "int64",
    "detector": "int64",
    "band": "object",
    "x": "float64",
    "y": "float64",
    "xErr": "float64",
    "yErr": "float64",
    "centroid_flag": "bool",
    "psfFlux": "float64",
    "psfFluxErr": "float64",
    "psfFlux_flag": "bool",
    "ap09Flux": "float64",
    "ap09FluxErr": "float64",
    "ap09Flux_flag": "bool",
    "footprintArea_value": "int64",
    "pixelFlags_bad": "bool",
    "pixelFlags_saturated": "bool",
    "pixelFlags_saturatedCenter": "bool",
    "pixelFlags_edge": "bool",
    "detect_isPrimary": "bool",
}
_SOURCE_COLUMNS = list(_SOURCE_DTYPES)
