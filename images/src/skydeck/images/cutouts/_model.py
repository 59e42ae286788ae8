"""The cutout value returned by the engine, and its FITS form."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS


class CutoutError(ValueError):
    """A cutout request that cannot be served; the message says what to change."""


class DatasetNotFoundError(CutoutError, LookupError):
    """The dataset ID names nothing in the repository (or nothing this engine may read)."""


class OffImageError(CutoutError):
    """The requested region does not overlap the image at all."""


@dataclass(frozen=True)
class PixelBox:
    """A half-open pixel box ``[x0, x1) x [y0, y1)`` in the parent image's pixel grid."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx), as numpy orders it."""
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def intersection(self, other: PixelBox) -> PixelBox:
        return PixelBox(
            max(self.x0, other.x0),
            max(self.y0, other.y0),
            min(self.x1, other.x1),
            min(self.y1, other.y1),
        )

    def contains(self, other: PixelBox) -> bool:
        return (
            self.x0 <= other.x0
            and self.y0 <= other.y0
            and other.x1 <= self.x1
            and other.y1 <= self.y1
        )


@dataclass
class Cutout:
    """Pixels of one image around a position, with their WCS, variance and mask.

    ``wcs`` is an astropy WCS whose array pixel (0, 0) is ``image[0, 0]``.
    ``bbox`` is where the returned pixels sit in the parent image's pixel grid and
    ``requested`` the box that was asked for; they differ when the request ran
    over the image edge (see `CutoutEngine` for the edge policy).
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    mask_planes: dict[str, int]
    wcs: WCS
    bbox: PixelBox
    requested: PixelBox
    dataset_id: str = ""
    dataset_type: str = ""
    data_id: dict[str, Any] = field(default_factory=dict)
    band: str | None = None
    mjd: float | None = None
    unit: str | None = None

    @property
    def clipped(self) -> bool:
        """Whether the request ran over the image edge."""
        return self.bbox != self.requested

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def pixel_to_world(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) in degrees of 0-based cutout pixel positions."""
        ra, dec = self.wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(ra), np.asarray(dec)

    def to_hdulist(self) -> fits.HDUList:
        """FITS: primary header with provenance, then IMAGE, MASK and VARIANCE with the WCS."""
        header = self.wcs.to_header(relax=True)
        primary = fits.PrimaryHDU()
        primary.header["ORIGIN"] = "Skydeck cutout service"
        if self.dataset_id:
            primary.header["DATASET"] = (self.dataset_id, "Butler dataset ID of the parent")
        if self.dataset_type:
            primary.header["DSTYPE"] = (self.dataset_type, "Butler dataset type of the parent")
        for key, value in self.data_id.items():
            if isinstance(value, int | float | str):
                primary.header[f"HIERARCH DATAID {key.upper()}"] = value
        if self.band:
            primary.header["BAND"] = self.band
        if self.mjd is not None:
            primary.header["MJD-OBS"] = (self.mjd, "Start of the observation (TAI)")
        primary.header["LTV1"] = (-self.bbox.x0, "parent x = cutout x - LTV1")
        primary.header["LTV2"] = (-self.bbox.y0, "parent y = cutout y - LTV2")
        primary.header["CLIPPED"] = (self.clipped, "Request ran over the image edge")
        image = fits.ImageHDU(self.image, header=header.copy(), name="IMAGE")
        if self.unit:
            image.header["BUNIT"] = self.unit
        mask = fits.ImageHDU(self.mask.astype(np.int32), header=header.copy(), name="MASK")
        for name, bit in sorted(self.mask_planes.items(), key=lambda kv: kv[1]):
            mask.header[f"HIERARCH MP_{name}"] = bit
        variance = fits.ImageHDU(self.variance, header=header.copy(), name="VARIANCE")
        return fits.HDUList([primary, image, mask, variance])

    def to_fits_bytes(self) -> bytes:
        """The FITS file as bytes (what the SODA service returns)."""
        buffer = io.BytesIO()
        self.to_hdulist().writeto(buffer)
        return buffer.getvalue()
