"""The server extension's routes, against a real ``jupyter lab`` and stand-in services."""

from __future__ import annotations

import http.client
import time
from datetime import datetime
from urllib.parse import parse_qs

import nbformat
import pytest
import requests

from .conftest import GIB, SERVICE_TOKEN, Lab, StandIns, write_tutorial

pytestmark = pytest.mark.slow


def test_extension_is_installed_and_enabled(services_lab: Lab) -> None:
    assert "skydeck.labextension: skydeck" not in services_lab.log.read_text()
    settings = requests.get(
        f"{services_lab.url}/lab/api/extensions", headers=services_lab.headers, timeout=10
    ).json()
    names = {entry["name"]: entry for entry in settings}
    assert names["skydeck-labextension"]["enabled"]
    assert names["skydeck-labextension"]["installed"]


def test_routes_need_login(services_lab: Lab) -> None:
    for path in ("tutorials", "status", "tap/tables", "quota"):
        response = requests.get(f"{services_lab.url}/skydeck/api/{path}", timeout=10)
        assert response.status_code == 403, path


def test_tutorials_listed_with_titles(services_lab: Lab) -> None:
    listing = services_lab.api("GET", "tutorials").json()
    by_path = {t["path"]: t for t in listing["tutorials"]}
    assert set(by_path) == {"01-introduction.ipynb", "02-tap.ipynb", "extra/03-routes.ipynb"}
    intro = by_path["01-introduction.ipynb"]
    assert intro["title"] == "Introduction to Skydeck"
    assert intro["description"] == "Where things are and how to use them."
    assert by_path["extra/03-routes.ipynb"]["copy_path"] == "tutorials/extra/03-routes.ipynb"


def _state(lab: Lab, path: str) -> str:
    listing = lab.api("GET", "tutorials").json()["tutorials"]
    return next(t["state"] for t in listing if t["path"] == path)


def test_tutorial_copy_update_and_edit_protection(services_lab: Lab) -> None:
    lab, path = services_lab, "extra/03-routes.ipynb"
    assert lab.tutorials is not None
    source, copy = lab.tutorials / path, lab.home / "tutorials" / path
    assert _state(lab, path) == "new"

    opened = lab.api("POST", "tutorials/open", json={"path": path}).json()
    assert opened == {"path": f"tutorials/{path}", "action": "copied", "backup": None}
    assert copy.read_bytes() == source.read_bytes()
    assert _state(lab, path) == "current"
    assert lab.api("POST", "tutorials/open", json={"path": path}).json()["action"] == "unchanged"

    # A new release of the tutorial replaces an untouched copy without asking.
    write_tutorial(source, "Route test tutorial", "Second edition.")
    assert _state(lab, path) == "outdated"
    assert lab.api("POST", "tutorials/open", json={"path": path}).json()["action"] == "updated"
    assert "Second edition." in copy.read_text()

    # An edited copy is never replaced without asking...
    notebook = nbformat.read(copy, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("my_own_work = 42"))
    nbformat.write(notebook, copy)
    write_tutorial(source, "Route test tutorial", "Third edition.")
    assert _state(lab, path) == "edited"
    refused = lab.api("POST", "tutorials/open", json={"path": path})
    assert refused.status_code == 409
    assert "edited your copy" in refused.json()["message"]
    assert refused.json()["copy_path"] == f"tutorials/{path}"
    assert "my_own_work" in copy.read_text()

    # ...and when the user agrees, the edited copy is kept as a backup.
    replaced = lab.api("POST", "tutorials/open", json={"path": path, "overwrite": True}).json()
    assert replaced["action"] == "replaced"
    backup = lab.home / replaced["backup"]
    assert backup.name.startswith("03-routes.edited-") and backup.suffix == ".ipynb"
    assert "my_own_work" in backup.read_text()
    assert "Third edition." in copy.read_text()
    assert _state(lab, path) == "current"


@pytest.mark.parametrize(
    "path",
    [
        "../secrets.ipynb",
        "/etc/passwd",
        "nope.ipynb",
        ".ipynb_checkpoints/hidden.ipynb",
        "01-introduction.py",
    ],
)
def test_tutorial_open_refuses_paths_outside_the_list(services_lab: Lab, path: str) -> None:
    response = services_lab.api("POST", "tutorials/open", json={"path": path})
    assert response.status_code == 404
    assert "pick one from the list" in response.json()["message"]


def test_tutorial_open_bad_body(services_lab: Lab) -> None:
    response = services_lab.api("POST", "tutorials/open", data="not json")
    assert response.status_code == 400
    assert '"path"' in response.json()["message"]


def test_no_tutorials_is_an_empty_list(bare_lab: Lab) -> None:
    assert bare_lab.api("GET", "tutorials").json()["tutorials"] == []


def test_tap_tables_passed_on_with_the_users_token(services_lab: Lab, standins: StandIns) -> None:
    before = len(standins.requests)
    response = services_lab.api("GET", "tap/tables")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "dp02_dc2_catalogs.Object" in response.text
    method, path, auth, _ = standins.requests[before]
    assert (method, path, auth) == ("GET", "/services/tap/tables", f"token {SERVICE_TOKEN}")


def test_tap_async_list_query_string_and_job(services_lab: Lab, standins: StandIns) -> None:
    response = services_lab.api("GET", "tap/async?LAST=20")
    assert response.status_code == 200 and "job-done" in response.text
    assert standins.requests[-1][1] == "/services/tap/async?LAST=20"
    job = services_lab.api("GET", "tap/async/job-done")
    assert "SELECT TOP 5 objectId" in job.text


def test_tap_new_job_answers_where_it_went(services_lab: Lab, standins: StandIns) -> None:
    response = services_lab.api(
        "POST", "tap/async", data={"LANG": "ADQL", "QUERY": "SELECT 1", "PHASE": "RUN"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["job_id"].startswith("job-new")
    assert body["location"].startswith(standins.tap_url)
    created = standins.created[-1]
    assert created["QUERY"] == ["SELECT 1"] and created["PHASE"] == ["RUN"]


def test_tap_paths_outside_the_protocol_are_refused(services_lab: Lab) -> None:
    host, port = services_lab.url.removeprefix("http://").split(":")
    for path in ("admin", "async/x/../../admin", "tables/..", "tables/../../quota", "async/.."):
        # http.client sends the path as is (requests would normalise the dots away).
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", f"/skydeck/api/tap/{path}", headers=services_lab.headers)
        response = connection.getresponse()
        assert response.status == 404, path
        assert b"not a TAP endpoint" in response.read(), path
        connection.close()


def test_tap_absent_or_down_says_so(bare_lab: Lab) -> None:
    down = bare_lab.api("GET", "tap/tables")
    assert down.status_code == 502
    assert "could not be reached" in down.json()["message"]
    absent = bare_lab.api("GET", "quota")
    assert absent.status_code == 503
    assert "SKYDECK_QUOTA_URL is not set" in absent.json()["message"]


def test_quota_document_passed_on(services_lab: Lab) -> None:
    response = services_lab.api("GET", "quota")
    assert response.status_code == 200
    assert response.json()["quota"]["quota"]["lab"]["memory_gib"] == 4.0


def test_status_with_quotas(services_lab: Lab) -> None:
    status = services_lab.api("GET", "status").json()
    assert status["quotas"] == "on"
    assert status["memory"]["used_bytes"] > 10 * 1024**2  # the lab server itself
    assert status["memory"]["limit_bytes"] == 4 * GIB
    assert status["dask"] == {"available": True, "workers": 3.0, "clusters": 1.0, "limit": 8.0}
    assert status["storage"]["used_bytes"] == 1.5 * GIB
    assert status["storage"]["limit_bytes"] == 20 * GIB
    culler = status["culler"]
    assert culler["timeout_seconds"] == 3600
    assert 0 < culler["seconds_left"] <= 3600
    assert culler["warn"] is True  # keepalive_warning=3600 in this lab


def test_status_without_quota_service(bare_lab: Lab) -> None:
    status = bare_lab.api("GET", "status").json()
    assert status["quotas"] == "absent"
    assert status["memory"]["limit_bytes"] is None
    assert status["dask"]["available"] is False
    assert status["storage"]["limit_bytes"] is None
    assert status["storage"]["used_bytes"] >= 3_000_000  # measured in the home
    assert status["culler"] == {
        "timeout_seconds": None,
        "idle_seconds": status["culler"]["idle_seconds"],
        "seconds_left": None,
        "warn": False,
    }


def _last_activity(lab: Lab) -> datetime:
    return datetime.fromisoformat(lab.server_status()["last_activity"].replace("Z", "+00:00"))


def test_status_polling_is_not_activity_but_keepalive_is(bare_lab: Lab) -> None:
    bare_lab.api("GET", "status")
    first = _last_activity(bare_lab)
    time.sleep(1.2)
    bare_lab.api("GET", "status")
    assert _last_activity(bare_lab) == first
    culler = bare_lab.api("POST", "keepalive", json={}).json()
    assert "idle_seconds" in culler
    assert _last_activity(bare_lab) > first


def test_tap_form_body_is_passed_on_unchanged(services_lab: Lab, standins: StandIns) -> None:
    query = "SELECT TOP 5 objectId, coord_ra FROM dp02_dc2_catalogs.Object WHERE coord_ra > 1"
    services_lab.api("POST", "tap/async", data={"QUERY": query, "LANG": "ADQL"})
    assert parse_qs(standins.requests[-1][3])["QUERY"] == [query]
