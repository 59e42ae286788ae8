"""TAP against a hostile user (issue 15, findings 3, 4, 5, 7 and 8): sandbox, limits, errors.

Engine-level tests run in process; the HTTP tests use a TAP server of their own with
small limits, so that they neither depend on nor disturb the shared ``tap_server``.
"""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from astropy.io.votable import from_table, writeto
from astropy.table import Table

from skydeck.catalog.tap._adql import AdqlError
from skydeck.catalog.tap._engine import Engine
from skydeck.catalog.tap._service import FairScheduler, JobService, QueryService, TapError
from skydeck.catalog.tap._store import JobStore
from skydeck.catalog.tap.config import TapSettings
from support.tap import start_tap_server

OBJ = "dp02_dc2_catalogs.Object"
#: what a message must never show: DuckDB's internals and this host's file system
LEAKS = re.compile(
    r"/(tmp|home|work|root|usr|var|etc|proc)/|\.parquet|read_parquet|Traceback|pytest-|"
    r"(Catalog|Binder|Parser|Internal|IO|Permission|Invalid Input) Error",
    re.IGNORECASE,
)


def assert_no_leak(message: str) -> None:
    assert LEAKS.search(message) is None, message


@pytest.fixture(scope="module")
def engine(tap_release):
    return Engine(tap_release.layout, threads=2)


def refused(engine: Engine, adql: str) -> str:
    with pytest.raises(AdqlError) as info:
        engine.execute(adql)
    assert_no_leak(info.value.message)
    return info.value.message


# ----- finding 4: a CTE name is visible only inside its WITH ------------------------------
CTE_ESCAPES = [
    pytest.param(
        "SELECT * FROM (WITH duckdb_views AS (SELECT 1 AS x) SELECT * FROM duckdb_views) AS s "
        "CROSS JOIN duckdb_views",
        id="cte-name-outside-its-with",
    ),
    pytest.param(
        "SELECT * FROM (WITH duckdb_settings AS (SELECT 1 AS x) SELECT x FROM duckdb_settings) "
        "AS s, duckdb_settings",
        id="cte-name-in-outer-from-list",
    ),
    pytest.param(
        "WITH duckdb_views AS (SELECT * FROM duckdb_views) SELECT * FROM duckdb_views",
        id="cte-refers-to-itself",
    ),
    pytest.param(
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a",
        id="cte-refers-to-a-later-one",
    ),
    pytest.param(
        "SELECT (SELECT COUNT(*) FROM duckdb_settings) AS n FROM "
        "(WITH duckdb_settings AS (SELECT 1 AS x) SELECT x FROM duckdb_settings) AS s",
        id="cte-name-in-scalar-subquery",
    ),
    pytest.param("SELECT * FROM main.duckdb_views", id="schema-qualified-internal"),
    pytest.param("SELECT * FROM system.main.duckdb_views", id="catalog-qualified-internal"),
    pytest.param("SELECT * FROM system.dp02_dc2_catalogs.Object", id="catalog-qualified-published"),
]


@pytest.mark.parametrize("adql", CTE_ESCAPES)
def test_cte_names_do_not_reach_duckdb_internals(engine, adql):
    message = refused(engine, adql)
    assert "table" in message.lower() or "with" in message.lower()


def test_ctes_in_scope_still_work(engine):
    rows = engine.execute(
        f"WITH bright AS (SELECT objectId, r_psfFlux FROM {OBJ} WHERE r_psfFlux > 1000), "
        "brighter AS (SELECT objectId FROM bright WHERE r_psfFlux > 5000) "
        "SELECT COUNT(*) AS n FROM brighter b JOIN bright a ON a.objectId = b.objectId"
    ).table
    assert rows.column("n")[0].as_py() > 0
    nested = engine.execute(
        f"SELECT COUNT(*) AS n FROM (WITH o AS (SELECT objectId FROM {OBJ}) "
        "SELECT o.objectId FROM o) AS s"
    ).table
    assert nested.column("n")[0].as_py() > 1000


# ----- finding 8: deep nesting is a 400 with a short message ------------------------------
DEEP = [
    pytest.param("SELECT " + "(" * 200 + "1" + ")" * 200 + " AS x", id="200-parentheses"),
    pytest.param(
        "SELECT x FROM " + "(SELECT 1 AS x FROM " * 300 + OBJ + ")" * 300,
        id="300-subqueries",
    ),
    pytest.param("SELECT 1 AS x WHERE " + " AND ".join(["1 = 1"] * 5000), id="5000-conjuncts"),
    pytest.param("SELECT 1 + " + " + ".join(["1"] * 20000) + " AS x", id="20000-terms"),
    pytest.param("SELECT " + "-" * 3000 + "1 AS x", id="3000-minus-signs"),
    pytest.param("SELECT 1 AS x FROM " + OBJ + " WHERE " + "NOT " * 3000 + "1=1", id="not-chain"),
]


@pytest.mark.parametrize("adql", DEEP)
def test_deep_queries_are_refused_briefly(engine, adql):
    try:
        engine.execute(adql)
    except AdqlError as error:
        assert len(error.message) < 400
        assert_no_leak(error.message)


def test_deep_query_over_http_is_a_short_400(hostile_server):
    query = "SELECT x FROM " + "(SELECT 1 AS x FROM " * 300 + OBJ + ")" * 300
    response = hostile_server.sync(query)
    assert response.status_code == 400
    assert len(response.content) < 2000
    assert "nested too deeply" in response.text
    assert_no_leak(response.text)
    log = hostile_server.log_path.read_text()
    assert "Traceback" not in log and "RecursionError" not in log


# ----- an HTTP server with small limits ---------------------------------------------------
#: 2e11 rows of a cross join that no join algorithm shortens: runs for hours, in little memory
SLOW = (
    f"SELECT COUNT(*) AS n FROM {OBJ} a, {OBJ} b, {OBJ} c "
    "WHERE SIN(a.coord_ra + b.coord_ra + c.coord_ra) > 2"
)
#: 36 million groups: more than the server's memory for one query and its spill space
HUNGRY = (
    f"SELECT a.objectId * 10000000 + b.objectId AS k, COUNT(*) AS n FROM {OBJ} a, {OBJ} b "
    "GROUP BY a.objectId * 10000000 + b.objectId"
)
LIMITS = {
    "SKYDECK_TAP_MAX_CONCURRENT_PER_USER": "2",
    "SKYDECK_TAP_MAX_ACTIVE_JOBS_PER_USER": "2",
    "SKYDECK_TAP_MAX_PARAMETER_BYTES": "10000",
    "SKYDECK_TAP_MAX_PARAMETERS": "20",
    "SKYDECK_TAP_MAX_REQUEST_BYTES": "2000000",
    "SKYDECK_TAP_MAX_UPLOAD_BYTES": "1000000",
    "SKYDECK_TAP_MAX_WAIT_SECONDS": "1",
    "SKYDECK_TAP_QUERY_MEMORY_LIMIT": "30MB",
    "SKYDECK_TAP_MAX_TEMP_SIZE": "50MB",
}


@pytest.fixture(scope="module")
def hostile_server(tap_release, tmp_path_factory):
    server = start_tap_server(
        Path(str(tap_release.layout.root)), tmp_path_factory.mktemp("tap-hostile"), env=LIMITS
    )
    yield server
    server.stop()


def votable(rows: dict[str, list]) -> bytes:
    out = io.BytesIO()
    writeto(from_table(Table(rows)), out)
    return out.getvalue()


def new_job(server, **params) -> str:
    data = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 objectId FROM Object", **params}
    response = requests.post(server.url + "/async", data=data, allow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def phase_of(job_url: str) -> str:
    return requests.get(job_url + "/phase").text


def settle(job_url: str) -> str:
    for _ in range(600):
        phase = phase_of(job_url)
        if phase not in {"PENDING", "QUEUED", "EXECUTING"}:
            return phase
        time.sleep(0.1)
    raise AssertionError(f"{job_url} stayed {phase}")


# ----- finding 3: uploads only from the job's own directory, names validated --------------
def test_upload_names_cannot_be_paths(hostile_server, tmp_path):
    secret = tmp_path / "evil"
    pq.write_table(pa.table({"marker": ["found-you"]}), f"{secret}.parquet")
    job = new_job(hostile_server, QUERY=f'SELECT * FROM TAP_UPLOAD."{secret}"')
    refused = requests.post(job + "/parameters", data={"UPLOAD": str(secret)})
    assert refused.status_code == 400, refused.text
    assert "UPLOAD table name" in refused.text
    forged = requests.post(job + "/parameters", data={"UPLOAD": f"evil,stored:{secret}"})
    assert forged.status_code == 400, forged.text
    requests.post(job + "/phase", data={"PHASE": "RUN"})
    settle(job)
    result = requests.get(job + "/results/result")
    assert "found-you" not in result.text
    error = requests.get(job + "/error").text
    assert "Unknown uploaded table" in error and "found-you" not in error
    # the same name refused at creation and in /sync
    created = requests.post(
        hostile_server.url + "/async",
        data={"QUERY": "SELECT 1 AS x", "UPLOAD": f"{secret},param:t"},
        files={"t": ("t.xml", votable({"a": [1]}))},
        allow_redirects=False,
    )
    assert created.status_code == 400 and "UPLOAD table name" in created.text
    sync = requests.post(
        hostile_server.url + "/sync",
        data={"QUERY": "SELECT 1 AS x", "UPLOAD": "../evil,param:t"},
        files={"t": ("t.xml", votable({"a": [1]}))},
    )
    assert sync.status_code == 400 and "UPLOAD table name" in sync.text


def test_uploads_set_through_parameters_work(hostile_server):
    job = new_job(hostile_server, QUERY="SELECT SUM(a) AS total FROM TAP_UPLOAD.mine")
    response = requests.post(
        job + "/parameters",
        data={"UPLOAD": "mine,param:t"},
        files={"t": ("t.xml", votable({"a": [1, 2, 3]}))},
    )
    assert response.status_code in (200, 303), response.text
    requests.post(job + "/phase", data={"PHASE": "RUN"})
    assert settle(job) == "COMPLETED", requests.get(job + "/error").text
    assert "6" in requests.get(job + "/results/result", params={"FORMAT": "csv"}).text


# ----- finding 5: memory of a query is bounded --------------------------------------------
def test_query_needing_too_much_memory_gets_a_clear_400(hostile_server):
    response = hostile_server.sync(HUNGRY)
    assert response.status_code == 400, response.text[:300]
    assert "more memory than your limit of 30MB" in response.text
    assert_no_leak(response.text)
    # and the service goes on answering
    assert hostile_server.sync("SELECT TOP 1 objectId FROM Object").status_code == 200


def test_engine_memory_limit_per_query(tap_release, tmp_path):
    engine = Engine(
        tap_release.layout, threads=2, memory_limit="1GB", query_memory_limit="200MB",
        temp_directory=tmp_path / "spill", max_temp_size="50MB",
    )  # fmt: skip
    with pytest.raises(AdqlError, match="more memory than your limit of 20MB"):
        engine.execute(HUNGRY, memory_limit="20MB")
    assert engine.execute("SELECT TOP 3 objectId FROM Object").table.num_rows == 3


class _Quota:
    """The quota client's answer for one user (its HTTP side is tested with the quota service)."""

    def __init__(self, tap: dict[str, float | None]) -> None:
        self.tap = tap

    def tap_quota(self, user: str) -> dict[str, float | None]:
        return self.tap


def test_memory_per_query_tightened_by_quota(engine, tmp_path):
    config = TapSettings(release=tmp_path, data_dir=tmp_path, auth="none")
    assert QueryService(config, engine).memory_for("alice") == "1GB"
    small = QueryService(config, engine, _Quota({"memory_gib": 0.25}))  # type: ignore[arg-type]
    assert small.memory_for("alice") == "256MiB"
    large = QueryService(config, engine, _Quota({"memory_gib": 64}))  # type: ignore[arg-type]
    assert large.memory_for("alice") == "1GB"


# ----- finding 7: work does not outlive its owner; users take turns -----------------------
def _give_up(url: str) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url + "/sync", data={"QUERY": SLOW}, timeout=(5, 2))


def test_sync_query_is_interrupted_when_the_client_leaves(hostile_server):
    # two clients give up on their slow queries; the user's two concurrency slots come free
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_give_up, [hostile_server.url] * 2))
    for _ in range(300):
        response = hostile_server.sync("SELECT TOP 1 objectId FROM Object")
        if response.status_code == 200:
            break
        assert response.status_code == 429, response.text
        time.sleep(0.1)
    assert response.status_code == 200, "the abandoned query kept the user's slot"


def test_wait_is_capped_by_the_server(hostile_server):
    job = new_job(hostile_server, QUERY=SLOW, PHASE="RUN")
    try:
        # -1 means "as long as the server allows"; this server allows 1 s
        answer = requests.get(job, params={"WAIT": "-1"}, timeout=30)
        assert answer.status_code == 200
        answer = requests.get(job, params={"WAIT": "100000"}, timeout=30)
        assert answer.status_code == 200
    finally:
        requests.post(job, data={"ACTION": "DELETE"})


def test_parameters_and_bodies_are_bounded(hostile_server):
    long_query = "SELECT 1 AS x FROM Object WHERE objectId IN (" + ",".join(["1"] * 5000) + ")"
    response = requests.post(hostile_server.url + "/async", data={"QUERY": long_query})
    assert response.status_code == 413 and "at most 10000" in response.text
    job = new_job(hostile_server)
    response = requests.post(job + "/parameters", data={"RUNID": "x", "FOO": "y" * 20000})
    assert response.status_code == 413, response.text
    response = requests.post(job + "/parameters", data={f"P{i}": "1" for i in range(30)})
    assert response.status_code in (400, 413), response.text
    response = requests.post(job + "/parameters", data={"RUNID": "r" * 300})
    assert response.status_code == 400, response.text
    big = requests.post(
        job + "/parameters",
        data={"QUERY": "SELECT 1 AS x"},
        files={"t": ("t.bin", b"0" * 3_000_000)},
    )
    assert big.status_code == 413 and "request body" in big.text
    streamed = requests.post(  # no Content-Length: counted as it arrives
        job + "/parameters",
        data=(b"%s=%s&" % (name, b"1" * 900_000) for name in (b"A", b"B", b"C")),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413, streamed.text
    params = requests.get(job + "/parameters").text
    assert len(params) < 5000


def test_async_jobs_per_user_are_capped(hostile_server):
    jobs = [new_job(hostile_server, QUERY=SLOW, PHASE="RUN") for _ in range(2)]
    try:
        extra = new_job(hostile_server, QUERY=SLOW)
        refused = requests.post(extra + "/phase", data={"PHASE": "RUN"}, allow_redirects=False)
        assert refused.status_code == 429, refused.text
        assert "at once (2)" in refused.text
        assert phase_of(extra) == "PENDING"
    finally:
        for job in [*jobs, extra]:
            requests.post(job, data={"ACTION": "DELETE"})


def make_jobs(engine, tmp_path, **settings) -> JobService:
    config = TapSettings(
        release=tmp_path, data_dir=tmp_path / "data", auth="none",
        database_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", **settings,
    )  # fmt: skip
    config.data_dir.mkdir(exist_ok=True)
    return JobService(config, QueryService(config, engine), JobStore(config.resolved_database_url))


def wait_phase(service: JobService, job_id: str, owner: str, phases: set[str]) -> str:
    for _ in range(1200):
        phase = service.get(job_id, owner).phase
        if phase in phases:
            return phase
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {phase}")


def test_users_take_turns_on_the_async_workers():
    """Bob's one job, queued behind alice's eight, runs second once the worker comes free.

    The scheduler itself, with a job that holds the only worker until told: through the
    job service, a blocking query could end on its own on a loaded machine (a memory
    refusal) before bob's job was queued, and then alice's jobs rightly ran first.
    """
    order: list[str] = []
    started, release = threading.Event(), threading.Event()

    def run(job_id: str) -> None:
        if job_id == "blocker":
            started.set()
            release.wait(60)
        order.append(job_id)

    scheduler = FairScheduler(1, run)
    try:
        scheduler.submit("alice", "blocker")
        assert started.wait(60)
        for i in range(8):
            scheduler.submit("alice", f"alice-{i}")
        scheduler.submit("bob", "bob-0")
        release.set()
        deadline = time.monotonic() + 60
        while len(order) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert order[:3] == ["blocker", "alice-0", "bob-0"], order
        assert order[3:] == [f"alice-{i}" for i in range(1, 8)], order
    finally:
        scheduler.shutdown()


@pytest.mark.skip(
    reason="hung past the 600 s timeout once in a full CI run (aborting its "
    "slow jobs, then shutdown); open in issue 15 until the abort race is found"
)
def test_async_cap_is_per_user(engine, tmp_path):
    service = make_jobs(engine, tmp_path, max_active_jobs_per_user=2, max_jobs_per_user=4)
    slow = {"LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"}
    try:
        running = [service.create("alice", slow, {}) for _ in range(2)]
        with pytest.raises(TapError) as info:
            service.create("alice", slow, {})
        assert info.value.status == 429
        assert service.create("bob", slow, {}).phase in {"QUEUED", "EXECUTING"}
        assert len(service.list("alice", [], None, None)) == 2  # the refused job is not kept
        for _ in range(2):
            service.create("alice", {"QUERY": "SELECT 1 AS x"}, {})
        with pytest.raises(TapError, match="most one user may keep"):
            service.create("alice", {"QUERY": "SELECT 1 AS x"}, {})
        for job in running:
            service.abort(job)
    finally:
        service.shutdown()
