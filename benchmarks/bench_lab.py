"""The Skydeck kernel: start-up, first catalog result, and crossmatch through dask-gateway.

Measured in a real lab spawned by a real hub (``skydeck up``) over a mini release
(synthetic HATS ``Object`` and ``gaia_dr3``, sizes below).  Baselines from the same run:
- ``import skydeck.lab`` against ``python -c pass`` (the library must stay light);
- kernel start to first ``open_catalog`` result against kernel start to ready;
- an lsdb crossmatch on a ``get_dask_client()`` gateway cluster (2 workers x 1 thread)
  against the same crossmatch on a plain ``LocalCluster`` with the same workers,
  started in the same kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner import Report

from support.hub import start_hub
from support.lab import LabSession
from support.mini_release import MiniSize, build_mini_release

REPEATS = int(os.environ.get("SKYDECK_BENCH_REPEATS", "3"))
SIZE = MiniSize(objects=60_000, matched=6_000, extra=3_000, partition_rows=5_000)

CONE = (
    "from skydeck.lab import open_catalog\n"
    "rows = open_catalog('Object').cone_search(ra=56.0, dec=-30.0, radius_arcsec=600).compute()\n"
    "print(len(rows))"
)

CROSSMATCH = """
import json, time
from distributed import Client, LocalCluster
from skydeck.lab import get_dask_client, open_catalog, shutdown_dask_clusters

def crossmatch():
    objects, stars = open_catalog("Object"), open_catalog("gaia_dr3")
    start = time.perf_counter()
    rows = len(objects.crossmatch(stars, radius_arcsec=1.0, n_neighbors=1).compute())
    return time.perf_counter() - start, rows

out = {}
start = time.perf_counter()
client = get_dask_client(n_workers=2)
out["gateway_start"] = time.perf_counter() - start
out["gateway"] = [crossmatch() for _ in range(REPEATS)]
client.close()
shutdown_dask_clusters()

start = time.perf_counter()
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address="127.0.0.1:0")
client = Client(cluster)
client.wait_for_workers(2)
out["local_start"] = time.perf_counter() - start
out["local"] = [crossmatch() for _ in range(REPEATS)]
client.close()
cluster.close()
print(json.dumps(out))
"""


def _import_time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def _kernel(url: str, token: str, code: str) -> tuple[float, LabSession, str]:
    start = time.perf_counter()
    session = LabSession(url, token).start()
    out = session.execute(code, timeout=600)
    return time.perf_counter() - start, session, out["stdout"]


def run(report: Report) -> None:
    report.add("python -c pass", "s", [_import_time("pass") for _ in range(REPEATS)])
    report.add(
        "python -c 'import skydeck.lab'",
        "s",
        [_import_time("import skydeck.lab") for _ in range(REPEATS)],
        baseline="python -c pass",
        target="import adds < 0.1 s",
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        release = build_mini_release(root / "release", size=SIZE)
        hub = start_hub(root / "data", release=release)
        try:
            url = hub.start_server("bench")
            token = hub.user_token("bench")
            ready, first = [], []
            for _ in range(REPEATS):
                seconds, session, _ = _kernel(url, token, "1")
                ready.append(seconds)
                session.shutdown()
                seconds, session, _ = _kernel(url, token, CONE)
                first.append(seconds)
                session.shutdown()
            report.add("kernel start to ready", "s", ready)
            report.add(
                "kernel start to first open_catalog cone result",
                "s",
                first,
                baseline="kernel start to ready",
                note=f"Object {SIZE.objects} rows, 600 arcsec cone",
            )
            _, session, stdout = _kernel(url, token, f"REPEATS = {REPEATS}\n" + CROSSMATCH)
            session.shutdown()
            out = json.loads(stdout.strip().splitlines()[-1])
            note = f"Object {SIZE.objects} x gaia_dr3 {SIZE.matched + SIZE.extra}, 1 arcsec"
            report.add("LocalCluster start (2 workers x 1 thread)", "s", [out["local_start"]])
            report.add(
                "get_dask_client(2) gateway cluster start",
                "s",
                [out["gateway_start"]],
                baseline="LocalCluster start (2 workers x 1 thread)",
            )
            report.add("crossmatch on LocalCluster", "s", [t for t, _ in out["local"]], note=note)
            report.add(
                "crossmatch on gateway cluster",
                "s",
                [t for t, _ in out["gateway"]],
                baseline="crossmatch on LocalCluster",
                note=note,
                target="close to 1x (same workers, TLS through the gateway proxy)",
            )
            rows = {n for _, n in out["local"]} | {n for _, n in out["gateway"]}
            assert len(rows) == 1, f"the two clusters disagree on the crossmatch: {rows}"
        finally:
            hub.stop()
