"""The hub's proxy under one user's flood of long polls (issue 15, finding 2).

One user ("mallory") keeps ``FLOOD`` long polls open through the proxy (each a 15 s
request to a test service, like ``GET /services/tap/async/<id>?WAIT=15``); meanwhile
another user ("bob") asks ``GET /hub/api/user`` and a small request to the same service,
one after another.  Reported: bob's latencies (p50, p90, p99) and errors, for

- the hub API asked directly on the hub's own port, under the flood (baseline: what the
  hub itself answers, no proxy in the way);
- the same requests through the proxy with no flood, and under the flood;
- the same under the flood through the Python port of configurable-http-proxy that
  ``skydeck up`` used before, when its ``configurable-http-proxy`` command is installed.

The figure with a target (issue 15: another user's p99 under 1 s while one user floods)
is bob's p99 through the proxy under the flood.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from runner import Report

from support.hub import RunningHub, free_port, start_hub
from support.upstream import SERVICE, upstream_config

FLOOD = 50
POLL_S = 15
SAMPLES = 100
#: Fewer through the old proxy: its queued requests take up to 20 s each.
SAMPLES_OLD = 15
OLD_PROXY = Path(sys.executable).with_name("configurable-http-proxy")
NAMES = {"new": "new proxy", "old": "old Python proxy"}


class Flood:
    """``FLOOD`` threads that each keep one long poll open until stopped."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.stop = threading.Event()
        self.errors = 0
        self.threads = [threading.Thread(target=self._poll, daemon=True) for _ in range(FLOOD)]

    def _poll(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.token}"
        while not self.stop.is_set():
            try:
                if session.get(f"{self.url}/sleep?s={POLL_S}", timeout=120).status_code != 200:
                    self.errors += 1
            except requests.RequestException:
                self.errors += 1

    def __enter__(self) -> Flood:
        for thread in self.threads:
            thread.start()
        time.sleep(3)  # let every poll reach the proxy
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()


def measure(url: str, token: str, n: int = SAMPLES) -> tuple[list[float], int]:
    """Latencies (ms) of ``n`` sequential GETs of ``url`` and how many failed."""
    latencies, errors = [], 0
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    for _ in range(n):
        start = time.perf_counter()
        try:
            ok = session.get(url, timeout=60).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append((time.perf_counter() - start) * 1000)
        errors += not ok
    return latencies, errors


def hub_port(hub: RunningHub) -> int:
    match = re.search(r"Hub API listening on http://127\.0\.0\.1:(\d+)/", hub.log_path.read_text())
    assert match, "the hub's own port is not in its log"
    return int(match.group(1))


def run_case(report: Report, root: Path, label: str, proxy_config: Path | None) -> None:
    """Start a hub (``label``: "new" or "old" proxy) and measure bob quiet and flooded."""
    configs = [upstream_config(root / f"{label}-upstream.py", free_port())]
    if proxy_config is not None:
        configs.append(proxy_config)
    hub = start_hub(root / label, extra_config=configs)
    try:
        bob, mallory = hub.user_token("bob"), hub.user_token("mallory")
        service = f"{hub.url}/services/{SERVICE}"
        api, small = f"{hub.url}/hub/api/user", f"{service}/sleep?s=0"
        direct = f"http://127.0.0.1:{hub_port(hub)}/hub/api/user"
        base = "hub API direct, flooded"
        if label == "new":
            for name, url in (("hub API", api), ("small request", small)):
                samples, errors = measure(url, bob)
                report.add(
                    f"{name}, quiet (new proxy)",
                    "ms",
                    samples,
                    note=f"errors {errors}/{SAMPLES}",
                )
        with Flood(service, mallory) as flood:
            samples, errors = measure(direct, bob)
            if label == "new":
                report.add(base, "ms", samples, note=f"errors {errors}/{SAMPLES}")
            n = SAMPLES if label == "new" else SAMPLES_OLD
            for name, url in (("hub API", api), ("small request", small)):
                samples, errors = measure(url, bob, n)
                report.add(
                    f"{name}, {FLOOD} long polls of another user ({NAMES[label]})",
                    "ms",
                    samples,
                    baseline=base,
                    target="p99 < 1000 ms, no errors" if label == "new" else "",
                    note=f"errors {errors}/{n}; flood errors {flood.errors}",
                )
    finally:
        hub.stop()


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_case(report, root, "new", None)
        if OLD_PROXY.exists() and shutil.which(str(OLD_PROXY)):
            old = root / "old_proxy.py"
            old.write_text(f"c.ConfigurableHTTPProxy.command = [{str(OLD_PROXY)!r}]\n")
            run_case(report, root, "old", old)
        else:
            print(f"  (no {OLD_PROXY}: the old Python proxy is not measured)", flush=True)
