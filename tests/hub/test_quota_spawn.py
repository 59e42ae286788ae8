"""The hub-side quota hooks, on real processes and a real store (no hub needed)."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from tornado import web

from skydeck.hub.quota.model import DEFAULT_SIZES
from skydeck.hub.quota.spawn import QuotaHooks


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)

    warning = info
    error = info


def test_memory_watchdog_stops_a_lab_over_its_limit(tmp_path) -> None:
    hooks = QuotaHooks(f"sqlite:///{tmp_path / 'q.sqlite'}", None)
    # A real process holding ~60 MB, with a 20 MB limit, and one within its limit.
    code = (
        "import time; b = bytearray(60 * 1024 * 1024); "
        "b[::4096] = b'x' * len(b[::4096]); time.sleep(60)"
    )
    big = subprocess.Popen([sys.executable, "-c", code])
    small = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1.0)
        log = _Log()
        user = SimpleNamespace(name="ann")
        over = SimpleNamespace(pid=big.pid, mem_limit=20 * 1024**2, user=user, name="", log=log)
        within = SimpleNamespace(
            pid=small.pid, mem_limit=2 * 1024**3, user=SimpleNamespace(name="bob"), name="", log=log
        )
        hooks._watched = {("ann", ""): over, ("bob", ""): within}
        assert hooks.check_memory() == ["ann"]
        assert big.wait(timeout=10) != 0
        assert small.poll() is None
        assert "over its limit" in log.lines[0]
    finally:
        big.kill()
        small.kill()
        big.wait()
        small.wait()


def test_choose_size() -> None:
    status = SimpleNamespace(quota=SimpleNamespace(contact="the help desk"))
    sizes = DEFAULT_SIZES[:2]
    assert QuotaHooks.choose_size(sizes, {}, status).name == "standard"
    assert QuotaHooks.choose_size(sizes, {"size": ["large"]}, status).name == "large"
    with pytest.raises(web.HTTPError) as info:
        QuotaHooks.choose_size(sizes, {"size": "xlarge"}, status)
    assert info.value.status_code == 403
    assert "choose one of: standard, large" in str(info.value.log_message)
    assert "the help desk" in str(info.value.log_message)
    assert QuotaHooks.options_from_form({"size": ["large"]}) == {"size": "large"}


async def test_unreachable_quota_database_refuses_with_a_clear_message() -> None:
    from skydeck.hub.preflight import free_port

    hooks = QuotaHooks(f"postgresql+psycopg://quota@127.0.0.1:{free_port()}/quota", None)
    log = _Log()
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="ann", groups=[]), user_options={}, name="", log=log
    )
    with pytest.raises(web.HTTPError) as info:
        await hooks.pre_spawn_hook(spawner)
    assert info.value.status_code == 503
    assert "quota database is unreachable" in str(info.value.log_message)
    assert log.lines and "quota database failed" in log.lines[0]


def test_quota_service_stops_when_its_hub_is_gone(tmp_path) -> None:
    """A hub killed without stopping its services leaves no quota service behind."""
    import os
    import socket

    import psutil

    from skydeck.hub.preflight import free_port

    port = free_port()
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "JUPYTERHUB_API_TOKEN": "unused",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "SKYDECK_QUOTA_DB_URL": f"sqlite:///{tmp_path / 'q.sqlite'}",
    }
    starter = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-m', 'skydeck.hub.quota']); "
        "print(p.pid, flush=True); time.sleep(600)"
    )
    hub = subprocess.Popen([sys.executable, "-c", starter], env=env, stdout=subprocess.PIPE)
    assert hub.stdout is not None
    service = psutil.Process(int(hub.stdout.readline()))
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the quota service did not listen"
            time.sleep(0.2)
        hub.kill()
        hub.wait()
        deadline = time.monotonic() + 30
        while service.is_running() and service.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the orphaned quota service kept running"
            time.sleep(0.2)
    finally:
        if service.is_running():
            service.kill()
        hub.kill()
        hub.wait()


async def test_lab_sessions_of_a_crashed_hub_run_are_closed(tmp_path) -> None:
    from datetime import timedelta

    from skydeck.hub.quota.store import QuotaStore

    url = f"sqlite:///{tmp_path / 'q.sqlite'}"
    hooks = QuotaHooks(url, None, close_stale_labs=True)
    store = QuotaStore(url)
    earlier = hooks.started - timedelta(hours=3)
    store.open_session("ann", "lab", "", 2, 4, earlier, size="standard")  # never stopped
    store.open_session("ann", "dask", "c1", 1, 1, earlier)  # the gateway closes its own
    assert [s.source for _, s in hooks.service.running("ann")] == ["dask"]
    [lab] = [s for s in store.sessions("ann", earlier) if s.source == "lab"]
    assert lab.stopped_at == hooks.started
    store.close()


async def test_spawn_menu_offers_sizes_or_says_why_not(tmp_path) -> None:
    hooks = QuotaHooks(f"sqlite:///{tmp_path / 'q.sqlite'}", None)
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="ann", groups=[SimpleNamespace(name="big")]), name=""
    )
    assert await hooks.options_form(spawner) == ""  # one size: no menu, the lab starts
    hooks.service.set_group("big", {"lab": {"cpu": 2, "memory_gib": 4}}, "root", "more")
    form = await hooks.options_form(spawner)
    assert '<option value="standard" selected>' in form and '<option value="large">' in form
    assert "xlarge" not in form
    hooks.service.set_override("ann", {"lab": {"spawn": False}}, "root", "paused")
    form = await hooks.options_form(spawner)
    assert "disabled for your account (ann)" in form and "display: none" in form
    assert "<select" not in form


def test_hooks_are_shared_not_copied_into_each_spawner(tmp_path) -> None:
    """traitlets deep-copies config values into every Spawner; the open store must survive."""
    import copy

    hooks = QuotaHooks(f"sqlite:///{tmp_path / 'q.sqlite'}", None)
    assert hooks.service.effective("ann", []).quota.lab.memory_gib == 4  # store now open
    copied = copy.deepcopy({"pre_spawn_hook": hooks.pre_spawn_hook})
    assert copied["pre_spawn_hook"].__self__ is hooks
