"""How many users one machine holds: ``skydeck check --users N`` against one ``skydeck up``.

A real hub (``skydeck up`` over the tiny release) and N bots at once, each doing what
issue 14 names: log in through the form, spawn a default lab, run tutorial 01 in its
kernel and the TAP query set (sync, async, upload through pyvo), stop the lab, clean up.
The bots are the real command, run as operators run it (``skydeck check`` in a
subprocess); while it runs, the hub's process tree is sampled every second.

Reported per N (N = 1 is the baseline of the same run; 10, 20, 25 and 50 follow while the
machine's free memory allows the next step, judged from the memory each extra user
added in the steps before, with 3 GiB kept free for the other work on the machine):
spawn and end-to-end p50/p90 (ratios to N = 1), failed checks and users, peak memory
per lab (lab server + its kernels) and in total (the hub's whole process tree), and the
hub's CPU (the ``jupyterhub`` process, CPU seconds per wall second).  What broke first
is the earliest failing check, written into the notes.

Environment: ``SKYDECK_BENCH_USERS=1,10,20,25,50`` chooses the steps;
``SKYDECK_TEST_RELEASE=/dir`` reuses a tiny release built earlier (as the tests do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from runner import Report

from support.hub import RunningHub, start_hub
from support.release import build_tiny

MiB = 2**20
STEPS = [int(n) for n in os.environ.get("SKYDECK_BENCH_USERS", "1,10,20,25,50").split(",")]
#: Memory left free for everything else on the machine (other users of it, the OS).
HEADROOM = 3 * 2**30


class TreeSampler:
    """Samples the hub's process tree once a second: peak per lab, peak total, hub CPU."""

    def __init__(self, root: int) -> None:
        self.root = psutil.Process(root)
        self.hub = next(
            p for p in self.root.children(recursive=True) if "jupyterhub" in " ".join(p.cmdline())
        )
        self.lab_peaks: dict[int, float] = {}
        self.total_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self.cpu_start = sum(self.hub.cpu_times()[:2])
        self.wall_start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hub_cpu_seconds = sum(self.hub.cpu_times()[:2]) - self.cpu_start
        self.wall_seconds = time.monotonic() - self.wall_start

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            total = 0.0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    if "jupyterhub-singleuser" in " ".join(proc.cmdline()):
                        lab = rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                        self.lab_peaks[proc.pid] = max(self.lab_peaks.get(proc.pid, 0.0), lab)
                except psutil.Error:
                    continue
            self.total_peak = max(self.total_peak, total)


def run_bots(hub: RunningHub, n: int, json_path: Path) -> tuple[int, dict[str, Any], float]:
    """``skydeck check --users n`` (default lab, tutorial 01, TAP); returns status, JSON, s."""
    cmd = [sys.executable, "-m", "skydeck.hub", "check", "--hub", hub.url]
    cmd += ["--token", hub.admin_token, "--users", str(n), "--user-prefix", f"bench{n}"]
    cmd += ["--only", "tutorials,tap", "--tutorials", "01", "--json", str(json_path), "--quiet"]
    cmd += ["--spawn-timeout", "900", "--cell-timeout", "900"]
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.monotonic() - started
    report = json.loads(json_path.read_text()) if json_path.exists() else {"results": []}
    if not report["results"]:
        print(result.stdout[-2000:], result.stderr[-2000:], flush=True)
    return result.returncode, report, seconds


def end_to_end(results: list[dict[str, Any]]) -> list[float]:
    """Per user: from the start of its first check to the end of its last."""
    spans: dict[str, list[float]] = {}
    for r in results:
        span = spans.setdefault(r["user"], [r["started"], r["started"] + r["seconds"]])
        span[0] = min(span[0], r["started"])
        span[1] = max(span[1], r["started"] + r["seconds"])
    return [end - start for start, end in spans.values()]


def first_failure(results: list[dict[str, Any]]) -> str:
    failed = sorted((r for r in results if r["status"] == "fail"), key=lambda r: r["started"])
    if not failed:
        return "nothing failed"
    common = Counter(f"{r['name'].split(' (')[0]}: {r['error']}" for r in failed).most_common(3)
    first = failed[0]
    return (
        f"first: {first['user']} {first['name']}: {first['error']} (at {first['where']}); "
        f"most common: " + "; ".join(f"{k} x{v}" for k, v in common)
    )


def run(report: Report) -> None:
    cached = os.environ.get("SKYDECK_TEST_RELEASE")
    work = Path(tempfile.mkdtemp(prefix="bench-users-"))
    layout = build_tiny(Path(cached) if cached else work / "release-build")
    hub = start_hub(work / "hub", release=Path(str(layout.root)))
    per_user = 0.0  # memory one more user adds at the peak, measured by the steps so far
    totals: dict[int, float] = {}
    try:
        for n in STEPS:
            available = psutil.virtual_memory().available
            if per_user and n * per_user > available - HEADROOM:
                note = (
                    f"skipped: {n} users at the measured {per_user / MiB:.0f} MiB each need "
                    f"{n * per_user / 2**30:.1f} GiB; {available / 2**30:.1f} GiB free on this "
                    f"machine now (shared with other work; {HEADROOM / 2**30:.0f} GiB kept free)"
                )
                print(f"  users={n}: {note}", flush=True)
                report.add(f"users={n}: skipped", "users", [0], note=note)
                continue
            with TreeSampler(hub.process.pid) as sampler:
                status, result, seconds = run_bots(hub, n, work / f"users-{n}.json")
            results = result["results"]
            spawns = [r["seconds"] for r in results if r["name"].startswith("spawn (")]
            failed = [r for r in results if r["status"] == "fail"]
            users_failed = {r["user"] for r in failed}
            base = "users=1" if n != 1 and 1 in STEPS else None
            note = f"exit {status}; {len(users_failed)} of {n} users saw a failure; " + (
                first_failure(results)
            )
            report.add(
                f"users={n}: spawn",
                "s",
                spawns or [float("nan")],
                baseline=f"{base}: spawn" if base else None,
                note=note,
            )
            report.add(
                f"users={n}: end-to-end",
                "s",
                end_to_end(results) or [float("nan")],
                baseline=f"{base}: end-to-end" if base else None,
                target="50 users, 0 errors" if n == 50 else "",
            )
            report.add(f"users={n}: failed checks", "checks", [len(failed)])
            report.add(f"users={n}: users with a failure", "users", [len(users_failed)])
            peaks = list(sampler.lab_peaks.values())
            report.add(
                f"users={n}: peak memory per lab",
                "MiB",
                [p / MiB for p in peaks] or [float("nan")],
                target="an idle lab under 250 MiB (this lab runs tutorial 01)",
            )
            report.add(f"users={n}: peak memory in total", "MiB", [sampler.total_peak / MiB])
            report.add(
                f"users={n}: hub CPU",
                "CPU s per s",
                [sampler.hub_cpu_seconds / max(sampler.wall_seconds, 1e-9)],
                note=f"{sampler.hub_cpu_seconds:.0f} CPU s over {seconds:.0f} s",
            )
            totals[n] = sampler.total_peak
            if len(totals) > 1:  # the slope between the smallest and the largest step
                low, high = min(totals), max(totals)
                per_user = (totals[high] - totals[low]) / (high - low)
            elif peaks:
                per_user = max(peaks)
    finally:
        hub.stop()
