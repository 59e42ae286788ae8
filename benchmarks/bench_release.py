"""Data-release build: wall and CPU time per stage and peak memory, demo vs tiny.

Usage::

    uv run python benchmarks/runner.py release             # tiny (baseline) and demo
    uv run python benchmarks/bench_release.py tiny         # only the tiny build

Each build runs cold in its own subprocess and temporary data directory. The tiny
build is the same-run baseline (machines here are shared and noisy); the target is
the whole demo build in at most 3 minutes on 2 cores. Results go to
``benchmarks/results/release.{json,md}``. Nothing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from runner import RESULTS, Report

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from skydeck.images.release.build import BuildOptions, build_release

class Timer:
    def __init__(self):
        self.wall, self.cpu, self._t = {}, {}, {}
    def start(self, stage, total):
        self._t.setdefault(stage, (time.perf_counter(), time.process_time()))
    def advance(self, stage, steps=1):
        pass
    def done(self, stage, seconds):
        w, c = self._t.get(stage, (time.perf_counter(), time.process_time()))
        self.wall[stage] = time.perf_counter() - w
        self.cpu[stage] = time.process_time() - c
    def message(self, text):
        pass

timer = Timer()
t0, c0 = time.perf_counter(), time.process_time()
options = BuildOptions(Path(sys.argv[1]), size=sys.argv[2], seed=42)
layout = build_release(options, timer)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall": timer.wall, "cpu": timer.cpu,
    "total_wall": time.perf_counter() - t0, "total_cpu": time.process_time() - c0,
    "worker_cpu": workers.ru_utime + workers.ru_stime,
    "area_deg2": options.release_size.field_deg ** 2,
    "objects": layout.read_manifest()["catalogs"]["Object"]["rows"],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def build_once(size: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"skydeck-bench-{size}-") as tmp:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, tmp, size],
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(report: Report, sizes: tuple[str, ...] = ("tiny", "demo")) -> None:
    for size in sizes:
        print(f"building {size} ...", flush=True)
        result = build_once(size)
        wall = result["wall"]
        cpu = result["cpu"]
        assert isinstance(wall, dict) and isinstance(cpu, dict)
        baseline = "tiny total wall" if size != "tiny" and "tiny" in sizes else None
        report.add(
            f"{size} total wall",
            "s",
            [float(result["total_wall"])],  # type: ignore[arg-type]
            baseline=baseline,
            target="demo <= 180 s on 2 cores" if size == "demo" else "",
        )
        # the main process (per-stage cpu rows below count it alone) and its workers
        report.add(f"{size} total cpu", "s", [float(result["total_cpu"])])  # type: ignore[arg-type]
        report.add(f"{size} workers cpu", "s", [float(result["worker_cpu"])])  # type: ignore[arg-type]
        # how much sky and how many objects that time buys (issue 3 asks ~1 deg2 for demo)
        report.add(f"{size} field area", "deg2", [float(result["area_deg2"])])  # type: ignore[arg-type]
        report.add(f"{size} Object rows", "rows", [float(result["objects"])])  # type: ignore[arg-type]
        report.add(f"{size} peak rss", "MB", [float(result["peak_rss_mb"])])  # type: ignore[arg-type]
        # the render and pipeline workers (each one's peak; they run side by side)
        report.add(
            f"{size} largest worker peak rss",
            "MB",
            [float(result["worker_peak_rss_mb"])],  # type: ignore[arg-type]
        )
        for stage, seconds in wall.items():
            report.add(f"{size} {stage} wall", "s", [float(seconds)])
            report.add(f"{size} {stage} cpu", "s", [float(cpu[stage])])


def main(argv: list[str]) -> None:
    report = Report("release")
    run(report, tuple(argv) or ("tiny", "demo"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "release.json").write_text(json.dumps(report.to_json(), indent=2))
    markdown = report.to_markdown()
    (RESULTS / "release.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
