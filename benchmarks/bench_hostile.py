"""49 well-behaved users beside one hostile user (issue 15, "Load").

One ``skydeck up`` serving the tiny release.  49 users, each in a loop, ask
``GET /hub/api/user`` and a small TAP cone query (sync ADQL on Object, through the hub's
proxy at ``/services/tap/sync``), with no pause between requests: 49 requests are always
in flight (a closed loop, the issue's "50 concurrent users' requests"), so the figures are
those of a saturated service, not of users with think time.  Measured twice in the same
run:

- quiet: only the 49 users (the baseline);
- flooded: the same while one hostile user ("mallory") keeps, all in parallel threads,
  ``LONG_POLLS`` UWS long polls open (``GET /async/<id>?WAIT=60``; the first
  ``RUNNING_JOBS`` of the jobs run a cross join that takes hours, the others stay PENDING),
  ``BIG`` big results (sync ``SELECT *`` of gaia_dr3 with ``MAXREC`` at the 100,000-row cap,
  VOTable) and ``HEAVY`` heavy queries (a grouped cross join of gaia_dr3 that the per-query
  memory limit should stop).

Reported: the users' p50/p90/p99 and errors per request type, quiet and flooded (ratio to
quiet); the hostile user's latencies and status codes per request type.  The issue's target
(p99 < 1 s for the users while one user floods) goes in the target column: reported, never
asserted.

Environment: ``SKYDECK_TEST_RELEASE=/dir`` (default /tmp/me/tiny3) names a tiny release
built earlier (``<dir>/release``); ``SKYDECK_BENCH_HOSTILE_SECONDS`` (default 60) is the
length of each phase.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests
from runner import Report

from support.hub import RunningHub, start_hub
from support.release import build_tiny

USERS = 49
PHASE_S = float(os.environ.get("SKYDECK_BENCH_HOSTILE_SECONDS", "60"))
LONG_POLLS = 40
RUNNING_JOBS = 12  # more than the 10 active async jobs a user may have: expect 429s
BIG = 4
HEAVY = 2
CONE = (
    "SELECT objectId, coord_ra, coord_dec FROM Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.05)) = 1"
)
GAIA = "gaia_dr3.gaia_dr3"
BIG_QUERY = f"SELECT * FROM {GAIA}"
#: 2e11 rows of a cross join: runs for hours (async, keeps its job EXECUTING).
SLOW = f"SELECT COUNT(*) AS n FROM {GAIA} AS a, {GAIA} AS b WHERE SIN(a.ra + b.ra) > 2"
#: 2e11 groups: far more than one query's memory (1 GB by default) and its spill space.
HUNGRY = (
    f"SELECT a.source_id AS a, b.source_id AS b, COUNT(*) AS n FROM {GAIA} AS a, {GAIA} AS b "
    "GROUP BY a.source_id, b.source_id"
)


def message(text: str) -> str:
    """The error message of a TAP answer (its QUERY_STATUS INFO), else the text's start."""
    found = re.search(r'value="ERROR"[^>]*>(.*?)</INFO>', text, re.S)
    return " ".join((found.group(1) if found else text)[:300].split())


def release_root() -> Path:
    """The tiny release to serve: one built earlier, else built now (slow)."""
    cached = Path(os.environ.get("SKYDECK_TEST_RELEASE", "/tmp/me/tiny3"))
    if (cached / "release" / "manifest.json").exists():
        return cached / "release"
    return Path(str(build_tiny(cached).root))


def session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    return s


class Users:
    """``USERS`` threads, each asking the hub API and a cone query in turn until stopped."""

    def __init__(self, hub: RunningHub, tokens: list[str]) -> None:
        self.hub, self.tokens = hub, tokens
        self.stop = threading.Event()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.examples: dict[str, str] = {}
        self.threads = [threading.Thread(target=self._loop, args=(t,), daemon=True) for t in tokens]

    def _timed(self, kind: str, call: object) -> None:
        start = time.perf_counter()
        try:
            response = call()  # type: ignore[operator]
            outcome = str(response.status_code)
            if response.status_code != 200:
                self.examples.setdefault(f"{kind} {outcome}", message(response.text))
        except requests.RequestException as error:
            outcome = type(error).__name__
            self.examples.setdefault(f"{kind} {outcome}", str(error)[:300])
        self.latencies[kind].append((time.perf_counter() - start) * 1000)
        self.outcomes[kind][outcome] += 1

    def _loop(self, token: str) -> None:
        s = session(token)
        api, tap = f"{self.hub.url}/hub/api/user", f"{self.hub.url}/services/tap/sync"
        form = {"LANG": "ADQL", "QUERY": CONE}
        while not self.stop.is_set():
            self._timed("hub API", lambda: s.get(api, timeout=60))
            self._timed("cone query", lambda: s.post(tap, data=form, timeout=60))

    def run(self, seconds: float) -> Users:
        for thread in self.threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in self.threads:
            thread.join(90)
        return self


class Hostile:
    """One user's long polls, big results and heavy queries, all in parallel threads."""

    def __init__(self, hub: RunningHub, token: str) -> None:
        self.tap, self.token = f"{hub.url}/services/tap", token
        self.stop = threading.Event()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.examples: dict[str, str] = {}
        self.bytes: list[int] = []
        self.jobs: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            *(
                threading.Thread(target=self._poll, args=(i,), daemon=True)
                for i in range(LONG_POLLS)
            ),
            *(threading.Thread(target=self._big, daemon=True) for _ in range(BIG)),
            *(threading.Thread(target=self._heavy, daemon=True) for _ in range(HEAVY)),
        ]

    def _record(self, kind: str, start: float, outcome: str, text: str = "") -> None:
        with self.lock:
            self.latencies[kind].append(time.perf_counter() - start)
            self.outcomes[kind][outcome] += 1
            if text and (outcome[0] not in "23" or outcome.endswith("ERROR")):
                self.examples.setdefault(f"{kind} {outcome}", message(text))

    def _poll(self, index: int) -> None:
        s = session(self.token)
        form = {"LANG": "ADQL", "QUERY": SLOW if index < RUNNING_JOBS else CONE}
        if index < RUNNING_JOBS:
            form["PHASE"] = "RUN"
        start = time.perf_counter()
        try:
            created = s.post(f"{self.tap}/async", data=form, allow_redirects=False, timeout=120)
        except requests.RequestException as error:
            self._record("create async job", start, type(error).__name__, str(error))
            return
        self._record("create async job", start, str(created.status_code), created.text)
        job = created.headers.get("location")
        if created.status_code != 303 or not job:
            # refused (e.g. 429, too many active jobs): long-poll a PENDING job instead
            start = time.perf_counter()
            created = s.post(
                f"{self.tap}/async", data={"LANG": "ADQL", "QUERY": CONE},
                allow_redirects=False, timeout=120,
            )  # fmt: skip
            self._record("create async job", start, str(created.status_code), created.text)
            job = created.headers.get("location")
            if not job:
                return
        with self.lock:
            self.jobs.append(job)
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                response = s.get(job, params={"WAIT": "60"}, timeout=120)
                phase = re.search(r"<uws:phase>(\w+)</uws:phase>", response.text)
                summary = re.search(r"<uws:message>(.*?)</uws:message>", response.text, re.S)
                outcome = f"{response.status_code} {phase.group(1) if phase else ''}".strip()
                self._record(
                    "long poll WAIT=60",
                    start,
                    outcome,
                    summary.group(1) if summary else response.text,
                )
            except requests.RequestException as error:
                self._record("long poll WAIT=60", start, type(error).__name__, str(error))

    def _big(self) -> None:
        s = session(self.token)
        form = {"LANG": "ADQL", "QUERY": BIG_QUERY, "MAXREC": "100000", "RESPONSEFORMAT": "votable"}
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                with s.post(f"{self.tap}/sync", data=form, stream=True, timeout=300) as response:
                    size, head = 0, b""  # stream the body: count it, keep its start
                    for chunk in response.iter_content(1 << 20):
                        size += len(chunk)
                        head = head or chunk[:2000]
                    text = "" if response.status_code == 200 else head.decode(errors="replace")
                self._record("big result", start, str(response.status_code), text)
                if response.status_code == 200:
                    with self.lock:
                        self.bytes.append(size)
            except requests.RequestException as error:
                self._record("big result", start, type(error).__name__, str(error))

    def _heavy(self) -> None:
        s = session(self.token)
        form = {"LANG": "ADQL", "QUERY": HUNGRY}
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                response = s.post(f"{self.tap}/sync", data=form, timeout=300)
                self._record("heavy query", start, str(response.status_code), response.text)
            except requests.RequestException as error:
                self._record("heavy query", start, type(error).__name__, str(error))

    def __enter__(self) -> Hostile:
        for thread in self.threads:
            thread.start()
        time.sleep(5)  # let the flood reach the services
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)
        s = session(self.token)
        for job in self.jobs:  # abort and remove the never-ending jobs
            with contextlib.suppress(requests.RequestException):
                s.delete(job, allow_redirects=False, timeout=30)


def wait_for_tap(hub: RunningHub, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{hub.url}/services/tap/availability", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"TAP never answered behind the hub; see {hub.log_path}")


def outcome_text(counter: Counter[str]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(counter.items()))


def run(report: Report) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    hub = start_hub(work / "hub", release=release_root())
    try:
        wait_for_tap(hub)
        tokens = [hub.user_token(f"user{i:02d}") for i in range(USERS)]
        mallory = hub.user_token("mallory")
        Users(hub, tokens).run(5)  # warm-up: tokens checked once, DuckDB caches filled
        quiet = Users(hub, tokens).run(PHASE_S)
        hostile = Hostile(hub, mallory)
        with hostile:
            flooded = Users(hub, tokens).run(PHASE_S)
        for kind in ("hub API", "cone query"):
            base = f"{kind}, {USERS} users, quiet"
            report.add(
                base, "ms", quiet.latencies[kind],
                note=f"status {outcome_text(quiet.outcomes[kind])}",
            )  # fmt: skip
            report.add(
                f"{kind}, {USERS} users, one user flooding",
                "ms",
                flooded.latencies[kind],
                baseline=base,
                target="p99 < 1000 ms, no errors",
                note=f"status {outcome_text(flooded.outcomes[kind])}"
                + "".join(
                    f"; {key.removeprefix(kind)}: {text[:160]}"
                    for key, text in flooded.examples.items()
                    if key.startswith(kind)
                ),
            )
        for kind, samples in hostile.latencies.items():
            note = f"status {outcome_text(hostile.outcomes[kind])}"
            note += "".join(
                f"; {key.removeprefix(kind)}: {text[:160]}"
                for key, text in hostile.examples.items()
                if key.startswith(kind)
            )
            if kind == "big result" and hostile.bytes:
                note += f"; {max(hostile.bytes) / 2**20:.0f} MiB per 200 answer"
            report.add(f"hostile: {kind}", "s", samples, note=note)
        for label, users in (("quiet", quiet), ("flooded", flooded)):
            for key, text in users.examples.items():
                print(f"  users {label} {key}: {text}", flush=True)
        for key, text in hostile.examples.items():
            print(f"  hostile {key}: {text}", flush=True)
        log = hub.log_path.read_text(errors="replace")
        print(f"  hub log: {log.count('Traceback')} tracebacks; log at {hub.log_path}", flush=True)
    finally:
        hub.stop()
