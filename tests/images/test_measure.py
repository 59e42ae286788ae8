"""Measurement algorithms against known answers: model stamps match GalSim's own drawing;
moments, apertures and Kron photometry of GalSim Gaussians match their analytic values."""

from __future__ import annotations

import math

import galsim
import numpy as np
import pytest

from skydeck.images.release import _measure as m


@pytest.mark.parametrize("hlr_pixels", [0.0, 0.75, 5.0])
@pytest.mark.parametrize(("qx", "qy"), [(0, 0), (3, -4), (-5, 5)])
def test_shifted_stamp_matches_galsim_offset_drawing(hlr_pixels: float, qx: int, qy: int) -> None:
    psf = m.weighted_psf([4.0, 4.6, 3.3], [1.0, 0.8, 0.5], 3.5)
    r = 12
    profile = psf.profile
    if hlr_pixels > 0:
        profile = galsim.Convolve([galsim.Exponential(half_light_radius=hlr_pixels), profile])
    expected = profile.drawImage(
        nx=2 * r + 1, ny=2 * r + 1, scale=1.0, offset=(qx / m.SUBPIXEL, qy / m.SUBPIXEL)
    ).array
    stamp, x0, y0 = m.psf_model_stamp(
        psf, 100 + qx / m.SUBPIXEL, 50 + qy / m.SUBPIXEL, r, hlr_pixels
    )
    assert (x0, y0) == (100 - r, 50 - r)
    assert stamp.shape == expected.shape
    np.testing.assert_allclose(stamp, expected, atol=1e-4 * expected.max())


def _gaussian(sigma: float, flux: float = 1e5, g1: float = 0.0, g2: float = 0.0, n: int = 201):
    """A noiseless GalSim Gaussian at the centre (100, 100) of an n x n image (no pixel
    convolution, so its moments are exactly the analytic ones)."""
    profile = galsim.Gaussian(sigma=sigma, flux=flux).shear(g1=g1, g2=g2)
    image = profile.drawImage(nx=n, ny=n, scale=1.0, method="no_pixel").array
    return image.astype(np.float64), np.full(image.shape, 1.0), np.zeros(image.shape, dtype=bool)


def test_adaptive_moments_of_an_elliptical_gaussian_are_analytic() -> None:
    sigma, g1, g2 = 3.0, 0.2, -0.1
    image, _, bad = _gaussian(sigma, g1=g1, g2=g2)
    got = m.adaptive_moments(image, bad, 100.0, 100.0, sigma, 30)
    # The covariance of a round Gaussian sheared by g: sigma^2 S S^T with the shear matrix S.
    shear = galsim.Shear(g1=g1, g2=g2).getMatrix()
    expected = sigma**2 * shear @ shear.T
    assert not got.flag
    np.testing.assert_allclose(
        [got.xx, got.yy, got.xy], [expected[0, 0], expected[1, 1], expected[0, 1]], rtol=1e-4
    )


def test_psf_moments_of_a_moffat_match_galsim() -> None:
    psf = m.moffat(4.0, 3.5)
    got = m.psf_moments(psf, 20)
    expected = galsim.Moffat(beta=3.5, fwhm=4.0).drawImage(nx=41, ny=41, scale=1.0)
    sigma = galsim.hsm.FindAdaptiveMom(expected).moments_sigma
    assert not got.flag and got.xy == pytest.approx(0.0, abs=1e-6)
    assert got.xx == pytest.approx(sigma**2, rel=1e-4) and got.yy == pytest.approx(
        sigma**2, rel=1e-4
    )


def test_aperture_fluxes_of_a_gaussian_are_analytic() -> None:
    sigma, flux = 4.0, 1e5
    image, var, bad = _gaussian(sigma, flux, n=161)
    radii = (3, 6, 9, 12, 17, 25, 35, 50, 70)
    got = m.aperture_fluxes(image, var, bad, 80.0, 80.0, radii)
    for radius, (f, err, flag) in zip(radii, got, strict=True):
        assert not flag
        assert f == pytest.approx(flux * (1 - math.exp(-(radius**2) / (2 * sigma**2))), rel=3e-3)
        # Unit variance: the error is sqrt(sum frac^2), between the areas of r - 1/2 and r.
        assert math.sqrt(math.pi) * (radius - 0.5) < err <= math.sqrt(math.pi) * radius
    # An aperture leaving the image is not measured.
    edge = m.aperture_fluxes(image, var, bad, 10.0, 80.0, (3, 12))
    assert not edge[0][2] and edge[1][2] and math.isnan(edge[1][0])


def test_kron_radius_and_flux_of_a_gaussian_are_analytic() -> None:
    sigma, flux = 3.0, 1e5
    image, var, bad = _gaussian(sigma, flux, g1=0.3)
    shape = m.adaptive_moments(image, bad, 100.0, 100.0, sigma, 40)
    kron = m.kron_flux(image, var, bad, 100.0, 100.0, shape)
    # For a Gaussian, r1 = sqrt(pi/2) sqrt(a b); within 2.5 r1 lies 1 - exp(-(2.5 r1)^2 / 2).
    r1 = math.sqrt(math.pi / 2)
    assert not kron.flag
    assert kron.radius == pytest.approx(r1 * sigma, rel=5e-3)
    assert kron.flux == pytest.approx(flux * (1 - math.exp(-((2.5 * r1) ** 2) / 2)), rel=5e-3)


def test_watershed_splits_two_overlapping_gaussians_at_the_saddle() -> None:
    n = 80
    yy, xx = np.mgrid[0:n, 0:n]
    left = 1000 * np.exp(-((xx - 30) ** 2 + (yy - 40) ** 2) / (2 * 5.0**2))
    right = 500 * np.exp(-((xx - 46) ** 2 + (yy - 40) ** 2) / (2 * 4.0**2))
    sn = left + right - 20  # a footprint: the pixels above 20
    owner = m.deblend_footprint(sn, [(30, 40), (46, 40)])
    assert owner[40, 30] == 0 and owner[40, 46] == 1
    assert (owner[sn <= 0] == -1).all() and (owner[sn > 0] >= 0).all()
    # Along the line joining them, ownership changes once, at the minimum of the light.
    row = owner[40, 30:47]
    switch = 30 + int(np.argmax(row == 1))
    saddle = 30 + int(np.argmin((left + right)[40, 30:47]))
    assert abs(switch - saddle) <= 1
    # The blendedness of each child is the weighted fraction of light in the other's pixels.
    image = left + right
    b0, flag0 = m.blendedness(image, 30.0, 40.0, 5.0, owner == 1, (slice(0, n), slice(0, n)))
    b1, flag1 = m.blendedness(image, 46.0, 40.0, 4.0, owner == 0, (slice(0, n), slice(0, n)))
    assert not flag0 and not flag1 and 0 < b0 < b1 < 1
    iso, _ = m.blendedness(left, 30.0, 40.0, 5.0)
    assert iso == 0.0
