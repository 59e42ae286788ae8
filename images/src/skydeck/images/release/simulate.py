"""GalSim rendering of one simulated visit image (one detector of one visit).

Images are sky-subtracted and calibrated: pixel values are nJy, the variance
plane holds the expected variance (sky + source photon noise) in nJy², and the
mask marks saturated pixels (SAT), bad columns (BAD) and the detector edge
(EDGE). The PSF is a Moffat profile whose FWHM and beta are stored in the image
metadata (``PSF_FWHM`` in arcsec, ``PSF_BETA``) so measurement uses the exact
model the simulation used, and ``PIXSCALE`` (arcsec per pixel) so measurement
converts arcseconds to pixels the way the simulation did.
"""

from __future__ import annotations

import warnings
from typing import Any

import astropy.units as u
import galsim
import numpy as np
import pandas as pd

from skydeck.images.release._config import (
    FULL_WELL,
    INSTRUMENT,
    PSF_BETA,
    ReleaseSize,
    calib_njy_per_electron,
    sky_electrons,
)
from skydeck.images.release._geometry import VisitPlan, detector_wcs, physical_filter
from skydeck.images.release.truth import flux_at

#: Mask planes of visit images and coadds.
MASK_PLANES: tuple[tuple[str, str], ...] = (
    ("BAD", "Bad pixel (defective detector column)."),
    ("SAT", "Pixel was saturated (above the full-well depth)."),
    ("EDGE", "Pixel within a few pixels of the detector edge."),
    ("NO_DATA", "No input data contributed to this pixel (coadds)."),
    ("DETECTED", "Pixel is part of a detected source footprint."),
)

#: Width of the EDGE border, pixels.
EDGE_WIDTH = 4


def mask_schema() -> Any:
    """The `lsst.images.MaskSchema` shared by visit images and coadds."""
    from lsst.images import MaskPlane, MaskSchema

    return MaskSchema([MaskPlane(name, doc) for name, doc in MASK_PLANES])


def moffat_psf(fwhm_arcsec: float) -> galsim.GSObject:
    """The atmospheric PSF of a visit with seeing ``fwhm_arcsec``.

    Truncated at `PSF_TRUNCATION` FWHM, which holds all but 2e-4 of the flux and makes
    GalSim's convolutions with galaxies about twice as fast.
    """
    return galsim.Moffat(beta=PSF_BETA, fwhm=fwhm_arcsec, trunc=PSF_TRUNCATION * fwhm_arcsec)


#: Radius (in FWHM) at which the simulated PSF is truncated.
PSF_TRUNCATION = 6.0

#: Star positions are drawn on a 1/STAR_SUBPIXEL pixel grid (at most 0.05 px off).
STAR_SUBPIXEL = 10


class _StarStamps:
    """Unit-flux PSF stamps of one visit, drawn by GalSim once per sub-pixel offset and size.

    A star is then one scaled add of a stamp, instead of one GalSim FFT per star.
    """

    def __init__(self, psf: galsim.GSObject, wcs: galsim.BaseWCS) -> None:
        self._psf = psf
        self._wcs = wcs
        self._stamps: dict[tuple[int, int, int], np.ndarray] = {}

    def add(self, target: np.ndarray, x: float, y: float, flux: float, radius: int) -> None:
        """Add a star of ``flux`` at (x, y) to ``target`` (clipped at its edges)."""
        ix, iy = round(x), round(y)
        qx, qy = round((x - ix) * STAR_SUBPIXEL), round((y - iy) * STAR_SUBPIXEL)
        key = (qx, qy, radius)
        stamp = self._stamps.get(key)
        if stamp is None:
            side = 2 * radius + 1
            # A truncated Moffat and the pixel both have hard edges, for which GalSim
            # would pick a real-space convolution (25x slower than the FFT here) and warns
            # when told otherwise.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", galsim.GalSimWarning)
                drawn = self._psf.drawImage(
                    nx=side,
                    ny=side,
                    wcs=self._wcs,
                    offset=(qx / STAR_SUBPIXEL, qy / STAR_SUBPIXEL),
                    method="fft",
                )
            stamp = self._stamps[key] = np.asarray(drawn.array, dtype=np.float32)
        ny, nx = target.shape
        x0, y0 = ix - radius, iy - radius
        xa, ya = max(0, x0), max(0, y0)
        xb, yb = min(nx, x0 + stamp.shape[1]), min(ny, y0 + stamp.shape[0])
        if xb <= xa or yb <= ya:
            return
        target[ya:yb, xa:xb] += flux * stamp[ya - y0 : yb - y0, xa - x0 : xb - x0]


def _galaxy(row: Any, flux: float) -> galsim.GSObject:
    disk = galsim.Exponential(half_light_radius=float(row.disk_hlr))
    disk = disk.shear(e1=float(row.e1), e2=float(row.e2))
    bf = float(row.bulge_fraction)
    if bf <= 0.0:
        return disk.withFlux(flux)
    bulge = galsim.DeVaucouleurs(
        half_light_radius=float(row.bulge_hlr), trunc=8 * float(row.bulge_hlr)
    )
    bulge = bulge.shear(e1=0.3 * float(row.e1), e2=0.3 * float(row.e2))
    return galsim.Add([bulge.withFlux(bf * flux), disk.withFlux((1.0 - bf) * flux)])


def render_visit(
    size: ReleaseSize, plan: VisitPlan, detector: int, truth: pd.DataFrame, seed: int
) -> Any:
    """Render one detector of one visit as an `lsst.images.MaskedImage` in nJy."""
    from astropy.wcs import WCS
    from lsst.images import Box, DetectorFrame, Image, Mask, MaskedImage, SkyProjection

    n = size.detector_pixels
    wcs: WCS = detector_wcs(size, plan, detector)
    calib = calib_njy_per_electron(plan.band)
    sky = sky_electrons(plan.band, size.pixel_scale)
    psf = moffat_psf(plan.fwhm_arcsec)
    fwhm_pix = plan.fwhm_arcsec / size.pixel_scale

    # Local affine WCS for GalSim (TAN distortion over a detector is far below a milli-pixel).
    jac = wcs.wcs.cd * 3600.0  # arcsec per pixel
    local = galsim.JacobianWCS(-jac[0, 0], -jac[0, 1], jac[1, 0], jac[1, 1])
    model = galsim.ImageF(n, n, wcs=local, xmin=0, ymin=0)

    fluxes_njy = flux_at(truth, plan.band, plan.mjd)
    xs, ys = wcs.all_world2pix(truth["ra"].to_numpy(), truth["dec"].to_numpy(), 0)
    margin = 30
    inside = (xs > -margin) & (xs < n + margin) & (ys > -margin) & (ys < n + margin)
    gsparams = galsim.GSParams(maximum_fft_size=8192)
    stars = _StarStamps(psf, local)
    for row, x, y, f_njy in zip(
        truth[inside].itertuples(), xs[inside], ys[inside], fluxes_njy[inside], strict=True
    ):
        flux_e = float(f_njy / calib)
        if flux_e <= 0:
            continue
        if row.truth_type == 1:
            radius = int(min(150, max(12, 3 * fwhm_pix * (flux_e / 2e3) ** 0.25)))
            stars.add(model.array, x, y, flux_e, radius)
            continue
        obj = galsim.Convolve([_galaxy(row, flux_e), psf], gsparams=gsparams)
        radius = int(min(150, max(12, 4 * fwhm_pix + 6 * row.disk_hlr / size.pixel_scale)))
        ix, iy = round(x), round(y)
        bounds = galsim.BoundsI(ix - radius, ix + radius, iy - radius, iy + radius) & model.bounds
        if not bounds.isDefined():
            continue
        stamp = model[bounds]
        obj.drawImage(image=stamp, add_to_image=True, center=galsim.PositionD(x, y))

    rng = np.random.default_rng(np.random.SeedSequence([seed, plan.visit, detector]))
    expected = model.array.astype(np.float64) + sky
    counts = rng.normal(expected, np.sqrt(np.maximum(expected, 0.0)))
    image_e = counts - sky
    variance_e = expected.copy()

    # Mask planes: saturation, a defective column or two, the detector edge.
    schema = mask_schema()
    mask = Mask(schema=schema, bbox=Box.from_shape((n, n)))
    saturated = counts > FULL_WELL
    image_e[saturated] = FULL_WELL - sky
    mask.set("SAT", saturated)
    bad = np.zeros((n, n), dtype=bool)
    for col in rng.integers(EDGE_WIDTH, n - EDGE_WIDTH, size=max(1, n // 1000)):
        bad[:, col] = True
    image_e[bad] = 0.0
    mask.set("BAD", bad)
    edge = np.zeros((n, n), dtype=bool)
    edge[:EDGE_WIDTH, :] = edge[-EDGE_WIDTH:, :] = True
    edge[:, :EDGE_WIDTH] = edge[:, -EDGE_WIDTH:] = True
    mask.set("EDGE", edge)

    frame = DetectorFrame(
        instrument=INSTRUMENT, visit=plan.visit, detector=detector, bbox=mask.bbox
    )
    projection = SkyProjection.from_fits_wcs(wcs, frame, pixel_bounds=mask.bbox)
    metadata: dict[str, Any] = {
        "INSTRUME": INSTRUMENT,
        "VISIT": plan.visit,
        "DETECTOR": detector,
        "BAND": plan.band,
        "FILTER": physical_filter(plan.band),
        "MJD-OBS": plan.mjd,
        "EXPTIME": plan.exposure_time,
        "PSF_FWHM": plan.fwhm_arcsec,
        "PSF_BETA": PSF_BETA,
        "PIXSCALE": size.pixel_scale,
        "SKY_E": sky,
        "CALIB": calib,
        "BUNIT": "nJy",
    }
    image = Image((image_e * calib).astype(np.float32), unit=u.nJy, sky_projection=projection)
    variance = Image((variance_e * calib**2).astype(np.float32), unit=u.nJy**2)
    return MaskedImage(
        image, mask=mask, variance=variance, sky_projection=projection, metadata=metadata
    )
