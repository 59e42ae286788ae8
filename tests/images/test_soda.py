"""The SODA cutout service: parameter handling, and the real service behind a real hub."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS

from skydeck.images.cutouts import CutoutEngine
from skydeck.images.soda._service import UsageError, circle, normalize_params, pos
from skydeck.service import REVOCATION_SECONDS, UNAVAILABLE
from support.hub import RunningHub, free_port
from support.images import MiniRepo

#: Cutout requests per minute of the user the rate test limits (a quota override).
RATE_LIMIT = 8


def test_region_parsing() -> None:
    region = circle("62.0 -37.0 0.001")
    assert (region.ra, region.dec, region.width) == (62.0, -37.0, 0.002)
    assert pos("CIRCLE 10 20 0.5").width == 1.0
    box = pos("RANGE 61.99 62.01 -37.01 -36.99")
    assert abs(box.dec + 37.0) < 1e-9 and abs(box.height - 0.02) < 1e-9
    assert abs(pos("POLYGON 1 1 1.1 1 1.1 1.1").ra - 1.05) < 1e-9
    bad_circles = (
        "62 -37", "a b c", "62 -95 0.1", "62 -37 -1", "62 -37 nan", "62.0 -37.1 1e308",
        "62 -37 inf", "1e400 -37 0.1", "62 91 0.1", "62 -37 200",
    )  # fmt: skip
    for bad in bad_circles:
        with pytest.raises(UsageError):
            circle(bad)
    for bad in ("BOX 1 2 3 4", "RANGE 2 1 3 4", "POLYGON 1 2 3 4", "RANGE 1 2 -100 95"):
        with pytest.raises(UsageError):
            pos(bad)
    for items in ([("CIRCLE", "1 " * 5000)], [("X", "1")] * 100, [("ID", b"\xff")]):
        with pytest.raises(UsageError):
            normalize_params(items)  # type: ignore[arg-type]


def _set_cutout_rate(hub: RunningHub, user: str, per_minute: int) -> None:
    """A quota override: ``user`` may make ``per_minute`` cutout requests a minute."""
    hub.ensure_user(user)
    response = requests.put(
        f"{hub.url}/services/quota/api/users/{user}/override",
        json={
            "quota": {"api": {"requests_per_minute": {"cutouts": per_minute}}},
            "reason": "cutout rate test",
        },
        headers={"Authorization": f"token {hub.admin_token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


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
    assert int(response.headers["X-RateLimit-Limit"]) > 0  # the quota service's default
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
    assert response.status_code == 401 and "does not accept this token" in response.text


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
        # hostile numbers: overflow, NaN, infinity, latitudes off the sky, huge fields
        ({"ID": coadd_id, "CIRCLE": "62.0 -37.1 1e308"}, 400, "radius must be"),
        ({"ID": coadd_id, "CIRCLE": f"{ra} {dec} 179"}, 400, "limit is"),
        ({"ID": coadd_id, "CIRCLE": f"{ra} {dec} nan"}, 400, "finite"),
        ({"ID": coadd_id, "CIRCLE": f"inf {dec} 0.001"}, 400, "finite"),
        ({"ID": coadd_id, "CIRCLE": f"{ra} 95 0.001"}, 400, "outside [-90, 90]"),
        ({"ID": coadd_id, "POS": f"RANGE {ra} {ra + 1e-3} -91 {dec}"}, 400, "outside"),
        ({"ID": coadd_id, "POS": "POLYGON " + " ".join(["1e308"] * 6)}, 400, ""),
        ({"ID": coadd_id, "CIRCLE": f"{ra} {dec} " + "1" * 10_000}, 400, "too long"),
        ({"ID": "x" * 5000, "CIRCLE": f"{ra} {dec} 0.001"}, 400, "too long"),
    ]
    for params, status, text in cases:
        response = _sync(soda_hub, token, **params)
        assert response.status_code == status, (params, response.text[:300])
        assert text in response.text, (params, response.text[:300])
    url = f"{soda_hub.url}/services/cutouts/sync"
    headers = {"Authorization": f"token {token}"}
    # bytes that are not UTF-8, in the query string and in a form body
    raw = requests.get(f"{url}?ID=%ff%fe&CIRCLE=62%ff+-37+0.001", headers=headers, timeout=60)
    assert raw.status_code in (400, 404), raw.text
    form = requests.post(
        url,
        data=b"ID=" + coadd_id.encode() + b"&CIRCLE=\xff\xfe -37 0.001",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert form.status_code == 400, form.text
    # a huge body, a file upload: refused with a message
    huge = requests.post(
        url, data={"ID": coadd_id, "X": "1" * 200_000}, headers=headers, timeout=60
    )
    assert huge.status_code == 400 and "larger than" in huge.text, huge.text[:300]
    upload = requests.post(
        url, files={"ID": ("id.txt", coadd_id.encode())}, headers=headers, timeout=60
    )
    assert upload.status_code == 400, upload.text[:300]


@pytest.mark.slow
def test_rate_limit_answers_429(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str
) -> None:
    ra, dec = mini_image_repo.stars[0]
    # the rate is the quota service's: a per-user override, counted there for every replica
    _set_cutout_rate(soda_hub, "rita", RATE_LIMIT)
    token = soda_hub.user_token("rita")
    statuses = []
    for _ in range(RATE_LIMIT + 1):
        response = _sync(soda_hub, token, ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
        statuses.append(response.status_code)
    assert statuses == [200] * RATE_LIMIT + [429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "retry in" in response.text
    # Another user is not affected.
    other = _sync(soda_hub, soda_hub.user_token("carol"), ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
    assert other.status_code == 200


@pytest.mark.slow
def test_revoked_token_is_refused_within_seconds(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str
) -> None:
    soda_hub.ensure_user("revoked")
    made = soda_hub.api("POST", "/users/revoked/tokens", json={"note": "revocation test"})
    token, token_id = made.json()["token"], made.json()["id"]
    ra, dec = mini_image_repo.stars[0]
    first = _sync(soda_hub, token, ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
    assert first.status_code == 200, first.text
    assert soda_hub.api("DELETE", f"/users/revoked/tokens/{token_id}").status_code == 204
    time.sleep(REVOCATION_SECONDS + 1)  # the longest any service trusts a checked token
    refused = _sync(soda_hub, token, ID=coadd_id, CIRCLE=f"{ra} {dec} 0.0005")
    assert refused.status_code in (401, 403) and "revoked" in refused.text, refused.text


@pytest.mark.slow
def test_unreachable_quota_service_refuses_cutouts(
    soda_hub: RunningHub, mini_image_repo: MiniRepo, coadd_id: str, tmp_path: Path
) -> None:
    """A cutout service whose quota service is down refuses work instead of going unlimited."""
    port = free_port()
    env = {
        **os.environ,
        "SKYDECK_CUTOUTS_REPO": str(mini_image_repo.repo),
        "SKYDECK_CUTOUTS_PORT": str(port),
        "SKYDECK_CUTOUTS_PREFIX": "/services/cutouts/",
        "SKYDECK_CUTOUTS_HUB_API_URL": soda_hub.api_url,
        "SKYDECK_CUTOUTS_SERVICE_NAME": "cutouts",
        "SKYDECK_CUTOUTS_QUOTA_URL": f"http://127.0.0.1:{free_port()}/services/quota/",
    }
    log = (tmp_path / "cutouts.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "skydeck.images.soda.service"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/services/cutouts"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(url + "/", timeout=5).status_code == 200:
                    break
            time.sleep(0.3)
        ra, dec = mini_image_repo.stars[0]
        response = requests.get(
            url + "/sync",
            params={"ID": coadd_id, "CIRCLE": f"{ra} {dec} 0.0005"},
            headers={"Authorization": f"token {soda_hub.user_token('alice')}"},
            timeout=60,
        )
        assert response.status_code == 503, response.text
        assert UNAVAILABLE in response.text and int(response.headers["Retry-After"]) >= 1
    finally:
        process.terminate()
        process.wait(30)
