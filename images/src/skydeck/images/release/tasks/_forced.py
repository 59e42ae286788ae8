"""forcedPhotVisit (-> forcedSourceTable) and writeObjectTable (-> objectTable).

Forced photometry fits the visit's known PSF at every Object position on every
visit image that contains it. The Object table's ``<band>_psfFlux`` is the
inverse-variance weighted mean of those forced fluxes in the band (a multi-epoch
PSF fit with fixed position: statistically equivalent to fitting the coadd, but
with exact errors because the visit pixels are uncorrelated); the coadd-based
PSF fit is kept as ``<band>_free_psfFlux`` and drives extendedness.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lsst.pex.config import Field
from lsst.pipe.base import PipelineTask, PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from skydeck.images.release import _measure as m
from skydeck.images.release._config import BANDS
from skydeck.images.release._geometry import ccd_visit_id
from skydeck.images.release.tasks._visit import bad_pixels


class ForcedPhotVisitConnections(
    PipelineTaskConnections, dimensions=("instrument", "visit", "detector", "skymap", "tract")
):
    visit_image = cT.Input(
        doc="Calibrated visit image.",
        name="visit_image",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "visit", "detector"),
    )
    references = cT.Input(
        doc="Coadd measurements of the patches overlapping the visit image.",
        name="deepCoadd_meas",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
        multiple=True,
    )
    forced = cT.Output(
        doc="Forced PSF photometry at Object positions (DP0.2 ForcedSource columns).",
        name="forcedSourceTable",
        storageClass="DataFrame",
        dimensions=("instrument", "visit", "detector", "skymap", "tract"),
    )


class ForcedPhotVisitTaskConfig(PipelineTaskConfig, pipelineConnections=ForcedPhotVisitConnections):
    fit_radius_fwhm = Field[float](doc="PSF-fit stamp half-size in units of FWHM.", default=2.5)
    edge_margin = Field[int](
        doc="Skip positions closer than this to the image edge (pixels).", default=4
    )


class ForcedPhotVisitTask(PipelineTask):
    """PSF photometry at fixed Object positions on one visit image."""

    ConfigClass = ForcedPhotVisitTaskConfig
    _DefaultName = "forcedPhotVisit"
    config: ForcedPhotVisitTaskConfig

    def run(self, visit_image: Any, references: list[pd.DataFrame]) -> Struct:
        md = visit_image.metadata
        visit, detector, band = int(md["VISIT"]), int(md["DETECTOR"]), str(md["BAND"])
        fwhm_pix = float(md["PSF_FWHM"]) / float(md["PIXSCALE"])
        psf = m.moffat(fwhm_pix, float(md["PSF_BETA"]))
        radius = int(np.ceil(self.config.fit_radius_fwhm * fwhm_pix))
        refs = [r for r in references if len(r)]
        ref = pd.concat(refs, ignore_index=True) if refs else pd.DataFrame()
        image = visit_image.image.array
        var = visit_image.variance.array
        bad = bad_pixels(visit_image)
        mask_get = m.cached_planes(visit_image.mask.get)
        ny, nx = image.shape
        ccdvisit = ccd_visit_id(visit, detector)
        rows: list[dict[str, Any]] = []
        if len(ref):
            xs, ys = visit_image.fits_wcs.all_world2pix(
                ref["coord_ra"].to_numpy(), ref["coord_dec"].to_numpy(), 0
            )
            e = self.config.edge_margin
            keep = (xs >= e) & (xs <= nx - 1 - e) & (ys >= e) & (ys <= ny - 1 - e)
            cols = {
                name: ref[name].to_numpy()
                for name in (
                    "objectId",
                    "coord_ra",
                    "coord_dec",
                    "skymap",
                    "tract",
                    "patch",
                    "detect_isPatchInner",
                    "detect_isPrimary",
                    "detect_isTractInner",
                )
            }
            for k in np.nonzero(keep)[0]:
                flux, err, flag = m.psf_flux(
                    image, var, bad, psf, float(xs[k]), float(ys[k]), radius
                )
                row = {
                    "forcedSourceId": (ccdvisit << 20) + len(rows) + 1,
                    "objectId": int(cols["objectId"][k]),
                    "coord_ra": float(cols["coord_ra"][k]),
                    "coord_dec": float(cols["coord_dec"][k]),
                    "skymap": str(cols["skymap"][k]),
                    "tract": int(cols["tract"][k]),
                    "patch": int(cols["patch"][k]),
                    "band": band,
                    "ccdVisitId": ccdvisit,
                    "detect_isPatchInner": bool(cols["detect_isPatchInner"][k]),
                    "detect_isPrimary": bool(cols["detect_isPrimary"][k]),
                    "detect_isTractInner": bool(cols["detect_isTractInner"][k]),
                    "psfFlux": flux,
                    "psfFluxErr": err,
                    "psfFlux_flag": flag,
                }
                row.update(m.pixel_flags(mask_get, float(xs[k]), float(ys[k]), 2))
                rows.append(row)
        return Struct(forced=pd.DataFrame(rows, columns=FORCED_COLUMNS))


FORCED_COLUMNS = [
    "forcedSourceId",
    "objectId",
    "coord_ra",
    "coord_dec",
    "skymap",
    "tract",
    "patch",
    "band",
    "ccdVisitId",
    "detect_isPatchInner",
    "detect_isPrimary",
    "detect_isTractInner",
    "psfFlux",
    "psfFluxErr",
    "psfFlux_flag",
    "pixelFlags_bad",
    "pixelFlags_edge",
    "pixelFlags_saturated",
    "pixelFlags_saturatedCenter",
]


class WriteObjectTableConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    measurement = cT.Input(
        doc="Coadd measurements of this patch.",
        name="deepCoadd_meas",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )
    forced = cT.Input(
        doc="Forced photometry tables of the visit images overlapping this patch.",
        name="forcedSourceTable",
        storageClass="DataFrame",
        dimensions=("instrument", "visit", "detector", "skymap", "tract"),
        multiple=True,
    )
    objects = cT.Output(
        doc="The Object table of this patch (DP0.2 Object columns).",
        name="objectTable",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )


class WriteObjectTableTaskConfig(
    PipelineTaskConfig, pipelineConnections=WriteObjectTableConnections
):
    pass


class WriteObjectTableTask(PipelineTask):
    """Combine coadd measurements with multi-epoch forced PSF fluxes into Object rows."""

    ConfigClass = WriteObjectTableTaskConfig
    _DefaultName = "writeObjectTable"

    def run(self, measurement: pd.DataFrame, forced: list[pd.DataFrame]) -> Struct:
        table = measurement.copy()
        parts = [f for f in forced if len(f)]
        fs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FORCED_COLUMNS)
        if len(table):
            fs = fs[
                fs["objectId"].isin(table["objectId"]) & np.isfinite(fs["psfFluxErr"].astype(float))
            ]
            fs = fs[~fs["psfFlux_flag"].astype(bool)]
        for band in BANDS:
            if len(table) == 0:
                break
            sub = fs[fs["band"] == band]
            w = 1.0 / sub["psfFluxErr"].to_numpy(dtype=float) ** 2
            agg = (
                pd.DataFrame(
                    {
                        "objectId": sub["objectId"].to_numpy(),
                        "wf": w * sub["psfFlux"].to_numpy(dtype=float),
                        "w": w,
                    }
                )
                .groupby("objectId")
                .sum()
            )
            merged = table[["objectId"]].merge(
                agg, left_on="objectId", right_index=True, how="left"
            )
            flux = (merged["wf"] / merged["w"]).to_numpy()
            err = (1.0 / np.sqrt(merged["w"])).to_numpy()
            table[f"{band}_psfFlux"] = flux
            table[f"{band}_psfFluxErr"] = err
            table[f"{band}_psfFlux_flag"] = ~np.isfinite(flux)
        return Struct(objects=table)
