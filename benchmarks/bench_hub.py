"""``skydeck up`` cold start, login -> lab ready, and stopping, against bare JupyterLab.

Baselines measured in the same run:
- hub start: ``python -c "import jupyterhub.app"``, the fixed cost of Python and JupyterHub's
  imports that any hub pays;
- spawn: a plain ``jupyter lab`` server started directly (no hub, no proxy) until its API answers;
- stop (issue 14: Ctrl-C or SIGTERM stops everything within 10 s): a plain ``jupyter lab``
  server with one kernel, from SIGTERM until it has exited; ``skydeck up`` is timed from a
  terminal's Ctrl-C (SIGINT to its process group) and from SIGTERM until it has exited,
  with one user's lab and kernel running, and every process it started is checked gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from runner import Report

from support.hub import free_port, start_hub
from support.lab import LabSession

SPAWNS = int(os.environ.get("SKYDECK_BENCH_SPAWNS", "10"))


def time_import_baseline() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jupyterhub.app"], check=True)
    return time.perf_counter() - start


def time_bare_lab(home: Path, stop: bool = False) -> float:
    """Seconds until a plain ``jupyter lab`` answers, or (``stop``) until it exits on SIGTERM."""
    port = free_port()
    token = "benchmark"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            f"--ServerApp.root_dir={home}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if requests.get(
                    f"http://127.0.0.1:{port}/api/status",
                    headers={"Authorization": f"token {token}"},
                    timeout=2,
                ).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        if not stop:
            return time.perf_counter() - start
        lab = LabSession(f"http://127.0.0.1:{port}", token).start()
        lab.execute("x = 1")
        start = time.perf_counter()
        proc.terminate()
        proc.wait()
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait()


def time_stop(root: Path, how: str) -> float:
    """Seconds from ``how`` ("Ctrl-C" or "SIGTERM") until ``skydeck up`` has exited."""
    hub = start_hub(root)
    try:
        lab = LabSession(hub.start_server("carol"), hub.user_token("carol")).start()
        lab.execute("x = 1")
        before = hub.descendants()
        start = time.perf_counter()
        if how == "SIGTERM":
            hub.process.send_signal(signal.SIGTERM)
        else:
            os.killpg(hub.process.pid, signal.SIGINT)
        hub.process.wait(300)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
        alive = [p.pid for p in before if p.is_running() and p.status() != "zombie"]
        assert not alive, f"processes left behind after {how}: {alive}"
        return elapsed
    finally:
        hub.stop()


def measure_stop(report: Report, root: Path, n: int = 3) -> None:
    report.add(
        "bare jupyter lab stop (SIGTERM, one kernel)",
        "s",
        [time_bare_lab(root, stop=True) for _ in range(n)],
    )
    for how in ("Ctrl-C", "SIGTERM"):
        report.add(
            f"skydeck up stop ({how}, one lab + kernel) until everything has exited",
            "s",
            [time_stop(root / f"stop-{how}-{i}", how) for i in range(n)],
            baseline="bare jupyter lab stop (SIGTERM, one kernel)",
            target="< 10 s",
        )


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        report.add("import jupyterhub.app", "s", [time_import_baseline() for _ in range(3)])
        starts = []
        for i in range(3):
            start = time.perf_counter()
            hub = start_hub(root / f"cold{i}")
            starts.append(time.perf_counter() - start)
            hub.stop()
        report.add(
            "skydeck up cold start to hub ready", "s", starts, baseline="import jupyterhub.app"
        )

        report.add("bare jupyter lab start", "s", [time_bare_lab(root) for _ in range(SPAWNS)])
        hub = start_hub(root / "spawns")
        try:
            spawns, kernels = [], []
            for i in range(SPAWNS):
                user = f"bench{i}"
                token = hub.user_token(user)
                start = time.perf_counter()
                url = hub.start_server(user)
                spawns.append(time.perf_counter() - start)
                start = time.perf_counter()
                lab = LabSession(url, token).start()
                lab.execute("import skydeck.lab")
                kernels.append(time.perf_counter() - start)
                lab.shutdown()
                hub.stop_server(user)
            report.add(
                "login -> lab ready (spawn through hub)",
                "s",
                spawns,
                baseline="bare jupyter lab start",
            )
            report.add("Skydeck kernel start to first result", "s", kernels)
        finally:
            hub.stop()
        measure_stop(report, root)
