"""``skydeck up`` cold start, and login -> lab ready, against bare JupyterLab start-up.

Baselines measured in the same run:
- hub start: ``python -c "import jupyterhub.app"``, the fixed cost of Python and JupyterHub's
  imports that any hub pays;
- spawn: a plain ``jupyter lab`` server started directly (no hub, no proxy) until its API answers.
"""

from __future__ import annotations

import os
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


def time_bare_lab(home: Path) -> float:
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
                    return time.perf_counter() - start
            except requests.ConnectionError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait()


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
