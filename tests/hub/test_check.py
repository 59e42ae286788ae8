"""``skydeck check``: synthetic users against a real hub, as an operator runs it.

The command runs as a subprocess against the shared hub serving the tiny release
(`release_hub`), with that hub's admin token, and only through public interfaces.
A second hub, whose TAP service is stopped, shows that a broken service turns
exactly its checks red with a message that says what to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from skydeck.catalog.release import ReleaseLayout
from support.hub import RunningHub

#: A TAP service that stopped after the hub started: its process answers the hub's
#: start-up probe (without which ``skydeck up`` refuses to start), then closes its port
#: and lives on serving nothing, so the proxy's route finds no server (as when TAP
#: crashed).  Killing the real TAP process would not do: JupyterHub restarts managed
#: services that exit.  An extra config file cannot edit the service list (it loads
#: into a config of its own), so the list is changed where JupyterHub reads it.
STOPPED_TAP = '''
import sys
from jupyterhub.app import JupyterHub

STAND_IN = """
import os, time, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

class Probe(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
server = HTTPServer((url.hostname, url.port), Probe)
server.handle_request()
server.server_close()
time.sleep(86400)
"""

_init_services = JupyterHub.init_services


def init_services(self):
    for service in self.services:
        if service["name"] == "tap":
            service["command"] = [sys.executable, "-c", STAND_IN]
    return _init_services(self)


JupyterHub.init_services = init_services
'''


def run_check(hub: RunningHub, json_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    """Run ``skydeck check`` against ``hub``; returns exit status, output and the JSON."""
    cmd = [sys.executable, "-m", "skydeck.hub", "check", "--hub", hub.url]
    cmd += ["--token", hub.admin_token, "--json", str(json_path), "--spawn-timeout", "300"]
    result = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=1800, check=False
    )
    output = result.stdout + result.stderr
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    return result.returncode, output, report


def by_status(report: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["status"] == status]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_check_is_green_on_a_working_platform(release_hub: RunningHub, tmp_path: Path) -> None:
    status, output, report = run_check(
        release_hub,
        tmp_path / "check.json",
        "--only",
        "tutorials,tap,cutouts,lsdb,dask",
        "--tutorials",
        "01,02a",
    )
    assert status == 0, output
    assert report["ok"] and not by_status(report, "fail") and not by_status(report, "skip")
    names = {r["name"] for r in report["results"]}
    groups = {r["group"] for r in report["results"]}
    assert groups == {"login", "spawn", "tutorials", "tap", "cutouts", "lsdb", "dask", "cleanup"}
    assert {"tap sync (pyvo)", "tap async (pyvo)", "tap upload (pyvo)"} <= names
    tutorials = [r["name"] for r in report["results"] if r["group"] == "tutorials"]
    assert any(n.startswith("01_") for n in tutorials)
    assert any(n.startswith("02a_") for n in tutorials)
    assert "all checks passed" in output
    # The bot cleaned up after itself: no lab, no token of its own left.
    bot = "bot-check-1"
    model = release_hub.api("GET", f"/users/{bot}").json()
    assert not model["servers"] and model["pending"] is None
    tokens = release_hub.api("GET", f"/users/{bot}/tokens").json()["api_tokens"]
    assert not [t for t in tokens if t.get("note") == "skydeck check"]


@pytest.mark.slow
def test_a_stopped_service_turns_exactly_its_checks_red(
    hub_factory: Callable[..., RunningHub], tiny_release: ReleaseLayout, tmp_path: Path
) -> None:
    config = tmp_path / "stopped_tap.py"
    config.write_text(STOPPED_TAP)
    hub = hub_factory(release=Path(str(tiny_release.root)), extra_config=[config])
    status, output, report = run_check(hub, tmp_path / "check.json", "--only", "tap,lsdb")
    assert status != 0, output
    failed = by_status(report, "fail")
    assert failed and {r["group"] for r in failed} == {"tap"}, output
    assert {r["group"] for r in by_status(report, "pass")} >= {"login", "lsdb", "cleanup"}
    first = failed[0]
    assert "503" in first["error"] and "/services/tap/" in first["where"], first
    assert "is the tap service running? see the hub log" in first["hint"]
    assert "FAIL" in output and "is the tap service running" in output


def test_bad_options_are_refused_with_a_clear_message() -> None:
    base = [sys.executable, "-m", "skydeck.hub", "check", "--hub", "http://127.0.0.1:9"]
    result = subprocess.run(
        [*base, "--token", "x", "--only", "tap,nonsense"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown check(s) nonsense" in result.stderr
    result = subprocess.run(base, capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 2 and "--token" in result.stderr


def test_an_unreachable_hub_fails_the_login_check(tmp_path: Path) -> None:
    json_path = tmp_path / "check.json"
    cmd = [sys.executable, "-m", "skydeck.hub", "check", "--hub", "http://127.0.0.1:9"]
    result = subprocess.run(
        [*cmd, "--token", "x", "--json", str(json_path), "--repeat", "2", "--users", "2"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(json_path.read_text())
    logins = [r for r in report["results"] if r["name"] == "login"]
    assert {(r["user"], r["run"]) for r in logins} == {
        (user, run) for user in ("bot-check-1", "bot-check-2") for run in (1, 2)
    }
    login = logins[0]
    assert login["status"] == "fail" and "cannot reach the hub" in login["error"]
    assert "--hub" in login["hint"] and login["where"].startswith("POST http://127.0.0.1:9/")
    assert "FAIL" in result.stdout and "checks failed" in result.stdout


#: Tutorials run at every size in the round below: the introduction, and the three that read
#: the Butler through lsst.resources, which broke on the spawner's CPU_LIMIT="2.0".  Every
#: tutorial runs at the default size in tests/notebooks (the whole round, 3 sizes x 11
#: tutorials, took 21 min on the loaded 2-core machine: past the suite's budget).
ROUND_TUTORIALS = ("01", "03a", "04a", "05")


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_every_size_runs_the_tutorials(release_hub: RunningHub, tmp_path: Path) -> None:
    """The round a bot makes at every size a user may be offered (three, by override)."""
    bot = "bot-full-1"
    release_hub.ensure_user(bot)  # a quota override is for a user the hub knows
    response = requests.put(
        f"{release_hub.url}/services/quota/api/users/{bot}/override",
        json={"quota": {"lab": {"cpu": None, "memory_gib": None}}, "reason": "every size"},
        headers={"Authorization": f"token {release_hub.admin_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    status, output, report = run_check(
        release_hub,
        tmp_path / "check.json",
        "--user-prefix",
        "bot-full",
        "--tutorials",
        ",".join(ROUND_TUTORIALS),
    )
    spawned = {r["name"] for r in report["results"] if r["name"].startswith("spawn (")}
    assert spawned == {"spawn (standard)", "spawn (large)", "spawn (xlarge)"}, output
    tutorials = [r for r in report["results"] if r["group"] == "tutorials"]
    assert len(tutorials) == 3 * (1 + len(ROUND_TUTORIALS)), output
    for prefix in ROUND_TUTORIALS:
        assert sum(r["name"].startswith(prefix + "_") for r in tutorials) == 3, output
    assert status == 0, output
