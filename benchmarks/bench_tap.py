"""TAP over HATS against the DaCHS figures of issue 5 (20 M-row Object-like table).

Usage::

    uv run python benchmarks/runner.py tap     # writes benchmarks/results/tap.{json,md}

The table (objectId, coord_ra/coord_dec uniform over 10 x 10 deg around RA 62,
Dec -37, detect_isPrimary, ugrizy psfFlux/psfFluxErr in nJy) is generated once
as a HATS catalog with hats-import into ``$SKYDECK_BENCH_DIR`` (default
``/tmp/skydeck-tap-bench``) and reused by later runs.  ``SKYDECK_BENCH_ROWS``
makes it smaller for a quick look.

Measured over HTTP against ``python -m skydeck.catalog.tap`` (VOTable BINARY2):
sync ``SELECT *`` cones of r = 0.01, 0.1 and 1 deg and an empty cone, the
full-table ``COUNT(*), AVG(r_psfFlux)`` (baseline: DuckDB reading the same
parquet files directly, in-process), 20 concurrent clients, and the ADQL parse +
translate cost.  GAVO DaCHS 2.7 on the same kind of machine: 49 ms, 215 ms,
15.1 s, 48 ms (empty) and 1.6 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from runner import RESULTS, Report  # noqa: E402

ROWS = int(os.environ.get("SKYDECK_BENCH_ROWS", "20000000"))
WORK = Path(os.environ.get("SKYDECK_BENCH_DIR", "/tmp/skydeck-tap-bench")) / f"rows-{ROWS}"
CHUNK = 1_000_000
RA0, DEC0 = 62.0, -37.0
COLUMNS = ["objectId", "coord_ra", "coord_dec", "detect_isPrimary"] + [
    f"{b}_{kind}" for b in "ugrizy" for kind in ("psfFlux", "psfFluxErr")
]


def _chunk(index: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1000 + index)
    data: dict[str, np.ndarray] = {
        "objectId": np.arange(index * CHUNK, index * CHUNK + n, dtype=np.int64),
        "coord_ra": rng.uniform(RA0 - 5, RA0 + 5, n),
        "coord_dec": rng.uniform(DEC0 - 5, DEC0 + 5, n),
        "detect_isPrimary": rng.random(n) < 0.9,
    }
    for band in "ugrizy":
        flux = rng.lognormal(7, 1.5, n)
        data[f"{band}_psfFlux"] = flux
        data[f"{band}_psfFluxErr"] = flux * rng.uniform(0.01, 0.2, n)
    return pd.DataFrame(data)


def build_release() -> Path:
    """The benchmark release (generated once per size)."""
    root = WORK / "release"
    if (root / "manifest.json").exists():
        return root
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    from support.tap import dp02_schema_subset

    inputs = WORK / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range((ROWS + CHUNK - 1) // CHUNK):
        path = inputs / f"part-{index:03d}.parquet"
        if not path.exists():
            _chunk(index, min(CHUNK, ROWS - index * CHUNK)).to_parquet(path, index=False)
        files.append(str(path))
    print(f"  importing {ROWS} rows with hats-import ...", flush=True)
    start = time.perf_counter()
    with Client(n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        args = ImportArguments(
            ra_column="coord_ra",
            dec_column="coord_dec",
            input_file_list=files,
            file_reader="parquet",
            output_path=str(root / "hats"),
            output_artifact_name="Object",
            pixel_threshold=1_000_000,
            row_group_kwargs={"num_rows": 20_000},
            progress_bar=False,
            resume=False,
            tmp_dir=str(WORK / "tmp"),
        )
        pipeline_with_client(args, client)
    print(f"  imported in {time.perf_counter() - start:.0f} s", flush=True)
    (root / "schema").mkdir(exist_ok=True)
    (root / "schema" / "dp02_dc2_catalogs.yaml").write_text(dp02_schema_subset({"Object": COLUMNS}))
    manifest = {
        "catalogs": {"Object": {"rows": ROWS, "path": "hats/Object", "schema": "dp02_dc2_catalogs"}}
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def cone(ra: float, dec: float, radius: float) -> str:
    return (
        "SELECT * FROM dp02_dc2_catalogs.Object WHERE "
        f"CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1"
    )


def timed_query(session: requests.Session, url: str, adql: str) -> tuple[float, int]:
    start = time.perf_counter()
    response = session.post(
        url + "/sync", data={"LANG": "ADQL", "QUERY": adql, "MAXREC": "5000000"}, timeout=600
    )
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, len(response.content)


def start_service(release: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    from support.hub import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skydeck.catalog.tap", "--release", str(release),
         "--data-dir", str(data), "--port", str(port), "--auth", "none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SKYDECK_TAP_MAX_CONCURRENT_PER_USER": "64"},  # 20 clients, one user
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/availability", timeout=5).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the TAP service did not start")


def run(report: Report) -> None:
    release = build_release()
    rng = np.random.default_rng(42)

    def centres(n: int) -> list[tuple[float, float]]:
        return [(RA0 + rng.uniform(-3, 3), DEC0 + rng.uniform(-3, 3)) for _ in range(n)]

    # ADQL parse + translate, in process
    from skydeck.catalog.release import ReleaseLayout
    from skydeck.catalog.tap._engine import Engine

    engine = Engine(ReleaseLayout.at(release))
    parse_samples = []
    for ra, dec in centres(200):
        start = time.perf_counter()
        engine.translate(cone(ra, dec, 0.01))
        parse_samples.append((time.perf_counter() - start) * 1000)
    report.add("ADQL parse + translate + prune (cone)", "ms", parse_samples,
               note="sqlglot; queryparser-python3 costs ~400 ms")  # fmt: skip

    with tempfile.TemporaryDirectory() as data:
        process, url = start_service(release, Path(data))
        try:
            session = requests.Session()
            for _ in range(5):  # warm up (page cache, DuckDB metadata cache)
                timed_query(session, url, cone(RA0, DEC0, 0.1))
            overhead = []
            for _ in range(30):
                start = time.perf_counter()
                session.get(url + "/availability", timeout=30).raise_for_status()
                overhead.append((time.perf_counter() - start) * 1000)
            report.add("HTTP round trip (/availability)", "ms", overhead)

            plan = [
                ("empty cone", 0.01, 30, "<= 16 ms (DaCHS 48 ms)", True),
                ("cone r=0.01 deg (~79 rows)", 0.01, 30, "<= 16 ms (DaCHS 49 ms)", False),
                ("cone r=0.1 deg (~7,900 rows)", 0.1, 20, "<= 70 ms (DaCHS 215 ms)", False),
                ("cone r=1 deg (~788,000 rows)", 1.0, 5, "<= 5 s (DaCHS 15.1 s)", False),
            ]
            for name, radius, n, target, empty in plan:
                samples, sizes = [], []
                for ra, dec in centres(n):
                    if empty:
                        ra = RA0 + 20
                    elapsed, size = timed_query(session, url, cone(ra, dec, radius))
                    samples.append(elapsed * 1000)
                    sizes.append(size)
                report.add(name, "ms", samples, target=target,
                           note=f"median response {np.median(sizes) / 1e6:.2f} MB")  # fmt: skip

            import duckdb

            files = str(release / "hats" / "Object" / "dataset" / "**" / "*.parquet")
            direct = []
            for _ in range(5):
                start = time.perf_counter()
                duckdb.sql(
                    f"SELECT COUNT(*), AVG(r_psfFlux) FROM read_parquet('{files}')"
                ).fetchall()
                direct.append((time.perf_counter() - start) * 1000)
            report.add("COUNT/AVG, DuckDB on the parquet files directly", "ms", direct)
            full = [
                timed_query(
                    session, url, "SELECT COUNT(*), AVG(r_psfFlux) FROM dp02_dc2_catalogs.Object"
                )[0]
                * 1000
                for _ in range(5)
            ]
            report.add(
                "COUNT/AVG over the whole table via TAP", "ms", full,
                baseline="COUNT/AVG, DuckDB on the parquet files directly",
                target="<= 500 ms (DaCHS 1.6 s); direct/TAP >= 0.5",
            )  # fmt: skip

            latencies: list[float] = []
            lock = threading.Lock()
            queries = [cone(ra, dec, 0.01) for ra, dec in centres(20 * 10)]

            def client(index: int) -> None:
                own = requests.Session()
                for adql in queries[index * 10 : (index + 1) * 10]:
                    elapsed, _ = timed_query(own, url, adql)
                    with lock:
                        latencies.append(elapsed * 1000)

            start = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - start
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            report.add("20 clients, r=0.01 cones: latency", "ms", latencies,
                       note=f"p99 {p99:.0f} ms")  # fmt: skip
            report.add("20 clients, r=0.01 cones: throughput", "queries/s", [len(latencies) / wall])
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    report = Report("tap")
    run(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tap.json").write_text(json.dumps(report.to_json(), indent=2))
    markdown = report.to_markdown()
    (RESULTS / "tap.md").write_text(markdown)
    print(markdown)
