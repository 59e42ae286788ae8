"""UWS job service on SQLite and PostgreSQL: lifecycle, recovery after a restart, limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from skydeck.catalog.tap._adql import AdqlError
from skydeck.catalog.tap._engine import Engine
from skydeck.catalog.tap._quota import combine
from skydeck.catalog.tap._service import JobService, QueryService, TapError, UserLimits
from skydeck.catalog.tap._store import JobStore
from skydeck.catalog.tap.config import TapSettings

SLOW = (
    "SELECT COUNT(*) FROM dp02_dc2_catalogs.Object a, dp02_dc2_catalogs.Object b, "
    "dp02_dc2_catalogs.ForcedSource c WHERE a.coord_ra + b.coord_ra > c.psfFlux"
)


@pytest.fixture(scope="module")
def engine(tap_release):
    return Engine(tap_release.layout, threads=2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def make_service(engine, tmp_path, database_url, **settings):
    config = TapSettings(
        release=tmp_path, data_dir=tmp_path / "data", database_url=database_url, auth="none",
        **settings,
    )  # fmt: skip
    config.data_dir.mkdir(exist_ok=True)
    return JobService(config, QueryService(config, engine), JobStore(database_url))


def wait_for(service, job_id, owner, phases, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.get(job_id, owner)
        if job.phase in phases:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {job.phase}")


def test_lifecycle_and_recovery(engine, tmp_path, database_url):
    service = make_service(engine, tmp_path, database_url)
    params = {"LANG": "ADQL", "QUERY": "SELECT TOP 5 objectId FROM Object", "PHASE": "RUN"}
    done = service.create("alice", params, {})
    done = wait_for(service, done.job_id, "alice", {"COMPLETED"})
    assert done.result_rows == 5 and done.result_path
    with pytest.raises(TapError) as info:
        service.get(done.job_id, "bob")
    assert info.value.status == 404
    assert [j.job_id for j in service.list("bob", [], None, None)] == []

    queued = service.create(
        "alice", {"LANG": "ADQL", "QUERY": "SELECT TOP 2 objectId FROM Object"}, {}
    )
    interrupted = service.create("alice", {"LANG": "ADQL", "QUERY": "SELECT 1 FROM Object"}, {})
    service.store.update(queued.job_id, phase="QUEUED")  # as if the service died right here
    service.store.update(interrupted.job_id, phase="EXECUTING")
    service.shutdown()
    service.store.close()

    restarted = make_service(engine, tmp_path, database_url)
    restarted.recover()
    assert wait_for(restarted, queued.job_id, "alice", {"COMPLETED"}).result_rows == 2
    failed = restarted.get(interrupted.job_id, "alice")
    assert failed.phase == "ERROR" and "restarted" in (failed.error or "")
    assert restarted.get(done.job_id, "alice").phase == "COMPLETED"

    # destruction: jobs past their destruction time are purged with their results
    past = datetime.now(UTC) - timedelta(minutes=1)
    restarted.store.update(done.job_id, destruction=past)
    assert restarted.purge_expired() == 1
    with pytest.raises(TapError):
        restarted.get(done.job_id, "alice")
    restarted.shutdown()


def test_abort_stops_a_running_query(engine, tmp_path, database_url):
    service = make_service(engine, tmp_path, database_url)
    job = service.create("alice", {"LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"}, {})
    wait_for(service, job.job_id, "alice", {"EXECUTING"})
    time.sleep(0.3)
    service.abort(service.get(job.job_id, "alice"))
    assert wait_for(service, job.job_id, "alice", {"ABORTED"}).phase == "ABORTED"
    service.shutdown()


def test_execution_duration_is_enforced(engine, tmp_path):
    service = make_service(engine, tmp_path, f"sqlite:///{tmp_path / 'j.sqlite3'}")
    job = service.create(
        "alice", {"LANG": "ADQL", "QUERY": SLOW, "EXECUTIONDURATION": "1", "PHASE": "RUN"}, {}
    )
    failed = wait_for(service, job.job_id, "alice", {"ERROR"}, timeout=120)
    assert "execution limit" in (failed.error or "")
    service.shutdown()
    with pytest.raises(AdqlError, match="execution limit"):
        engine.execute(SLOW, timeout=0.5)


def test_concurrency_and_quota_limits():
    running = UserLimits()
    running.acquire("alice", 2)
    running.acquire("alice", 2)
    with pytest.raises(TapError) as info:
        running.acquire("alice", 2)
    assert info.value.status == 429 and "async" in info.value.message
    running.acquire("bob", 2)  # other users are not affected
    running.release("alice")
    running.acquire("alice", 2)

    limits = combine(4, 1_000_000, 600, {"concurrent": 1, "maxrec": None, "execution_seconds": 30})
    assert (limits.concurrent, limits.maxrec, limits.execution_seconds) == (1, 1_000_000, 30)
    assert combine(4, 10, 600, None).maxrec == 10


def test_maxrec_ceiling_from_configuration(engine, tmp_path):
    config = TapSettings(release=tmp_path, data_dir=tmp_path, auth="none", max_maxrec=7)
    queries = QueryService(config, engine)
    request = queries.parse({"QUERY": "SELECT objectId FROM Object", "MAXREC": "1000"})
    assert request.maxrec == 7
    result = queries.run("alice", request, {}, queries.limits_for("alice", sync=True))
    assert result.overflow and result.table.num_rows == 7
