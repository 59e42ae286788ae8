"""A published release on S3 object storage (moto's server on loopback).

The synthetic TAP release is uploaded to a fresh bucket; lsdb / ``skydeck.lab.open_catalog``
and the TAP service then read it from ``s3://`` (s3fs, endpoint from ``AWS_ENDPOINT_URL``)
and must give exactly the rows the local copy gives.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from support.s3 import S3Server
from support.tap import TapRelease, TapServer, start_tap_server

pytestmark = pytest.mark.s3

CONE = (
    "SELECT objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 1.5)) = 1"
)


@pytest.fixture(scope="module")
def s3_release(s3_server: S3Server, tap_release: TapRelease) -> Iterator[str]:
    """The TAP test release copied to a fresh bucket; yields its ``s3://`` URI."""
    import s3fs

    bucket = s3_server.create_bucket()
    fs = s3fs.S3FileSystem(
        key=s3_server.access_key,
        secret=s3_server.secret_key,
        endpoint_url=s3_server.endpoint_url,
        client_kwargs={"region_name": s3_server.region},
    )
    local = Path(str(tap_release.layout.root))
    fs.put(str(local) + "/", f"{bucket}/release/", recursive=True)
    assert fs.exists(f"{bucket}/release/manifest.json")
    yield f"s3://{bucket}/release"


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point S3 clients (s3fs via botocore) at the moto server for one test."""
    environment = s3_server.environment()
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return environment


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


def test_open_catalog_from_s3_matches_local(
    s3_release: str,
    s3_env: dict[str, str],
    tap_release: TapRelease,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skydeck.lab import open_catalog

    columns = ["objectId", "coord_ra", "coord_dec"]
    monkeypatch.setenv("SKYDECK_RELEASE", str(tap_release.layout.root))
    local = open_catalog("Object", columns=columns).cone_search(62, -37, 3600).compute()
    monkeypatch.setenv("SKYDECK_RELEASE", s3_release)
    remote_catalog = open_catalog("Object", columns=columns)
    assert str(remote_catalog.hc_structure.catalog_base_dir).startswith("s3://")
    remote = remote_catalog.cone_search(62, -37, 3600).compute()
    assert len(local) > 50
    pd.testing.assert_frame_equal(
        _sorted(remote[columns], "objectId"), _sorted(local[columns], "objectId")
    )
    # every row of the catalog, too: nothing lost between partitions
    everything = open_catalog("Object", columns=columns).compute()
    assert len(everything) == len(tap_release.objects)


def test_lsdb_reads_s3_directly(
    s3_release: str, s3_env: dict[str, str], tap_release: TapRelease
) -> None:
    import lsdb
    from upath import UPath

    # A UPath, not a string: hats opens s3:// strings anonymously (public buckets)
    catalog = lsdb.open_catalog(UPath(f"{s3_release}/hats/gaia_dr3"))
    assert len(catalog.compute()) == len(tap_release.gaia)


def test_tap_service_on_s3_answers_like_local(
    s3_release: str,
    s3_env: dict[str, str],
    tap_server: TapServer,
    tap_release: TapRelease,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start_tap_server(s3_release, tmp_path_factory.mktemp("tap-s3"))
    try:
        remote = server.sync(CONE, responseformat="csv")
        assert remote.status_code == 200, remote.text
        local = tap_server.sync(CONE, responseformat="csv")
        assert local.status_code == 200, local.text
        remote_rows = pd.read_csv(io.BytesIO(remote.content))
        local_rows = pd.read_csv(io.BytesIO(local.content))
        assert len(local_rows) > 50
        pd.testing.assert_frame_equal(
            _sorted(remote_rows, "objectId"), _sorted(local_rows, "objectId")
        )
        # the table metadata came from S3 as well (felis schema + parquet footer)
        count = server.sync("SELECT COUNT(*) AS n FROM gaia_dr3.gaia_source", responseformat="csv")
        assert count.status_code == 200, count.text
        assert int(pd.read_csv(io.BytesIO(count.content))["n"][0]) == len(tap_release.gaia)
    finally:
        server.stop()


def test_duckdb_sandbox_is_on_for_s3_releases(
    s3_release: str, s3_env: dict[str, str], tap_release: TapRelease, tmp_path: Path
) -> None:
    """Issue 15, finding 4: the file sandbox holds for an S3 release too (white-box check)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skydeck.catalog.release import ReleaseLayout
    from skydeck.catalog.tap._engine import Engine

    engine = Engine(ReleaseLayout.at(s3_release), threads=2)
    count = engine.execute("SELECT COUNT(*) AS n FROM gaia_dr3.gaia_source").table
    assert count.column("n")[0].as_py() == len(tap_release.gaia)
    secret = tmp_path / "secret.parquet"
    pq.write_table(pa.table({"marker": ["found-you"]}), secret)
    bucket = s3_release.split("/")[2]
    with engine._databases.use(None) as (db, _):
        for path in (str(secret), f"s3://{bucket}/elsewhere.parquet"):
            with pytest.raises(duckdb.PermissionException):
                db.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
        with pytest.raises(duckdb.Error):
            db.execute("SET enable_external_access = true")
