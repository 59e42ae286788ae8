"""makeCoadd (visit images -> deepCoadd per patch and band) and detectCoadd (-> deepCoadd_meas).

Each visit image is read only where it overlaps the patch (an lsst.images partial
read of the needed sub-box). Coadds are inverse-variance weighted means (one weight
per visit, so the coadd PSF is the same weighted mean of the visit PSFs, recorded in
the metadata) of the visit images resampled with a cubic spline onto the patch's
outer pixel grid of the tract's TAN projection. Pixels masked BAD or SAT in a visit
do not contribute; pixels no visit covers are NO_DATA.
"""

from __future__ import annotations

import json
from typing import Any

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.wcs import WCS
from lsst.pex.config import Field
from lsst.pipe.base import PipelineTask, PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT
from scipy import ndimage

from skydeck.images.release import _measure as m
from skydeck.images.release._config import BANDS, PSF_BETA
from skydeck.images.release._geometry import SkyMapSpec
from skydeck.images.release.simulate import mask_schema
from skydeck.images.release.tasks._visit import bad_pixels


class MakeCoaddConnections(
    PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")
):
    visit_images = cT.Input(
        doc="Visit images overlapping the patch in this band.",
        name="visit_image",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        deferLoad=True,
    )
    sky_map = cT.Input(
        doc="Skymap definition (tract projection, patch grid).",
        name="skyMap",
        storageClass="StructuredDataDict",
        dimensions=("skymap",),
    )
    coadd = cT.Output(
        doc="Deep coadd of the patch's outer region in one band (nJy).",
        name="deepCoadd",
        storageClass="MaskedImageV2",
        dimensions=("skymap", "tract", "patch", "band"),
    )


class MakeCoaddTaskConfig(PipelineTaskConfig, pipelineConnections=MakeCoaddConnections):
    grid_step = Field[int](doc="Pixel step of the exact WCS grid used for resampling.", default=32)


#: Pixels read beyond the resampled region of a visit image.
_SPLINE_MARGIN = 8


def _visit_coords(
    patch_wcs: WCS, visit_wcs: WCS, region: tuple[int, int, int, int], step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Visit pixel coordinates of the patch pixels in ``region`` (x0, y0, x1, y1).

    Exact on a grid of ``step`` pixels and bilinear between (TAN to TAN over a patch is
    smooth to micro-pixels).
    """
    x0, y0, x1, y1 = region
    gx = np.unique(np.append(np.arange(x0, x1, step), x1 - 1))
    gy = np.unique(np.append(np.arange(y0, y1, step), y1 - 1))
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = patch_wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    vx, vy = visit_wcs.all_world2pix(ra, dec, 0)
    vx = vx.reshape(xx.shape)
    vy = vy.reshape(xx.shape)
    fy = np.interp(np.arange(y0, y1), gy, np.arange(len(gy)))
    fx = np.interp(np.arange(x0, x1), gx, np.arange(len(gx)))
    iy, ix = np.meshgrid(fy, fx, indexing="ij")
    cx = ndimage.map_coordinates(vx, [iy, ix], order=1)
    cy = ndimage.map_coordinates(vy, [iy, ix], order=1)
    return cx, cy


def _overlap(
    patch_wcs: WCS, visit_wcs: WCS, visit_shape: tuple[int, int], patch_shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The part (x0, y0, x1, y1) of the patch grid a visit image covers, or None."""
    ny, nx = visit_shape
    xs = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    ys = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = visit_wcs.all_pix2world(xs, ys, 0)
    px, py = patch_wcs.all_world2pix(ra, dec, 0)
    x0, y0 = max(0, int(np.floor(px.min()))), max(0, int(np.floor(py.min())))
    x1 = min(patch_shape[1], int(np.ceil(px.max())) + 1)
    y1 = min(patch_shape[0], int(np.ceil(py.max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


class VisitImageSource:
    """A visit image the coadd reads only in part: its geometry first, then a sub-box."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        bbox = handle.get(component="bbox")
        self.shape: tuple[int, int] = (int(bbox.y.size), int(bbox.x.size))
        self.wcs: WCS = handle.get(component="sky_projection").as_fits_wcs(bbox)

    def read(self, x0: int, y0: int, x1: int, y1: int) -> Any:
        """The pixels of [y0:y1, x0:x1] (an lsst.images partial read)."""
        from lsst.images import Box

        return self._handle.get(parameters={"bbox": Box.factory[y0:y1, x0:x1]})


class MakeCoaddTask(PipelineTask):
    """Resample and average the visit images of one band onto one patch."""

    ConfigClass = MakeCoaddTaskConfig
    _DefaultName = "makeCoadd"
    config: MakeCoaddTaskConfig

    def runQuantum(self, butlerQC: Any, inputRefs: Any, outputRefs: Any) -> None:
        inputs = butlerQC.get(inputRefs)
        patch_id = int(outputRefs.coadd.dataId["patch"])
        band = str(outputRefs.coadd.dataId["band"])
        sources = [VisitImageSource(handle) for handle in inputs["visit_images"]]
        result = self.run(sources, SkyMapSpec.from_dict(inputs["sky_map"]), patch_id, band)
        butlerQC.put(result, outputRefs)

    def run(
        self, visit_images: list[VisitImageSource], sky_map: SkyMapSpec, patch_id: int, band: str
    ) -> Struct:
        from lsst.images import Box, Image, Mask, MaskedImage, SkyProjection, TractFrame

        patch = sky_map.patch(patch_id)
        x0, y0, x1, y1 = patch.outer
        shape = (y1 - y0, x1 - x0)
        patch_wcs = sky_map.patch_wcs(patch)
        num = np.zeros(shape)
        wsum = np.zeros(shape)
        var = np.zeros(shape)
        sat = np.zeros(shape, dtype=bool)
        fwhms: list[float] = []
        weights: list[float] = []
        visits: list[int] = []
        for source in visit_images:
            region = _overlap(patch_wcs, source.wcs, source.shape, shape)
            if region is None:
                continue
            rx0, ry0, rx1, ry1 = region
            cx, cy = _visit_coords(patch_wcs, source.wcs, region, self.config.grid_step)
            ny, nx = source.shape
            inside = (cx >= 1) & (cx <= nx - 2) & (cy >= 1) & (cy <= ny - 2)
            if not inside.any():
                continue
            # Read only the part of the visit image under this patch, with a margin wide
            # enough that the cubic spline's prefilter does not see the cut (0.27**8 < 1e-4).
            m = _SPLINE_MARGIN
            bx0 = max(0, int(np.floor(cx[inside].min())) - m)
            by0 = max(0, int(np.floor(cy[inside].min())) - m)
            bx1 = min(nx, int(np.ceil(cx[inside].max())) + m + 1)
            by1 = min(ny, int(np.ceil(cy[inside].max())) + m + 1)
            vi = source.read(bx0, by0, bx1, by1)
            coords = [cy - by0, cx - bx0]
            bad = bad_pixels(vi)
            weight = 1.0 / float(np.median(vi.variance.array[~bad]))
            img = np.where(bad, 0.0, vi.image.array.astype(np.float64))
            v = np.where(bad, 0.0, vi.variance.array.astype(np.float64))
            flags = ndimage.binary_dilation(bad, iterations=2).astype(np.uint8)
            flags |= vi.mask.get("SAT").astype(np.uint8) << 1
            sampled = ndimage.map_coordinates(img, coords, order=3, mode="nearest")
            sampled_var = ndimage.map_coordinates(v, coords, order=1, mode="nearest")
            sampled_flags = ndimage.map_coordinates(flags, coords, order=0, mode="nearest")
            use = inside & ((sampled_flags & 1) == 0)
            sub = (slice(ry0, ry1), slice(rx0, rx1))
            num[sub][use] += weight * sampled[use]
            var[sub][use] += weight**2 * sampled_var[use]
            wsum[sub][use] += weight
            sat[sub] |= inside & ((sampled_flags & 2) != 0)
            fwhms.append(float(vi.metadata["PSF_FWHM"]))
            weights.append(weight)
            visits.append(int(vi.metadata["VISIT"]))
        covered = wsum > 0
        coadd = np.where(covered, num / np.where(covered, wsum, 1.0), 0.0)
        coadd_var = np.where(covered, var / np.where(covered, wsum**2, 1.0), np.inf)

        tx, ty = sky_map.tract_pixels
        bbox = Box.from_shape(shape, start=(y0, x0))
        frame = TractFrame(skymap=sky_map.name, tract=sky_map.tract, bbox=Box.from_shape((ty, tx)))
        projection = SkyProjection.from_fits_wcs(sky_map.tract_wcs(), frame, pixel_bounds=bbox)
        mask = Mask(schema=mask_schema(), bbox=bbox)
        mask.set("NO_DATA", ~covered)
        mask.set("SAT", sat)
        metadata: dict[str, Any] = {
            "BAND": band,
            "PATCH": patch_id,
            "TRACT": sky_map.tract,
            "PSF_BETA": PSF_BETA,
            "PSF_INPUTS": json.dumps({"fwhm": fwhms, "weight": weights, "visit": visits}),
            "NINPUTS": len(visits),
            "BUNIT": "nJy",
        }
        image = Image(coadd.astype(np.float32), bbox=bbox, unit=u.nJy, sky_projection=projection)
        variance = Image(coadd_var.astype(np.float32), bbox=bbox, unit=u.nJy**2)
        return Struct(
            coadd=MaskedImage(
                image, mask=mask, variance=variance, sky_projection=projection, metadata=metadata
            )
        )


class DetectCoaddConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    coadds = cT.Input(
        doc="Coadds of the patch in every band.",
        name="deepCoadd",
        storageClass="MaskedImageV2",
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    sky_map = cT.Input(
        doc="Skymap definition.",
        name="skyMap",
        storageClass="StructuredDataDict",
        dimensions=("skymap",),
    )
    measurement = cT.Output(
        doc="Objects detected on the coadds, measured in every band (coadd-based columns).",
        name="deepCoadd_meas",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )


class DetectCoaddTaskConfig(PipelineTaskConfig, pipelineConnections=DetectCoaddConnections):
    threshold = Field[float](doc="Detection threshold (PSF-filtered S/N, any band).", default=5.0)
    extendedness_ratio = Field[float](
        doc="psfFlux/cModelFlux below which an object is extended (as DP0.2).", default=0.985
    )


def coadd_psf(coadd: Any, pixel_fwhm_scale: float) -> Any:
    """The weighted-mean Moffat PSF of a coadd (pixel units)."""
    inputs = json.loads(str(coadd.metadata["PSF_INPUTS"]))
    fwhm = [f / pixel_fwhm_scale for f in inputs["fwhm"]]
    return m.weighted_psf(fwhm, inputs["weight"], float(coadd.metadata["PSF_BETA"]))


def object_id(tract: int, patch: int, index: int) -> int:
    """DP0.2-style objectId packing tract, patch and a running index."""
    return (tract << 48) + (patch << 32) + index


class DetectCoaddTask(PipelineTask):
    """Detect objects on all band coadds and measure centroids, coadd fluxes and extendedness."""

    ConfigClass = DetectCoaddTaskConfig
    _DefaultName = "detectCoadd"
    config: DetectCoaddTaskConfig

    def runQuantum(self, butlerQC: Any, inputRefs: Any, outputRefs: Any) -> None:
        inputs = butlerQC.get(inputRefs)
        bands = [str(ref.dataId["band"]) for ref in inputRefs.coadds]
        patch_id = int(outputRefs.measurement.dataId["patch"])
        result = self.run(
            dict(zip(bands, inputs["coadds"], strict=True)),
            SkyMapSpec.from_dict(inputs["sky_map"]),
            patch_id,
        )
        butlerQC.put(result, outputRefs)

    def run(self, coadds: dict[str, Any], sky_map: SkyMapSpec, patch_id: int) -> Struct:
        pixel_scale = sky_map.pixel_scale
        patch = sky_map.patch(patch_id)
        ox, oy = patch.outer[0], patch.outer[1]
        psfs = {b: coadd_psf(c, pixel_scale) for b, c in coadds.items()}
        mask_gets = {b: m.cached_planes(c.mask.get) for b, c in coadds.items()}
        fwhm_pix = {
            b: float(np.mean(json.loads(str(c.metadata["PSF_INPUTS"]))["fwhm"])) / pixel_scale
            for b, c in coadds.items()
        }
        planes = {}
        best_sn = None
        best_band_idx = None
        ordered = [b for b in BANDS if b in coadds]
        for k, band in enumerate(ordered):
            c = coadds[band]
            img = c.image.array.astype(np.float64)
            var = c.variance.array.astype(np.float64)
            bad = bad_pixels(c)
            var = np.where(np.isfinite(var), var, 1e30)
            planes[band] = (img, var, bad)
            peaks_sn_map = _sn_map(img, var, bad, m.psf_sigma(fwhm_pix[band]))
            if best_sn is None:
                best_sn = peaks_sn_map
                best_band_idx = np.zeros(img.shape, dtype=np.int8)
            else:
                better = peaks_sn_map > best_sn
                best_sn = np.where(better, peaks_sn_map, best_sn)
                assert best_band_idx is not None
                best_band_idx[better] = k
        rows: list[dict[str, Any]] = []
        if best_sn is not None and best_band_idx is not None:
            above = best_sn > self.config.threshold
            labels, nlab = ndimage.label(above)
            local_max = (
                best_sn == ndimage.maximum_filter(best_sn, size=5, mode="constant")
            ) & above
            areas = ndimage.sum_labels(np.ones_like(best_sn), labels, index=np.arange(1, nlab + 1))
            ys, xs = np.nonzero(local_max)
            order = np.argsort(-best_sn[ys, xs])
            inner = patch.inner
            for n, idx in enumerate(order, start=1):
                px, py = int(xs[idx]), int(ys[idx])
                ref = ordered[int(best_band_idx[py, px])]
                img, var, bad = planes[ref]
                sigma = m.psf_sigma(fwhm_pix[ref])
                x, y, xerr, yerr, cflag = m.centroid(img, var, bad, float(px), float(py), sigma)
                tx, ty = x + ox, y + oy
                row: dict[str, Any] = {
                    "objectId": object_id(sky_map.tract, patch_id, n),
                    "x": tx,
                    "y": ty,
                    "xErr": xerr,
                    "yErr": yerr,
                    "xy_flag": cflag,
                    "refBand": ref,
                    "footprintArea": int(areas[labels[py, px] - 1]),
                    "tract": sky_map.tract,
                    "patch": patch_id,
                    "skymap": sky_map.name,
                    "detect_isPatchInner": bool(
                        inner[0] - 0.5 <= tx < inner[2] - 0.5
                        and inner[1] - 0.5 <= ty < inner[3] - 0.5
                    ),
                    "detect_isTractInner": True,
                    "refFwhm": fwhm_pix[ref] * pixel_scale,
                }
                for band in ordered:
                    bimg, bvar, bbad = planes[band]
                    radius = int(np.ceil(3.0 * fwhm_pix[band])) + 2
                    cm, cm_err, pf, _ = m.cmodel_flux(
                        bimg, bvar, bbad, psfs[band], pixel_scale, x, y, radius
                    )
                    row[f"{band}_cModelFlux"] = cm
                    row[f"{band}_cModelFluxErr"] = cm_err
                    row[f"{band}_free_psfFlux"] = pf
                    row[f"{band}_fwhm"] = fwhm_pix[band] * pixel_scale
                    ratio = pf / cm if cm and np.isfinite(cm) and cm > 0 else np.nan
                    row[f"{band}_extendedness"] = (
                        float(ratio < self.config.extendedness_ratio)
                        if np.isfinite(ratio)
                        else np.nan
                    )
                    row[f"{band}_inputCount"] = int(coadds[band].metadata["NINPUTS"])
                    flags = m.pixel_flags(mask_gets[band], x, y, 2)
                    row[f"{band}_pixelFlags_saturatedCenter"] = flags["pixelFlags_saturatedCenter"]
                row["refExtendedness"] = row[f"{ref}_extendedness"]
                rows.append(row)
        table = pd.DataFrame(rows)
        if len(table):
            ra, dec = sky_map.tract_wcs().all_pix2world(
                table["x"].to_numpy(), table["y"].to_numpy(), 0
            )
            table["coord_ra"], table["coord_dec"] = ra, dec
            table["detect_isPrimary"] = table["detect_isPatchInner"] & table["detect_isTractInner"]
        return Struct(measurement=table)


def _sn_map(img: np.ndarray, var: np.ndarray, bad: np.ndarray, sigma: float) -> np.ndarray:
    """PSF-filtered S/N map (as `_measure.detect`)."""
    import math

    image = np.where(bad, 0.0, img)
    v = np.where(bad, np.nanmedian(var[~bad]) * 1e6 if (~bad).any() else 1.0, var)
    num = ndimage.gaussian_filter(image, sigma, mode="constant")
    den = np.sqrt(ndimage.gaussian_filter(v, sigma / math.sqrt(2.0), mode="nearest"))
    return np.asarray(num / (den / (2.0 * math.sqrt(math.pi) * sigma)))
