"""Dask fan-out: per-partition execution merged here gives the in-process answer.

Also on a release in S3 (moto's server on loopback): the workers read the partition
files through s3fs, from storage options carried by each task or from their own
``AWS_*`` environment.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from skydeck.catalog.release import ReleaseLayout
from skydeck.catalog.tap._engine import Engine
from skydeck.catalog.tap._fanout import FanOut
from support.s3 import S3Server

pytestmark = pytest.mark.slow

QUERIES = [
    "SELECT objectId, coord_ra, r_psfFlux FROM Object WHERE coord_dec < -30",
    "SELECT TOP 17 objectId, coord_dec FROM Object ORDER BY coord_dec DESC",
    "SELECT objectId FROM Object ORDER BY objectId OFFSET 5990",
    "SELECT TOP 5 * FROM Object WHERE detect_isPrimary = 1 ORDER BY g_psfFlux",
    "SELECT COUNT(*) AS n, AVG(r_psfFlux) AS mean, MIN(coord_ra), MAX(coord_dec), "
    "SUM(deblend_nChild) AS total FROM Object",
    "SELECT refBand, COUNT(*) AS n, AVG(g_psfFlux) AS g FROM Object "
    "WHERE coord_dec > 0 GROUP BY refBand ORDER BY refBand",
    "SELECT DISTINCT refBand FROM Object ORDER BY refBand",
    "SELECT objectId FROM Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 0, 0, 3)) = 1",
    "SELECT COUNT(*) AS n FROM Object WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
    "POLYGON('ICRS', 358, -3, 3, -3, 3, 3, 358, 3)) = 1",
]


@pytest.fixture(scope="module")
def engines(tap_release):
    local = Engine(tap_release.layout, threads=1)
    spread = Engine(tap_release.layout, threads=1)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        spread.fanout = FanOut(spread, cluster.scheduler_address)
        yield local, spread
        spread.fanout.close()


def frame(result) -> pd.DataFrame:
    return result.table.to_pandas()


@pytest.mark.parametrize("adql", QUERIES)
def test_fan_out_matches_in_process(engines, adql):
    local, spread = engines
    expected = local.execute(adql)
    got = spread.execute(adql)
    assert int(got.info["fanout"]) >= 2, "this query should have been spread over tasks"
    a, b = frame(expected), frame(got)
    assert list(a.columns) == list(b.columns)
    if "ORDER BY" not in adql:
        a = a.sort_values(list(a.columns)).reset_index(drop=True)
        b = b.sort_values(list(b.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


def test_joins_stay_in_process(engines):
    _, spread = engines
    result = spread.execute(
        "SELECT COUNT(*) AS n FROM Object o JOIN ForcedSource f ON o.objectId = f.objectId"
    )
    assert "fanout" not in result.info
    assert result.table.column("n")[0].as_py() == 4500


S3_QUERIES = [QUERIES[0], QUERIES[4], QUERIES[7]]


@pytest.fixture(scope="module")
def s3_release_uri(s3_server: S3Server, tap_release) -> str:
    bucket = s3_server.create_bucket()
    return s3_server.upload(Path(str(tap_release.layout.root)), bucket, "release")


def _compare(expected, got, adql: str) -> None:
    assert int(got.info["fanout"]) >= 2, "this query should have been spread over tasks"
    a, b = frame(expected), frame(got)
    if "ORDER BY" not in adql:
        a = a.sort_values(list(a.columns)).reset_index(drop=True)
        b = b.sort_values(list(b.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


@pytest.mark.s3
def test_fan_out_on_s3_with_storage_options(engines, s3_server, s3_release_uri):
    """Workers that know no S3 endpoint read the release with the options each task carries."""
    from upath import UPath

    local, spread = engines  # its workers started before any AWS_* variable was set
    layout = ReleaseLayout.at(UPath(s3_release_uri, **s3_server.storage_options()))
    remote = Engine(layout, threads=1)
    remote.fanout = FanOut(remote, spread.fanout.scheduler)
    try:
        for adql in S3_QUERIES:
            _compare(local.execute(adql), remote.execute(adql), adql)
    finally:
        remote.fanout.close()


@pytest.mark.s3
def test_fan_out_on_s3_with_worker_environment(engines, s3_server, s3_release_uri, monkeypatch):
    """The service and its workers find the endpoint in AWS_* variables (as dask-gateway
    workers do: the gateway passes them on)."""
    local, _ = engines
    environment = {k: v for k, v in s3_server.environment().items() if k.startswith("AWS_")}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    remote = Engine(ReleaseLayout.at(s3_release_uri), threads=1)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", env=environment
    ) as cluster:
        remote.fanout = FanOut(remote, cluster.scheduler_address)
        try:
            for adql in S3_QUERIES:
                _compare(local.execute(adql), remote.execute(adql), adql)
        finally:
            remote.fanout.close()
