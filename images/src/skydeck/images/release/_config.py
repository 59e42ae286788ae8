"""Sizes of a release and the fixed survey constants (bands, sky, zero points)."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The six Rubin bands, in wavelength order.
BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")

#: Name of the simulated instrument (the Butler ``instrument`` dimension).
INSTRUMENT = "SkydeckCam"

#: Name of the skymap registered in the Butler repository.
SKYMAP = "skydeck_rings"

#: Pixel scale of LSSTCam, arcsec per pixel: the tiny release's camera and coadds.
LSST_PIXEL_SCALE = 0.2

#: Single-visit 5-sigma point-source depth (AB mag) at the nominal seeing, per band.
M5: dict[str, float] = {"u": 23.9, "g": 25.0, "r": 24.7, "i": 24.0, "z": 23.3, "y": 22.1}

#: Sky level in electrons per 0.2" LSSTCam pixel for one visit, per band.
SKY_E: dict[str, float] = {
    "u": 120.0,
    "g": 400.0,
    "r": 800.0,
    "i": 1200.0,
    "z": 1800.0,
    "y": 2200.0,
}

#: Seeing FWHM (arcsec) at which ``M5`` holds.
NOMINAL_FWHM = 0.8

#: Moffat beta of the atmospheric PSF.
PSF_BETA = 3.5

#: Full-well depth in electrons; pixels above it are flagged SAT.
FULL_WELL = 150_000.0

#: AB zero point of nJy: m = 31.4 - 2.5 log10(f / nJy).
NJY_AB_ZP = 31.4


def sky_electrons(band: str, pixel_scale: float) -> float:
    """Sky level (electrons per pixel, one visit) in ``band`` for pixels of ``pixel_scale``."""
    return SKY_E[band] * (pixel_scale / LSST_PIXEL_SCALE) ** 2


def calib_njy_per_electron(band: str) -> float:
    """The flux (nJy) that yields one electron in a visit in ``band``.

    Chosen so that a point source at ``M5[band]`` has S/N = 5 on the sky noise at the
    nominal seeing (noise-equivalent area of a Gaussian, 4 pi sigma^2). The sky per unit
    area is fixed, so this does not depend on the pixel scale.
    """
    sigma_pix = NOMINAL_FWHM / LSST_PIXEL_SCALE / 2.3548
    nea = 4.0 * math.pi * sigma_pix**2
    flux_e = 5.0 * math.sqrt(SKY_E[band] * nea)
    flux_njy = 10 ** ((NJY_AB_ZP - M5[band]) / 2.5)
    return flux_njy / flux_e


def mag_to_njy(mag: float) -> float:
    """AB magnitude to flux density in nJy."""
    return float(10 ** ((NJY_AB_ZP - mag) / 2.5))


@dataclass(frozen=True)
class ReleaseSize:
    """Everything that differs between ``tiny`` and ``demo``."""

    name: str
    #: Side of the square field covered by the truth catalog, degrees.
    field_deg: float
    #: Detector grid of the camera (nx, ny) and detector size in pixels.
    detectors_x: int
    detectors_y: int
    detector_pixels: int
    #: Visits per band.
    visits_per_band: int
    #: Dither amplitude (arcsec, uniform in +-).
    dither_arcsec: float
    #: Surface densities (per arcmin^2) of stars and galaxies down to the faint limits.
    star_density: float
    galaxy_density: float
    #: Patch inner size in pixels (coadd grid) and overlap border in pixels.
    patch_pixels: int
    patch_border: int
    #: Pixel scale of the camera and of the coadds, arcsec per pixel.
    pixel_scale: float = LSST_PIXEL_SCALE
    #: Fraction of stars that are variable.
    variable_fraction: float = 0.15

    @property
    def field_arcmin2(self) -> float:
        return (self.field_deg * 60.0) ** 2


SIZES: dict[str, ReleaseSize] = {
    "tiny": ReleaseSize(
        name="tiny",
        field_deg=0.030,
        detectors_x=1,
        detectors_y=1,
        detector_pixels=560,
        visits_per_band=2,
        dither_arcsec=4.0,
        star_density=15.0,
        galaxy_density=12.0,
        patch_pixels=400,
        patch_border=40,
    ),
    "demo": ReleaseSize(
        name="demo",
        field_deg=0.18,
        detectors_x=2,
        detectors_y=2,
        detector_pixels=1200,
        visits_per_band=3,
        dither_arcsec=15.0,
        star_density=6.0,
        galaxy_density=20.0,
        # 2 x 2 patches tile the field: a 3 x 3 grid would coadd 40 % more (mostly empty) sky
        patch_pixels=1300,
        patch_border=60,
        # 0.3" pixels still sample the best seeing (0.6") with 2 pixels per FWHM, and cover
        # 2.25x the sky of LSSTCam's 0.2" for the same pixel count (the build's main cost):
        # 0.032 deg2, about 3,000 objects, built in under 3 minutes on 2 cores
        pixel_scale=0.3,
    ),
}

#: Field centre: a DC2-like position.
FIELD_RA = 62.0
FIELD_DEC = -37.0
