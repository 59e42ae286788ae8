"""``skydeck up --release``: a release outside the data directory, e.g. on S3.

The hub's configuration hands the location to every managed service and lab,
with the S3 and registry variables JupyterHub would otherwise strip; ``skydeck
up`` refuses, in one line, a release that does not answer or has no manifest.
(The whole platform on an S3 release: tests/e2e/test_production.py.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from skydeck.hub.config import HubSettings, configure_hub
from skydeck.hub.kubernetes import service_command
from skydeck.hub.services import BACKEND_ENV, release_location
from support.hub import free_port

URI = "s3://skydeck-releases/dr1"
S3_ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "key-id",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_release_location_keeps_uris_and_links(tmp_path: Path) -> None:
    assert release_location("s3://bucket/dr1/") == "s3://bucket/dr1"
    assert release_location(tmp_path / "a" / ".." / "rel") == tmp_path / "rel"
    (tmp_path / "dr1").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "dr1")
    # a link stays a link: re-pointing it at a new release is how releases are swapped
    assert release_location(tmp_path / "current") == tmp_path / "current"


def test_settings_round_trip(tmp_path: Path) -> None:
    remote = HubSettings(data_dir=tmp_path, release=URI)
    assert remote.remote_release and remote.release_location == URI
    assert HubSettings.from_env(remote.to_env()).release_location == URI
    local = HubSettings(data_dir=tmp_path)
    assert not local.remote_release
    assert local.release_location == tmp_path / "release"
    assert HubSettings.from_env(local.to_env()).release_location == tmp_path / "release"


def _services(c: Any) -> dict[str, dict[str, Any]]:
    return {spec["name"]: spec for spec in c.JupyterHub.services}


def test_services_and_labs_get_the_s3_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PGPASSWORD", "the-hub-database-password")
    c = Config()
    configure_hub(c, HubSettings(data_dir=tmp_path, release=URI))
    services = _services(c)
    tap = services["tap"]["command"]
    assert tap[tap.index("--release") + 1] == URI
    assert services["cutouts"]["environment"]["SKYDECK_CUTOUTS_RELEASE"] == URI
    assert services["dask-gateway"]["environment"]["SKYDECK_RELEASE"] == URI
    # JupyterHub starts managed services with a minimal environment: S3 settings go along.
    for name in ("tap", "cutouts", "dask-gateway", "quota"):
        environment = services[name]["environment"]
        assert {k: environment.get(k) for k in S3_ENV} == S3_ENV, name
        assert "PGPASSWORD" not in environment, f"{name} must not get the hub's DB password"
    # Labs: the discovery variable names the URI; the spawner keeps the S3 variables.
    assert c.SkydeckLocalSpawner.discovery_env["SKYDECK_RELEASE"] == URI
    assert set(S3_ENV) <= set(c.SkydeckLocalSpawner.env_keep)
    assert "PGPASSWORD" not in c.SkydeckLocalSpawner.env_keep
    assert not (tmp_path / "release").exists()


def test_gateway_workers_inherit_the_s3_variables(tmp_path: Path) -> None:
    from skydeck.hub._gateway_backend import gateway_config
    from skydeck.hub.gateway import GatewaySettings

    settings = GatewaySettings(
        state_dir=tmp_path,
        http_address="127.0.0.1:1",
        tcp_address="127.0.0.1:2",
        api_address="127.0.0.1:3",
    )
    inherited = gateway_config(settings).SkydeckGatewayBackend.inherited_environment
    assert {"SKYDECK_RELEASE", *BACKEND_ENV} <= set(inherited)


def test_kubernetes_service_pods_keep_the_uri(tmp_path: Path) -> None:
    env = {
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_API_TOKEN": "from-the-chart-secret",
        "SKYDECK_STATE_DIR": str(tmp_path / "tap"),
        "SKYDECK_RELEASE": URI,
    }
    command, _ = service_command("tap", env)
    assert command[command.index("--release") + 1] == URI


def _up(tmp_path: Path, release: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    command = [sys.executable, "-m", "skydeck.hub", "up", "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [*command, "--port", str(free_port()), "--release", release],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**base, **env},
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Skydeck is starting" not in result.stdout
    return lines[0]


def test_up_refuses_a_directory_without_a_release(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-release"
    empty.mkdir()
    line = _one_line_error(_up(tmp_path, str(empty), {}))
    assert line.startswith(f"skydeck: error: cannot serve the data release at {empty}: ")
    assert "No Skydeck data release" in line
    assert not (tmp_path / "data" / "release").exists(), "nothing may be built"


def test_up_refuses_an_unreachable_object_store(tmp_path: Path) -> None:
    unreachable = {**S3_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    line = _one_line_error(_up(tmp_path, URI, unreachable))
    assert line.startswith(f"skydeck: error: cannot serve the data release at {URI}: ")
    assert "Could not connect to the endpoint URL" in line
    assert "AWS_ENDPOINT_URL" in line
