"""Run JupyterHub and make sure everything it started stops with it.

``skydeck up`` becomes a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``):
any process started below it (the proxy, every lab, every kernel, the managed
services) that loses its parent is re-parented to ``skydeck up`` instead of
init.  After the hub exits, whatever is left below ``skydeck up`` is stopped, so
Ctrl-C leaves no orphans even if the hub itself crashed.

The hub runs in a session of its own, so a terminal's Ctrl-C reaches only ``skydeck
up``, which forwards exactly one SIGTERM (a second signal used to start a second,
racing clean-up in the hub); the hub (`skydeck.hub._hub_app`) then stops its services
and labs all at once.
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


#: Seconds the leftovers of a stopped hub get between SIGTERM and SIGKILL.
LEFTOVER_GRACE = 5.0


def stop_descendants(grace: float = LEFTOVER_GRACE) -> list[int]:
    """SIGTERM every process below this one, then SIGKILL what is still there.

    Returns the pids of the processes that were still running (exited ones are reaped).
    """
    me = psutil.Process()
    procs = me.children(recursive=True)
    running = _running_descendants()
    for proc in running:
        with contextlib.suppress(psutil.Error):
            log.info("stopping leftover process %d (%s)", proc.pid, " ".join(proc.cmdline()))
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
    return [p.pid for p in running]


def _running_descendants() -> list[psutil.Process]:
    """Processes below this one that have not exited (exited ones wait to be reaped)."""
    running = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
    return running


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
        "skydeck.hub._hub_app",
        "-f",
        str(CONFIG_FILE),
        f"--log-level={log_level}",
    ]
    # A session of its own: signals reach the hub only through forward() below.
    hub = subprocess.Popen(cmd, env=env, cwd=settings.data_dir / "hub", start_new_session=True)
    threading.Thread(
        target=announce_when_ready, args=(settings.public_url, hub), daemon=True
    ).start()
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            log.info("still stopping; the hub is stopping its services and labs")
            return
        stopping = True
        log.info("stopping everything (%s)", signal.Signals(signum).name)
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
        # Give what the hub stopped a moment to exit, then stop the rest.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and _running_descendants():
            time.sleep(0.1)
        leftovers = stop_descendants()
        if leftovers:
            log.info("stopped %d leftover process(es)", len(leftovers))
    return 0 if stopping else code
