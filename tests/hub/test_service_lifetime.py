"""Managed services stop themselves when the hub that started them is killed outright.

A stand-in hub process starts each service exactly as the hub would (the command and
environment of its ``skydeck.services`` factory), then dies by SIGKILL, so it cannot
stop anything. The service must notice and exit, freeing its port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from skydeck.hub.services import ServiceContext, discover_service_factories
from support.hub import free_port

pytestmark = pytest.mark.slow

#: Starts the service given as JSON (command, environment, cwd), prints its pid, waits.
_STAND_IN_HUB = r"""
import json, subprocess, sys, time
spec = json.loads(sys.argv[1])
child = subprocess.Popen(spec["command"], env=spec["env"], cwd=spec["cwd"])
print(child.pid, flush=True)
time.sleep(3600)
"""


def _wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting: {what}")


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "probe"), [("tap", "availability"), ("cutouts", ""), ("quota", "")]
)
def test_service_exits_when_its_hub_is_killed(name: str, probe: str, tmp_path: Path) -> None:
    factory = discover_service_factories()[name]
    port = free_port()
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "services" / name).mkdir(parents=True)  # the hub makes services' folders
    context = ServiceContext(
        name=name,
        port=port,
        data_dir=tmp_path,
        state_dir=state,
        release_dir=tmp_path / "release",  # none yet: both services start without one
        public_url=f"http://127.0.0.1:{free_port()}",
        hub_api_url="http://127.0.0.1:9/hub/api",
    )
    spec = factory(context)
    # JupyterHub adds the service's URL and prefix to the factory's environment.
    env = {
        "PATH": os.environ["PATH"],
        **spec.get("environment", {}),
        "JUPYTERHUB_SERVICE_NAME": name,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": f"/services/{name}/",
        "JUPYTERHUB_API_URL": context.hub_api_url,
        "JUPYTERHUB_API_TOKEN": "stand-in-hub-token",
    }
    hub = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _STAND_IN_HUB,
            json.dumps(
                {"command": spec["command"], "env": env, "cwd": spec.get("cwd", str(state))}
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub.stdout is not None
    service = psutil.Process(int(hub.stdout.readline()))
    url = f"http://127.0.0.1:{port}/services/{name}/{probe}"
    try:
        _wait_for(lambda: _answers(url), 120, f"the {name} service to answer")
        hub.send_signal(signal.SIGKILL)
        hub.wait()
        _wait_for(
            lambda: not service.is_running() or service.status() == "zombie",
            60,
            f"the {name} service to stop after its hub was killed",
        )
        assert not _answers(url)
    finally:
        hub.kill()
        if service.is_running():
            service.kill()
