"""The SODA cutout service: parameter handling, and the real service behind a real hub."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS

from skydeck.images.cutouts import CutoutEngine
from skydeck.images.soda._ratelimit import RateLimiter
from skydeck.images.soda._service import UsageError, circle, pos
from support.hub import RunningHub
from support.images import IMAGES_HUB_RATE_LIMIT, MiniRepo

RATE_LIMIT = IMAGES_HUB_RATE_LIMIT


def test_region_parsing() -> None:
    region = circle("62.0 -37.0 0.001")
    assert (region.ra, region.dec, region.width) == (62.0, -37.0, 0.002)
    assert pos("CIRCLE 10 20 0.5").width == 1.0
    box = pos("RANGE 61.99 62.01 -37.01 -36.99")
    assert abs(box.dec + 37.0) < 1e-9 and abs(box.height - 0.02) < 1e-9
    assert abs(pos("POLYGON 1 1 1.1 1 1.1 1.1").ra - 1.05) < 1e-9
    for bad in ("62 -37", "a b c", "62 -95 0.1", "62 -37 -1", "62 -37 nan"):
        with pytest.raises(UsageError):
            circle(bad)
    for bad in ("BOX 1 2 3 4", "RANGE 2 1 3 4", "POLYGON 1 2 3 4"):
        with pytest.raises(UsageError):
            pos(bad)


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 10.0, clock=lambda: now[0])
    assert [limiter.check("a").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.check("a")
    assert denied.headers()["Retry-After"] == "10" and denied.remaining == 0
    assert limiter.check("b").allowed  # per user
    now[0] = 10.5
    assert limiter.check("a").allowed


@pytest.fixture(scope="module")
def soda_hub(images_hub: RunningHub) -> RunningHub:
    return images_hub


@pytest.fixture(scope="module")
def coadd_id(mini_image_repo: MiniRepo) -> str:
    engine = CutoutEngine.from_repo(str(mini_image_repo.repo))
    ra, dec = mini_image_repo.stars[0]
    return str(engine.find_coadd(ra, dec, "r", 50).id)


def _sync(hub: RunningHub, token: str | None, **params: str) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(
        f"{hub.url}/services/cutouts/sync", params=params, headers=headers, timeout=60
    )


@pytest.mark.slow
def test_sync_cutout_is_fits_with_wcs(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str
) -> None:
    ra, dec = mini_image_repo.stars[0]
    token = soda_hub.user_token("alice")
    response = _sync(soda_hub, token, ID=coadd_id, CIRCLE=f"{ra} {dec} {20 * 0.2 / 3600}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fits"
    assert int(response.headers["X-RateLimit-Limit"]) == RATE_LIMIT
    with fits.open(io.BytesIO(response.content)) as hdus:
        image = hdus["IMAGE"]
        assert image.data.shape == (40, 40)
        assert hdus["VARIANCE"].data.shape == (40, 40) and hdus["MASK"].data.shape == (40, 40)
        x, y = WCS(image.header).all_world2pix(ra, dec, 0)
        assert abs(x - 20) <= 0.5 and abs(y - 20) <= 0.5
        assert hdus[0].header["DATASET"] == coadd_id
        # The same pixels as the engine gives in process.
        engine = CutoutEngine.from_repo(str(mini_image_repo.repo))
        np.testing.assert_array_equal(image.data, engine.cutout(coadd_id, ra, dec, 40).image)
    # POS=RANGE, lower-case parameter names (SODA names are case-insensitive), POST.
    d = 10 * 0.2 / 3600
    response = requests.post(
        f"{soda_hub.url}/services/cutouts/sync",
        data={
            "id": coadd_id,
            "pos": f"RANGE {ra - d / np.cos(np.radians(dec))} "
            f"{ra + d / np.cos(np.radians(dec))} {dec - d} {dec + d}",
        },
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    with fits.open(io.BytesIO(response.content)) as hdus:
        assert hdus["IMAGE"].data.shape == (20, 20)


@pytest.mark.slow
def test_unauthenticated_is_refused(soda_hub: RunningHub, coadd_id: str) -> None:
    response = _sync(soda_hub, None, ID=coadd_id, CIRCLE="62 -37 0.001")
    assert response.status_code == 401 and "token" in response.text
    response = _sync(soda_hub, "not-a-real-token", ID=coadd_id, CIRCLE="62 -37 0.001")
    assert response.status_code == 401 and "not valid" in response.text


@pytest.mark.slow
def test_bad_requests_get_clear_4xx(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str
) -> None:
    ra, dec = mini_image_repo.stars[0]
    token = soda_hub.user_token("bob")
    cases = [
        ({"CIRCLE": f"{ra} {dec} 0.001"}, 400, "exactly one ID"),
        ({"ID": coadd_id}, 400, "exactly one region"),
        ({"ID": coadd_id, "CIRCLE": "62 -37"}, 400, "needs 3 numbers"),
        ({"ID": "../../../etc/passwd", "CIRCLE": f"{ra} {dec} 0.001"}, 404, "not a dataset ID"),
        ({"ID": str(uuid.uuid4()), "CIRCLE": f"{ra} {dec} 0.001"}, 404, "No dataset with ID"),
        ({"ID": coadd_id, "CIRCLE": f"{ra + 5} {dec} 0.001"}, 400, "does not overlap"),
        ({"ID": coadd_id, "CIRCLE": f"{ra} {dec} 2"}, 400, "limit is"),
    ]
    for params, status, text in cases:
        response = _sync(soda_hub, token, **params)
        assert response.status_code == status, (params, response.text)
        assert text in response.text, (params, response.text)


@pytest.mark.slow
def test_rate_limit_answers_429(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str
) -> None:
    ra, dec = mini_image_repo.stars[0]
    token = soda_hub.user_token("rita")
    statuses = []
    for _ in range(RATE_LIMIT + 1):
        response = _sync(soda_hub, token, ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
        statuses.append(response.status_code)
    assert statuses == [200] * RATE_LIMIT + [429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "retry after" in response.text
    # Another user is not affected.
    other = _sync(soda_hub, soda_hub.user_token("carol"), ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
    assert other.status_code == 200
