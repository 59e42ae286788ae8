"""makeCoadd (visit images -> deepCoadd per patch and band) and detectCoadd (-> deepCoadd_meas).

Each visit image is read only where it overlaps the patch (an lsst.images partial
read of the needed sub-box). Coadds are inverse-variance weighted means (one weight
per visit, so the coadd PSF is the same weighted mean of the visit PSFs, recorded in
the metadata) of the visit images resampled with a cubic spline onto the patch's
outer pixel grid of the tract's TAN projection. Pixels masked BAD or SAT in a visit
do not contribute; pixels no visit covers are NO_DATA.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    max_children = Field[int](
        doc="Footprints with more peaks than this are not deblended (deblend_skipped).",
        default=100,
    )
    moments_radius_fwhm = Field[float](
        doc="Half-size of the adaptive-moments stamp in units of the PSF FWHM.", default=5.0
    )


#: Radius (pixels) of DP0.2's calibFlux aperture.
CALIB_APERTURE = 12


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
            context = _Context(
                ordered, planes, psfs, fwhm_pix, mask_gets, coadds, pixel_scale, best_band_idx
            )
            for det in self._deblend(best_sn):
                rows.append(self._measure(det, context, sky_map, patch_id, patch.inner, ox, oy))
        table = pd.DataFrame(rows)
        table = pd.DataFrame(rows)
        if len(table):
            ra, dec = sky_map.tract_wcs().all_pix2world(
                table["x"].to_numpy(), table["y"].to_numpy(), 0
            )
            table["coord_ra"], table["coord_dec"] = ra, dec
            # DP0.2's meanings: primary = no children, inner region of patch and tract, not
            # a sky object; a deblended source is a primary isolated source or child.
            table["detect_isPrimary"] = (
                table["detect_isPatchInner"]
                & table["detect_isTractInner"]
                & (table["deblend_nChild"] == 0)
                & ~table["sky_object"]
            )
            table["detect_isDeblendedSource"] = table["detect_isPrimary"] & (
                table["detect_isIsolated"] | table["detect_fromBlend"]
            )
            table["detect_isDeblendedModelSource"] = (
                table["detect_isPrimary"] & table["detect_fromBlend"]
            )
        return Struct(measurement=table)

    def _deblend(self, sn: np.ndarray) -> list[_Detection]:
        """Footprints above threshold, their peaks, and the split of every footprint with
        several peaks among them (`_measure.deblend_footprint`): isolated sources, then
        children in order of S/N, then their parents."""
        above = sn > self.config.threshold
        labels, nlab = ndimage.label(above)
        local_max = (sn == ndimage.maximum_filter(sn, size=5, mode="constant")) & above
        areas = ndimage.sum_labels(np.ones_like(sn), labels, index=np.arange(1, nlab + 1))
        ys, xs = np.nonzero(local_max)
        order = np.argsort(-sn[ys, xs], kind="stable")
        members: dict[int, list[_Detection]] = {}
        for n, idx in enumerate(order, start=1):
            x, y = int(xs[idx]), int(ys[idx])
            label = int(labels[y, x])
            members.setdefault(label, []).append(_Detection(n, x, y, int(areas[label - 1])))
        detections: list[_Detection] = []
        parents: list[_Detection] = []
        boxes = ndimage.find_objects(labels)
        next_index = len(order) + 1
        for label, peaks in members.items():
            if len(peaks) == 1:
                detections.append(peaks[0])
                continue
            brightest = peaks[0]
            parent = _Detection(next_index, brightest.x, brightest.y, brightest.area)
            next_index += 1
            parents.append(parent)
            if len(peaks) > self.config.max_children:
                parent.skipped = True
                continue
            box = boxes[label - 1]
            assert box is not None
            cut = np.where(labels[box] == label, sn[box], 0.0)
            owner = m.deblend_footprint(
                cut, [(p.x - box[1].start, p.y - box[0].start) for p in peaks]
            )
            parent.n_child = len(peaks)
            for k, child in enumerate(peaks):
                child.parent = parent.index
                child.area = int((owner == k).sum())
                child.siblings = (box, (owner >= 0) & (owner != k))
                detections.append(child)
        return sorted(detections, key=lambda d: d.index) + parents

    def _measure(
        self,
        det: _Detection,
        context: _Context,
        sky_map: SkyMapSpec,
        patch_id: int,
        inner: tuple[int, int, int, int],
        ox: int,
        oy: int,
    ) -> dict[str, Any]:
        """Centroid, fluxes, moments and flags of one Object in every band."""
        ordered, planes, fwhm_pix = context.bands, context.planes, context.fwhm_pix
        ref = ordered[int(context.best_band_idx[det.y, det.x])]
        with _without_siblings(det, context):
            img, var, bad = planes[ref]
            sigma = m.psf_sigma(fwhm_pix[ref])
            x, y, xerr, yerr, cflag = m.centroid(img, var, bad, float(det.x), float(det.y), sigma)
            tx, ty = x + ox, y + oy
            inner_patch = bool(
                inner[0] - 0.5 <= tx < inner[2] - 0.5 and inner[1] - 0.5 <= ty < inner[3] - 0.5
            )
            blended = det.parent != 0
            row: dict[str, Any] = {
                "objectId": object_id(sky_map.tract, patch_id, det.index),
                "parentObjectId": object_id(sky_map.tract, patch_id, det.parent) if blended else 0,
                "deblend_nChild": det.n_child,
                "deblend_skipped": det.skipped,
                "detect_isIsolated": not blended and det.n_child == 0 and not det.skipped,
                "detect_fromBlend": blended,
                "sky_object": False,
                "x": tx,
                "y": ty,
                "xErr": xerr,
                "yErr": yerr,
                "xy_flag": cflag,
                "refBand": ref,
                "footprintArea": det.area,
                "tract": sky_map.tract,
                "patch": patch_id,
                "skymap": sky_map.name,
                "detect_isPatchInner": inner_patch,
                "detect_isTractInner": True,
                "refFwhm": fwhm_pix[ref] * context.pixel_scale,
            }
            for band in ordered:
                row.update(self._measure_band(band, det, context, x, y))
        # Blendedness compares the child's image with the full (parent) image.
        box, hidden = det.siblings if det.siblings is not None else (None, None)
        for band in ordered:
            sigma_b = m.psf_sigma(fwhm_pix[band])
            b, flag = m.blendedness(planes[band][0], x, y, sigma_b, hidden, box)
            row[f"{band}_blendedness"], row[f"{band}_blendedness_flag"] = b, flag
        row["refExtendedness"] = row[f"{ref}_extendedness"]
        for key in ("xx", "yy", "xy"):
            row[f"shape_{key}"] = row[f"{ref}_i{key}"]
        row["shape_flag"] = row[f"{ref}_i_flag"]
        return row

    def _measure_band(
        self, band: str, det: _Detection, context: _Context, x: float, y: float
    ) -> dict[str, Any]:
        """The per-band columns of one Object, measured on the band's coadd."""
        bimg, bvar, bbad = context.planes[band]
        fwhm = context.fwhm_pix[band]
        radius = int(np.ceil(3.0 * fwhm)) + 2
        cm, cm_err, pf, _ = m.cmodel_flux(
            bimg, bvar, bbad, context.psfs[band], context.pixel_scale, x, y, radius
        )
        out: dict[str, Any] = {
            f"{band}_cModelFlux": cm,
            f"{band}_cModelFluxErr": cm_err,
            f"{band}_free_psfFlux": pf,
            f"{band}_fwhm": fwhm * context.pixel_scale,
        }
        ratio = pf / cm if cm and np.isfinite(cm) and cm > 0 else np.nan
        out[f"{band}_extendedness"] = (
            float(ratio < self.config.extendedness_ratio) if np.isfinite(ratio) else np.nan
        )
        out[f"{band}_extendedness_flag"] = not np.isfinite(ratio)
        out[f"{band}_inputCount"] = int(context.coadds[band].metadata["NINPUTS"])
        flags = m.pixel_flags(context.mask_gets[band], x, y, 2)
        out[f"{band}_pixelFlags_saturatedCenter"] = flags["pixelFlags_saturatedCenter"]
        sigma = m.psf_sigma(fwhm)
        moments = m.adaptive_moments(
            bimg, bbad, x, y, sigma, int(np.ceil(self.config.moments_radius_fwhm * fwhm))
        )
        out.update({f"{band}_ixx": moments.xx, f"{band}_iyy": moments.yy})
        out.update({f"{band}_ixy": moments.xy, f"{band}_i_flag": moments.flag})
        psf = context.psf_moments[band]
        out.update({f"{band}_ixxPSF": psf.xx, f"{band}_iyyPSF": psf.yy})
        out.update({f"{band}_ixyPSF": psf.xy, f"{band}_iPSF_flag": psf.flag})
        for r, (flux, err, flag) in zip(
            m.APERTURE_RADII, m.aperture_fluxes(bimg, bvar, bbad, x, y), strict=True
        ):
            out[f"{band}_ap{r:02d}Flux"] = flux
            out[f"{band}_ap{r:02d}FluxErr"] = err
            out[f"{band}_ap{r:02d}Flux_flag"] = flag
            if r == CALIB_APERTURE:
                out[f"{band}_calibFlux"] = flux
                out[f"{band}_calibFluxErr"] = err
                out[f"{band}_calibFlux_flag"] = flag
                height, width = bimg.shape
                out[f"{band}_calibFlux_flag_apertureTruncated"] = not (
                    r - 0.5 <= x <= width - 0.5 - r and r - 0.5 <= y <= height - 0.5 - r
                )
        kron = m.kron_flux(bimg, bvar, bbad, x, y, moments)
        out[f"{band}_kronFlux"] = kron.flux
        out[f"{band}_kronFluxErr"] = kron.err
        out[f"{band}_kronRad"] = kron.radius
        out[f"{band}_kronFlux_flag"] = kron.flag
        return out


@dataclass
class _Detection:
    """One Object row before measurement: an isolated source, a deblended child or a parent."""

    index: int  # running index in the objectId
    x: int  # peak pixel (patch outer grid)
    y: int
    area: int  # footprint pixels (a child's: the pixels the deblender gave it)
    parent: int = 0  # running index of the parent, 0 if none
    n_child: int = 0
    skipped: bool = False
    #: For a child: (bounding box of its footprint, pixels given to its siblings there).
    siblings: tuple[tuple[slice, slice], np.ndarray] | None = None


@dataclass
class _Context:
    """What every Object's measurement reads: the coadd planes and PSFs per band."""

    bands: list[str]
    planes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    psfs: dict[str, m.PsfModel]
    fwhm_pix: dict[str, float]
    mask_gets: dict[str, Any]
    coadds: dict[str, Any]
    pixel_scale: float
    best_band_idx: np.ndarray

    @functools.cached_property
    def psf_moments(self) -> dict[str, m.Moments]:
        return {
            b: m.psf_moments(self.psfs[b], int(np.ceil(4 * self.fwhm_pix[b])) + 2)
            for b in self.bands
        }


@contextmanager
def _without_siblings(det: _Detection, context: _Context) -> Iterator[None]:
    """A deblended child's images: its siblings' pixels replaced by the background (0),
    as LSST's NoiseReplacer does, for the duration of its measurement."""
    if det.siblings is None:
        yield
        return
    box, hidden = det.siblings
    saved = {b: planes[0][box][hidden] for b, planes in context.planes.items()}
    for planes in context.planes.values():
        planes[0][box][hidden] = 0.0
    try:
        yield
    finally:
        for b, planes in context.planes.items():
            planes[0][box][hidden] = saved[b]


def _sn_map(img: np.ndarray, var: np.ndarray, bad: np.ndarray, sigma: float) -> np.ndarray:
    """PSF-filtered S/N map (as `_measure.detect`)."""
    import math

    image = np.where(bad, 0.0, img)
    v = np.where(bad, np.nanmedian(var[~bad]) * 1e6 if (~bad).any() else 1.0, var)
    num = ndimage.gaussian_filter(image, sigma, mode="constant")
    den = np.sqrt(ndimage.gaussian_filter(v, sigma / math.sqrt(2.0), mode="nearest"))
    return np.asarray(num / (den / (2.0 * math.sqrt(math.pi) * sigma)))
