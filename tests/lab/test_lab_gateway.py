"""The dask-gateway service definition and its limits, without starting it.

``skydeck.hub._gateway_backend`` imports ``dask_gateway_server``, which rewrites
traitlets' global logging configuration on import; checks that need it run in a
subprocess so this test process stays clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from skydeck.hub.gateway import (
    PROXY_ADDRESS_ENV,
    DaskLimits,
    GatewaySettings,
    dask_gateway_service,
)
from skydeck.hub.services import ServiceContext


def _in_subprocess(code: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_limits_from_environment_round_trip():
    env = {
        "SKYDECK_GATEWAY_MAX_CLUSTERS": "3",
        "SKYDECK_GATEWAY_MAX_WORKERS": "none",
        "SKYDECK_GATEWAY_MAX_MEMORY_GIB": "12.5",
        "SKYDECK_GATEWAY_IDLE_TIMEOUT": "60",
    }
    limits = DaskLimits.from_env(env)
    assert limits.max_clusters == 3
    assert limits.max_workers is None
    assert limits.max_memory_gib == 12.5
    assert limits.max_cores == DaskLimits().max_cores
    assert limits.idle_timeout == 60
    assert DaskLimits.from_env(limits.to_env()) == limits


def test_limits_need_values_where_there_is_no_unlimited():
    with pytest.raises(ValueError, match="worker_cores needs a value"):
        DaskLimits.from_mapping({"worker_cores": None})


def test_service_definition(tmp_path: Path):
    context = ServiceContext(
        name="dask-gateway",
        port=41234,
        data_dir=tmp_path,
        state_dir=tmp_path / "services" / "dask-gateway",
        release_dir=tmp_path / "release",
        public_url="http://127.0.0.1:8000",
        hub_api_url="http://127.0.0.1:8081/hub/api",
    )
    spec = dask_gateway_service(context)
    assert spec["command"] == [sys.executable, "-m", "skydeck.hub.gateway"]
    settings = GatewaySettings.from_env(spec["environment"])
    assert settings.http_address == "127.0.0.1:41234"
    assert settings.prefix == "/services/dask-gateway"
    assert settings.state_dir == context.state_dir
    tcp_port = settings.tcp_address.rsplit(":", 1)[1]
    assert spec["info"]["lab_environment"] == {PROXY_ADDRESS_ENV: f"gateway://127.0.0.1:{tcp_port}"}
    assert len({settings.http_address, settings.tcp_address, settings.api_address}) == 3
    (role,) = spec["roles"]
    assert role["services"] == ["dask-gateway"]
    assert set(role["scopes"]) == {"read:users:name", "read:servers"}


def test_gateway_settings_fail_clearly_outside_skydeck_up():
    with pytest.raises(SystemExit, match="SKYDECK_GATEWAY_STATE_DIR is not set"):
        GatewaySettings.from_env({})


def test_clusters_start_with_dask_scheduler_and_dask_worker(tmp_path: Path):
    found = _in_subprocess(
        f"""
        import json
        from pathlib import Path
        from skydeck.hub.gateway import GatewaySettings
        from skydeck.hub._gateway_backend import gateway_config
        settings = GatewaySettings(
            state_dir=Path({str(tmp_path)!r}), http_address="127.0.0.1:1",
            tcp_address="127.0.0.1:2", api_address="127.0.0.1:3",
        )
        c = gateway_config(settings)
        print(json.dumps({{
            "scheduler": list(c.ClusterConfig.scheduler_cmd),
            "worker": list(c.ClusterConfig.worker_cmd),
            "db": c.SkydeckGatewayBackend.db_url,
            "keys": len(c.SkydeckGatewayBackend.db_encrypt_keys),
        }}))
        """
    )
    dask = str(Path(sys.executable).with_name("dask"))
    assert found["scheduler"] == [dask, "scheduler"]
    assert found["worker"] == [dask, "worker"]
    assert found["db"] == f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    assert found["keys"] == 1
    assert (tmp_path / "db-encrypt-key").stat().st_mode & 0o777 == 0o600
    # The scripts dask-gateway 2026.3 would start by default are gone from distributed.
    assert not Path(sys.executable).with_name("dask-scheduler").exists()
    for sub in ("scheduler", "worker"):
        subprocess.run([dask, sub, "--help"], check=True, capture_output=True)


def test_cluster_options_and_quota_answers():
    found = _in_subprocess(
        """
        import json
        from skydeck.hub.gateway import DaskLimits
        from skydeck.hub._gateway_backend import (
            LimitError, cluster_options, dask_limits_from_quota,
        )
        limits = DaskLimits(max_workers=3, max_cores=2, max_memory_gib=4, idle_timeout=99)
        options = cluster_options(limits)
        overrides = options.get_configuration(
            options.parse_options({"worker_cores": 2, "worker_memory": 1.5}), None
        )
        try:
            options.get_configuration(options.parse_options({"worker_cores": 3}), None)
            too_many = "accepted"
        except Exception as error:
            too_many = type(error).__name__ + ": " + str(error)
        quota = {"user": "a", "quota": {"lab": {}, "dask": {
            "clusters": 5, "workers": None, "cores": 8.0, "memory_gib": 16.0}}}
        from_quota = dask_limits_from_quota(quota, limits)
        print(json.dumps({
            "overrides": overrides,
            "too_many": too_many,
            "from_quota": [from_quota.max_clusters, from_quota.max_workers,
                           from_quota.max_cores, from_quota.idle_timeout],
        }))
        """
    )
    overrides = found["overrides"]
    assert overrides["worker_cores"] == 2
    assert overrides["worker_threads"] == 2
    assert overrides["worker_memory"] == int(1.5 * 2**30)
    assert overrides["cluster_max_workers"] == 3
    assert overrides["cluster_max_cores"] == 3  # 2 for workers + the scheduler's
    assert overrides["idle_timeout"] == 99
    assert "worker_cores must be <= 2" in found["too_many"]
    assert found["from_quota"] == [5, None, 8.0, 99]


def test_gateway_process_exits_when_its_hub_is_gone():
    """A hub killed outright cannot stop its services: the gateway notices and stops itself."""
    import psutil

    # The parent exits once the child watches it (a fixed wait lost the race on a loaded
    # machine: a child still importing when its parent died never saw it go).
    child = (
        "from skydeck.hub.gateway import exit_with_parent\n"
        "import time\nexit_with_parent(0.2)\nprint('watching', flush=True)\ntime.sleep(120)\n"
    )
    parent = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}],\n"
        "                     stdout=subprocess.PIPE, text=True)\n"
        "p.stdout.readline()\nprint(p.pid, flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60
    )
    pid = int(result.stdout.strip())
    try:
        process = psutil.Process(pid)
        process.wait(timeout=20)  # raises TimeoutExpired if it lives on
    except psutil.NoSuchProcess:
        pass  # already gone
    finally:
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()
    assert not psutil.pid_exists(pid)
