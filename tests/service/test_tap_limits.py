"""TAP through the shared layer: hub tokens by HubAuth, limits from the quota service.

Each test fails with the hand-written copies the layer replaced: a revoked token
kept working for 60 s, TAP's 429 had no ``Retry-After``, and an unreachable quota
service made TAP fall back to its own generous defaults.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import requests
from astropy.io.votable import parse

from skydeck.service import REVOCATION_SECONDS, UNAVAILABLE
from support.hub import RunningHub, free_port
from support.tap import start_tap_server

pytestmark = pytest.mark.slow

QUERY = "SELECT TOP 1 objectId FROM Object"


@pytest.fixture(scope="module")
def tap_hub(hub_factory, tap_release) -> RunningHub:
    hub = hub_factory(release=Path(str(tap_release.layout.root)))
    deadline = time.monotonic() + 300  # a loaded 2-core machine starts services slowly
    while time.monotonic() < deadline:
        try:
            url = hub.url + "/services/tap/availability"
            if requests.get(url, timeout=5).status_code == 200:
                return hub
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"TAP never answered behind the hub; see {hub.log_path}")


def _query(hub: RunningHub, token: str) -> requests.Response:
    return requests.post(
        hub.url + "/services/tap/sync",
        data={"LANG": "ADQL", "QUERY": QUERY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _message(response: requests.Response) -> str:
    infos = parse(io.BytesIO(response.content)).resources[0].infos
    return " ".join(str(info.content) for info in infos)


def test_revoked_token_is_refused_within_seconds(tap_hub):
    tap_hub.ensure_user("revoked")
    made = tap_hub.api("POST", "/users/revoked/tokens", json={"note": "revocation test"})
    token, token_id = made.json()["token"], made.json()["id"]
    assert _query(tap_hub, token).status_code == 200
    assert tap_hub.api("DELETE", f"/users/revoked/tokens/{token_id}").status_code == 204
    time.sleep(REVOCATION_SECONDS + 1)  # the longest any service trusts a checked token
    refused = _query(tap_hub, token)
    assert refused.status_code in (401, 403), refused.text
    assert "revoked" in _message(refused)


def test_rate_limit_answers_429_with_retry_after(tap_hub):
    tap_hub.ensure_user("ratty")
    override = requests.put(
        tap_hub.url + "/services/quota/api/users/ratty/override",
        json={"quota": {"api": {"requests_per_minute": {"tap": 2}}}, "reason": "rate test"},
        headers={"Authorization": f"token {tap_hub.admin_token}"},
        timeout=30,
    )
    assert override.status_code == 200, override.text
    token = tap_hub.user_token("ratty")
    statuses = [_query(tap_hub, token) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    limited = statuses[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "retry in" in _message(limited)


def test_unreachable_quota_service_refuses_queries(tap_release, tmp_path):
    """No fallback to the configured defaults: the query is refused, saying why."""
    server = start_tap_server(
        Path(str(tap_release.layout.root)),
        tmp_path / "tap",
        env={"SKYDECK_TAP_QUOTA_URL": f"http://127.0.0.1:{free_port()}/services/quota/"},
    )
    try:
        response = server.sync(QUERY)
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert UNAVAILABLE in _message(response)
        created = requests.post(
            server.url + "/async",
            data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
            timeout=60,
            allow_redirects=False,
        )
        assert created.status_code == 503 and UNAVAILABLE in _message(created)
        # cheap, quota-free documents still answer
        assert requests.get(server.url + "/tables", timeout=60).status_code == 200
    finally:
        server.stop()


def test_too_many_running_queries_answer_429_with_retry_after(tap_release, tmp_path):
    """TAP's own concurrency refusal says when to retry too (every 429 does)."""
    server = start_tap_server(
        Path(str(tap_release.layout.root)),
        tmp_path / "tap",
        env={"SKYDECK_TAP_MAX_CONCURRENT_PER_USER": "0"},
    )
    try:
        response = server.sync(QUERY)
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert "queries running" in _message(response)
    finally:
        server.stop()
