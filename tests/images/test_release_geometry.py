"""The survey geometry: dithers keep the field centre on a detector in every visit."""

from __future__ import annotations

import numpy as np
import pytest

from skydeck.images.release._config import FIELD_DEC, FIELD_RA, SIZES
from skydeck.images.release._geometry import detector_ids, detector_wcs, plan_visits
from skydeck.images.release.simulate import EDGE_WIDTH


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_every_demo_visit_sees_the_field_centre(seed: int) -> None:
    # The demo camera has 2 x 2 detectors whose gaps cross at the boresight; the tutorials
    # look at the field centre, which an undithered visit would put in the gap.
    size = SIZES["demo"]
    n = size.detector_pixels
    for plan in plan_visits(size, seed):
        on = []
        for detector in detector_ids(size):
            x, y = detector_wcs(size, plan, detector).all_world2pix(FIELD_RA, FIELD_DEC, 0)
            if EDGE_WIDTH <= x < n - EDGE_WIDTH and EDGE_WIDTH <= y < n - EDGE_WIDTH:
                on.append(detector)
        assert len(on) == 1, (plan.visit, on)


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_dithers_stay_within_their_amplitude_and_vary(name: str) -> None:
    size = SIZES[name]
    plans = plan_visits(size, 42)
    ra = np.array([(p.boresight_ra - FIELD_RA) * np.cos(np.radians(FIELD_DEC)) for p in plans])
    dec = np.array([p.boresight_dec - FIELD_DEC for p in plans])
    offsets = np.abs(np.concatenate([ra, dec])) * 3600.0
    assert offsets.max() <= size.dither_arcsec + 1e-6
    assert len(np.unique(np.round(offsets, 3))) == len(offsets)
