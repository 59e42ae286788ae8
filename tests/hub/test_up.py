"""The foundation: ``skydeck up`` gives a hub whose labs run the Skydeck kernel."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from support.hub import RunningHub, start_hub
from support.lab import LabSession

pytestmark = pytest.mark.slow


def test_kernel_runs_skydeck_lab(hub: RunningHub) -> None:
    token = hub.user_token("alice")
    url = hub.start_server("alice")
    lab = LabSession(url, token).start()
    try:
        out = lab.execute(
            "import skydeck.lab, os, sys\n"
            "info = skydeck.lab.where()\n"
            "print(info['user'], info['release'] == os.environ['SKYDECK_RELEASE'])\n"
            "print(sys.version_info[:2])\n"
            "print(os.getcwd() == os.environ['HOME'])"
        )
    finally:
        lab.shutdown()
    lines = out["stdout"].split("\n")
    assert lines[0] == "alice True"
    assert lines[1] == "(3, 12)"
    assert lines[2] == "True"
    specs = requests.get(
        f"{url}/api/kernelspecs", headers={"Authorization": f"token {token}"}, timeout=30
    ).json()
    assert specs["default"] == "skydeck"
    assert specs["kernelspecs"]["skydeck"]["spec"]["display_name"] == "Skydeck (Python 3.12)"
    # Each user has their own home under the data directory.
    assert (hub.data_dir / "home" / "alice").is_dir()
    # `skydeck up` told the person at the terminal where to go.
    assert f"Skydeck is ready: open {hub.url}/ and log in." in hub.log_path.read_text()


def test_other_user_and_anonymous_are_refused(hub: RunningHub) -> None:
    hub.start_server("alice")
    bob = hub.user_token("bob")
    for headers in ({"Authorization": f"token {bob}"}, {}):
        response = requests.get(
            f"{hub.url}/user/alice/api/status", headers=headers, timeout=30, allow_redirects=False
        )
        assert response.status_code in (302, 403), response.status_code
        if response.status_code == 302:  # anonymous: sent to log in, never to the lab
            assert "/hub/" in response.headers["Location"]
    # Bob's token cannot manage Alice through the hub API either.
    assert hub.api("GET", "/users/alice", token=bob).status_code == 404
    assert hub.api("POST", "/users/alice/server", token=bob).status_code in (403, 404)
    # An anonymous API request is refused.
    assert hub.api("GET", "/users", token=False).status_code == 403


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_stop_leaves_no_process_behind(tmp_path, how) -> None:
    hub = start_hub(tmp_path / "data")
    try:
        lab = LabSession(hub.start_server("carol"), hub.user_token("carol")).start()
        lab.execute("x = 1")
        before = hub.descendants()
        names = {p.name() for p in before}
        assert len(before) >= 3, names  # hub, proxy, services, lab and kernel
        # Not hub.stop(), which also cleans up after failures.
        if how == "SIGTERM":
            hub.process.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C: SIGINT to the whole foreground process group
            os.killpg(hub.process.pid, signal.SIGINT)
        # A hang guard only: how long stopping takes is measured in benchmarks/bench_hub.py.
        assert hub.process.wait(120) == 0
        time.sleep(0.5)
        alive = [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, [p.cmdline() for p in alive]
        # Every lab and service was stopped once, cleanly (a second, racing clean-up in
        # the hub used to log "Failed to stop user: ''").
        log = hub.log_path.read_text()
        assert "Failed to stop" not in log, log[log.find("Failed to stop") - 2000 :]
        assert "Stopped server carol/" in log
    finally:
        hub.stop()


def test_port_in_use_is_a_clear_error(hub: RunningHub, tmp_path) -> None:
    import subprocess
    import sys

    port = hub.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skydeck.hub",
            "up",
            "--port",
            port,
            "--data-dir",
            str(tmp_path),
            "--no-release",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_unwritable_data_dir_is_a_clear_error(tmp_path) -> None:
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skydeck.hub",
            "up",
            "--port",
            "0",
            "--data-dir",
            str(blocker / "data"),
            "--no-release",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "is not writable" in result.stderr


def test_idle_culler_stops_unused_labs(tmp_path) -> None:
    hub = start_hub(tmp_path / "data", args=["--idle-timeout", "6"])
    try:
        hub.start_server("erin")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not hub.api("GET", "/users/erin").json()["servers"]:
                break
            time.sleep(1)
        else:
            raise AssertionError("the idle culler did not stop erin's unused lab")
    finally:
        hub.stop()
