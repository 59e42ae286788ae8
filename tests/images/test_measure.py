"""Measurement model stamps: Fourier-shifted drawings match GalSim's own offset drawing."""

from __future__ import annotations

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
