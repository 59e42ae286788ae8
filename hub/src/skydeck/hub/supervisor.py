"""Run JupyterHub and make sure everything it started stops with it.

``skydeck up`` becomes a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``):
any process started below it (the proxy, every lab, every kernel, the managed
services) that loses its parent is re-parented to ``skydeck up`` instead of
init.  After the hub exits, whatever is left below ``skydeck up`` is stopped, so
Ctrl-C leaves no orphans even if the hub itself crashed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from skydeck.hub.config import HubSettings

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); returns whether it worked."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def stop_descendants(grace: float = 10.0) -> list[int]:
    """SIGTERM every process below this one, then SIGKILL what is still there."""
    me = psutil.Process()
    procs = me.children(recursive=True)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    # Reap anything re-parented to us while we waited.
    for proc in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return [p.pid for p in procs]


def announce_when_ready(url: str, hub: subprocess.Popen[bytes], timeout: float = 600) -> None:
    """Print one line when the hub answers, so the URL is not lost in the hub's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/hub/api/", timeout=5) as response:
                if response.status == 200:
                    print(f"\nSkydeck is ready: open {url}/ and log in.\n", flush=True)
                    return
        except OSError:
            pass
        time.sleep(1)


def run_hub(settings: HubSettings, log_level: str = "INFO") -> int:
    """Run JupyterHub in the foreground until it exits or we are signalled."""
    become_subreaper()
    env = {**os.environ, **settings.to_env()}
    cmd = [
        sys.executable,
        "-m",
        "jupyterhub",
        "-f",
        str(CONFIG_FILE),
        f"--log-level={log_level}",
    ]
    hub = subprocess.Popen(cmd, env=env, cwd=settings.data_dir / "hub")
    threading.Thread(
        target=announce_when_ready, args=(settings.public_url, hub), daemon=True
    ).start()
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        with contextlib.suppress(ProcessLookupError):
            hub.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = hub.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - handled by forward()
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        # Give the hub's own clean-up a moment to finish, then stop the rest.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and psutil.Process().children():
            time.sleep(0.1)
        leftovers = stop_descendants()
        if leftovers:
            log.info("stopped %d leftover process(es)", len(leftovers))
    return 0 if stopping else code
