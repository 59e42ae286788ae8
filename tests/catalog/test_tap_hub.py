"""TAP as a JupyterHub managed service in a real ``skydeck up``: hub tokens, per-user jobs."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import pyvo
import requests
from astropy.io.votable import parse, parse_single_table

from skydeck.catalog.tap.service import hub_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tap_hub(hub_factory, tap_release):
    hub = hub_factory(release=Path(str(tap_release.layout.root)))
    url = hub.url + "/services/tap"
    deadline = time.monotonic() + 300  # a loaded 2-core machine starts services slowly
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/availability", timeout=5).status_code == 200:
                return hub
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"TAP never answered behind the hub; see {hub.log_path}")


def test_entry_point_describes_the_service(tmp_path):
    from skydeck.hub.services import ServiceContext, discover_service_factories

    assert discover_service_factories()["tap"] is hub_service
    context = ServiceContext(
        name="tap", port=4321, data_dir=tmp_path, state_dir=tmp_path / "tap",
        release_dir=tmp_path / "release", public_url="http://127.0.0.1:1",
        hub_api_url="http://127.0.0.1:2/hub/api",
    )  # fmt: skip
    spec = hub_service(context)
    assert spec["name"] == "tap"
    assert spec["command"][1:3] == ["-m", "skydeck.catalog.tap"]
    assert "4321" in spec["command"] and "hub" in spec["command"]
    assert spec["environment"]["SKYDECK_TAP_RELEASE"] == str(tmp_path / "release")


def _query(url: str, token: str | None, scheme: str = "Bearer") -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    return requests.post(
        url + "/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 4 objectId FROM Object"},
        headers=headers,
        timeout=60,
    )


def test_queries_need_a_hub_token(tap_hub):
    url = tap_hub.url + "/services/tap"
    anonymous = _query(url, None)
    assert anonymous.status_code == 401
    info = next(i for i in parse(io.BytesIO(anonymous.content)).resources[0].infos)
    assert "hub token" in info.content
    assert _query(url, "not-a-token").status_code == 401
    token = tap_hub.user_token("alice")
    for scheme in ("Bearer", "token"):
        ok = _query(url, token, scheme)
        assert ok.status_code == 200, ok.text
        assert len(parse_single_table(io.BytesIO(ok.content)).array) == 4
    # VOSI documents stay public, with URLs under the hub's prefix
    caps = requests.get(url + "/capabilities", timeout=30).text
    assert "/services/tap" in caps


def test_users_see_only_their_own_jobs(tap_hub):
    url = tap_hub.url + "/services/tap"
    alice = {"Authorization": f"Bearer {tap_hub.user_token('alice')}"}
    bob = {"Authorization": f"Bearer {tap_hub.user_token('bob')}"}
    created = requests.post(
        url + "/async",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 2 objectId FROM Object", "PHASE": "RUN"},
        headers=alice,
        allow_redirects=False,
        timeout=60,
    )
    assert created.status_code == 303
    job = created.headers["location"]
    assert "/services/tap/async/" in job
    job_id = job.rsplit("/", 1)[1]
    assert requests.get(job, headers=alice, timeout=30).status_code == 200
    assert requests.get(job, headers=bob, timeout=30).status_code == 404
    assert requests.get(job + "/results/result", headers=bob, timeout=30).status_code == 404
    assert requests.delete(job, headers=bob, timeout=30).status_code == 404
    assert job_id in requests.get(url + "/async", headers=alice, timeout=30).text
    assert job_id not in requests.get(url + "/async", headers=bob, timeout=30).text
    assert "<uws:ownerId>alice</uws:ownerId>" in requests.get(job, headers=alice, timeout=30).text


def test_pyvo_through_the_hub(tap_hub):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tap_hub.user_token('carol')}"
    service = pyvo.dal.TAPService(tap_hub.url + "/services/tap/", session=session)
    job = service.submit_job("SELECT TOP 3 objectId FROM Object ORDER BY objectId")
    job.run()
    job.wait(phases=["COMPLETED", "ERROR"], timeout=60)
    job.raise_if_error()
    assert len(job.fetch_result().to_table()) == 3
    assert len(service.search("SELECT COUNT(*) AS n FROM Object").to_table()) == 1


def test_quota_override_tightens_maxrec(tap_hub):
    tap_hub.ensure_user("dave")
    token = tap_hub.user_token("dave")
    override = requests.put(
        tap_hub.url + "/services/quota/api/users/dave/override",
        json={"quota": {"tap": {"maxrec": 3}}, "reason": "TAP quota test"},
        headers={"Authorization": f"token {tap_hub.admin_token}"},
        timeout=30,
    )
    assert override.status_code == 200, override.text
    response = requests.post(
        tap_hub.url + "/services/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT objectId FROM Object", "MAXREC": "100"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert len(parse_single_table(io.BytesIO(response.content)).array) == 3
    assert 'value="OVERFLOW"' in response.text
    # others keep the configured ceiling
    other = _query(tap_hub.url + "/services/tap", tap_hub.user_token("alice"))
    assert len(parse_single_table(io.BytesIO(other.content)).array) == 4
