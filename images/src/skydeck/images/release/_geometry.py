"""Observation plan, camera geometry, the skymap, and their sky regions.

Everything here is plain data computed from the release size and seed, so the
simulation, the Butler registration and the pipeline tasks agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from astropy.wcs import WCS

from skydeck.images.release._config import (
    BANDS,
    FIELD_DEC,
    FIELD_RA,
    INSTRUMENT,
    SKYMAP,
    ReleaseSize,
)

#: Gap between detectors on the focal plane, pixels.
DETECTOR_GAP = 40

#: First MJD of the simulated survey.
MJD0 = 61000.0


@dataclass(frozen=True)
class VisitPlan:
    """One simulated visit."""

    visit: int
    band: str
    mjd: float
    exposure_time: float
    fwhm_arcsec: float
    boresight_ra: float
    boresight_dec: float
    rotation_deg: float
    seq_num: int

    @property
    def day_obs(self) -> int:
        """YYYYMMDD of the observing night (the Butler ``day_obs``)."""
        from astropy.time import Time

        iso = Time(self.mjd - 0.5, format="mjd").datetime
        return int(iso.strftime("%Y%m%d"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def physical_filter(band: str) -> str:
    """The physical filter name of ``band`` on the simulated camera."""
    return f"{band}_sky"


def ccd_visit_id(visit: int, detector: int) -> int:
    """The DP0.2-style ``ccdVisitId`` packing a visit and a detector."""
    return visit * 1000 + detector


def plan_visits(size: ReleaseSize, seed: int) -> list[VisitPlan]:
    """The visits of the survey: ``visits_per_band`` dithered visits in each band."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    plans: list[VisitPlan] = []
    seq = 0
    for k in range(size.visits_per_band):
        for band in BANDS:
            seq += 1
            dra, ddec = _dither(size, rng.uniform(-1, 1, 2)) / 3600.0
            plans.append(
                VisitPlan(
                    visit=2026_00000 + seq,
                    band=band,
                    mjd=float(MJD0 + 3.0 * k + 0.02 * BANDS.index(band) + rng.uniform(0, 40)),
                    exposure_time=30.0,
                    fwhm_arcsec=float(rng.uniform(0.6, 1.05)),
                    boresight_ra=FIELD_RA + dra / math.cos(math.radians(FIELD_DEC)),
                    boresight_dec=FIELD_DEC + ddec,
                    rotation_deg=float(rng.uniform(-3.0, 3.0)),
                    seq_num=seq,
                )
            )
    return plans


#: Pixels kept between the field centre and a detector gap (beyond the masked edge).
_GAP_MARGIN = 20


def _dither(size: ReleaseSize, u: np.ndarray) -> np.ndarray:
    """The boresight offset (arcsec, RA and Dec) for uniform draws ``u`` in [-1, 1].

    With one detector, uniform within the dither amplitude. With several, the offset in
    each direction is at least half a detector gap plus a margin, so the field centre
    (where the gaps cross at zero offset) always falls on a detector: every visit sees it.
    """
    if size.detectors_x * size.detectors_y == 1:
        return u * size.dither_arcsec
    least = (DETECTOR_GAP / 2 + _GAP_MARGIN) * size.pixel_scale
    if least >= size.dither_arcsec:
        raise ValueError(f"{size.name}: the dither must exceed {least:.1f} arcsec")
    return np.sign(u) * (least + np.abs(u) * (size.dither_arcsec - least))


def detector_ids(size: ReleaseSize) -> list[int]:
    return list(range(size.detectors_x * size.detectors_y))


def detector_wcs(size: ReleaseSize, plan: VisitPlan, detector: int) -> WCS:
    """The TAN WCS of one detector of one visit (all detectors share the boresight plane)."""
    n = size.detector_pixels
    ix, iy = detector % size.detectors_x, detector // size.detectors_x
    pitch = n + DETECTOR_GAP
    # Position of this detector's pixel (0, 0) relative to the boresight, in focal-plane pixels.
    x_off = (ix - (size.detectors_x - 1) / 2.0) * pitch - (n - 1) / 2.0
    y_off = (iy - (size.detectors_y - 1) / 2.0) * pitch - (n - 1) / 2.0
    scale = size.pixel_scale / 3600.0
    theta = math.radians(plan.rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [plan.boresight_ra, plan.boresight_dec]
    # FITS pixels are 1-based: the boresight is at pixel -offset (0-based).
    wcs.wcs.crpix = [-x_off + 1.0, -y_off + 1.0]
    # East left, north up, rotated by theta.
    wcs.wcs.cd = np.array([[-scale * c, scale * s], [scale * s, scale * c]])
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def wcs_corners(wcs: WCS, nx: int, ny: int) -> list[tuple[float, float]]:
    """(ra, dec) of the four outer pixel corners of an ``nx`` x ``ny`` grid."""
    xs = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    ys = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    return [(float(r), float(d)) for r, d in zip(ra, dec, strict=True)]


def polygon_region(corners: list[tuple[float, float]]) -> Any:
    """A sphgeom ConvexPolygon through ``corners`` (degrees)."""
    from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

    return ConvexPolygon([UnitVector3d(LonLat.fromDegrees(ra, dec)) for ra, dec in corners])


@dataclass(frozen=True)
class PatchInfo:
    """One patch: its index, inner box (primary region) and outer box, in tract pixels."""

    id: int
    cell_x: int
    cell_y: int
    inner: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    outer: tuple[int, int, int, int]


@dataclass(frozen=True)
class SkyMapSpec:
    """A one-tract skymap: a TAN tract at the field centre cut into overlapping patches."""

    name: str
    tract: int
    center_ra: float
    center_dec: float
    pixel_scale: float
    nx_patches: int
    ny_patches: int
    patch_pixels: int
    patch_border: int

    @classmethod
    def for_size(cls, size: ReleaseSize) -> SkyMapSpec:
        extent = size.field_deg * 3600.0 / size.pixel_scale + 2 * size.patch_border
        n = max(1, math.ceil(extent / size.patch_pixels))
        return cls(
            name=SKYMAP,
            tract=0,
            center_ra=FIELD_RA,
            center_dec=FIELD_DEC,
            pixel_scale=size.pixel_scale,
            nx_patches=n,
            ny_patches=n,
            patch_pixels=size.patch_pixels,
            patch_border=size.patch_border,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkyMapSpec:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tract_pixels(self) -> tuple[int, int]:
        return self.nx_patches * self.patch_pixels, self.ny_patches * self.patch_pixels

    def tract_wcs(self) -> WCS:
        """The tract's TAN WCS (pixel (0, 0) is the corner of patch 0's inner box)."""
        nx, ny = self.tract_pixels
        scale = self.pixel_scale / 3600.0
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [self.center_ra, self.center_dec]
        wcs.wcs.crpix = [(nx - 1) / 2.0 + 1.0, (ny - 1) / 2.0 + 1.0]
        wcs.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]])
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.set()
        return wcs

    def patches(self) -> list[PatchInfo]:
        out = []
        p, b = self.patch_pixels, self.patch_border
        for cy in range(self.ny_patches):
            for cx in range(self.nx_patches):
                inner = (cx * p, cy * p, (cx + 1) * p, (cy + 1) * p)
                outer = (inner[0] - b, inner[1] - b, inner[2] + b, inner[3] + b)
                out.append(PatchInfo(cy * self.nx_patches + cx, cx, cy, inner, outer))
        return out

    def patch(self, patch_id: int) -> PatchInfo:
        return self.patches()[patch_id]

    def patch_wcs(self, patch: PatchInfo) -> WCS:
        """The WCS of the patch's outer pixel grid (array pixel (0, 0) = outer corner)."""
        wcs = self.tract_wcs()
        wcs.wcs.crpix = [wcs.wcs.crpix[0] - patch.outer[0], wcs.wcs.crpix[1] - patch.outer[1]]
        wcs.wcs.set()
        return wcs

    def box_corners(self, box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
        x0, y0, x1, y1 = box
        xs = np.array([x0 - 0.5, x1 - 0.5, x1 - 0.5, x0 - 0.5])
        ys = np.array([y0 - 0.5, y0 - 0.5, y1 - 0.5, y1 - 0.5])
        ra, dec = self.tract_wcs().all_pix2world(xs, ys, 0)
        return [(float(r), float(d)) for r, d in zip(ra, dec, strict=True)]


__all__ = [
    "INSTRUMENT",
    "MJD0",
    "PatchInfo",
    "SkyMapSpec",
    "VisitPlan",
    "ccd_visit_id",
    "detector_ids",
    "detector_wcs",
    "physical_filter",
    "plan_visits",
    "polygon_region",
    "wcs_corners",
]
