"""The production-like platform end to end, on one machine, with loopback backends.

``skydeck up --release s3://... --config hub/deploy/production.py`` with:

- a real PostgreSQL server for the hub database, the quota store, the TAP job
  store and the Butler registry (four databases);
- moto's S3 server for the HATS catalogs and the Butler datastore (the release
  is published there with ``skydeck data publish``, from the session's tiny
  release: no second build);
- GitHub login against the local stand-in (the OAuth flow over HTTP: the browser
  part of that login is tested in tests/hub/test_production.py).

A user logs in, and in her lab's Skydeck kernel queries TAP with an async job,
opens the Object catalog with lsdb from S3 and compares it with the TAP rows (in
the kernel and on a dask-gateway cluster), and cuts out a coadd both in the lab
and through the SODA service. The backends are then checked directly, so no
local fallback can make the test pass.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from skydeck.catalog.release import ReleaseLayout
from support.github import FakeGitHub
from support.hub import RunningHub, free_port
from support.lab import LabSession
from support.postgres import PostgresServer
from support.s3 import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = REPO / "hub" / "deploy" / "production.py"
#: Centre of the tiny release's field and a cone inside it (degrees).
RA, DEC, RADIUS = 62.0, -37.0, 0.01
USER = "vera"


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as conn:
        return list(conn.execute(query).fetchall())


def _s3_keys(s3: S3Server, bucket: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def github_login(hub: RunningHub, github: FakeGitHub, login: str) -> requests.Session:
    """Log in through the hub's GitHub OAuth flow (the stand-in's authorize form, over HTTP)."""
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/oauth_login", timeout=60)
    assert page.status_code == 200 and page.url.startswith(github.url), page.url
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    form = {key: html.unescape(value) for key, value in form.items()}
    back = session.post(
        f"{github.url}/login/oauth/authorize",
        data={**form, "login": login},
        allow_redirects=False,
        timeout=60,
    )
    assert back.status_code == 302, back.text
    callback = session.get(back.headers["Location"], allow_redirects=False, timeout=60)
    assert callback.status_code == 302, callback.text
    assert any(cookie.name.startswith("jupyterhub-session") for cookie in session.cookies)
    return session


@pytest.fixture(autouse=True)
def _quiet_s3_server() -> None:
    """moto's server logs every request; a failure report should show the platform's log."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture
def s3_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Only the standard AWS_* variables: what an operator sets for any S3 client."""
    environment = {k: v for k, v in s3_server.environment().items() if k.startswith("AWS_")}
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return environment


@pytest.fixture
def published(
    tiny_release: ReleaseLayout,
    s3_server: S3Server,
    s3_environment: dict[str, str],
    postgres_server: PostgresServer,
) -> Iterator[tuple[str, str, str]]:
    """The session's tiny release published to a fresh bucket: (uri, bucket, registry url)."""
    bucket = s3_server.create_bucket()
    registry = postgres_server.url(postgres_server.create_database())
    uri = f"s3://{bucket}/dr1"
    data_dir = Path(str(tiny_release.root)).parent
    command = [sys.executable, "-m", "skydeck.hub", "data", "publish", "--data-dir", str(data_dir)]
    result = subprocess.run(
        [*command, "--to", uri, "--registry", registry],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Release published at {uri}" in result.stdout
    yield uri, bucket, registry


def test_production_platform_end_to_end(
    hub_factory: Callable[..., RunningHub],
    fake_github: FakeGitHub,
    postgres_server: PostgresServer,
    published: tuple[str, str, str],
    s3_server: S3Server,
    s3_environment: dict[str, str],
    tiny_release: ReleaseLayout,
) -> None:
    uri, bucket, registry_url = published
    hub_db, quota_db, tap_db = (
        postgres_server.url(postgres_server.create_database()) for _ in range(3)
    )
    fake_github.add_account(USER, teams={("rubin-sci", "galaxies")})
    env = {
        **s3_environment,
        "SKYDECK_HUB_DB_URL": hub_db,
        "SKYDECK_QUOTA_DB_URL": quota_db,
        "SKYDECK_TAP_DATABASE_URL": tap_db,
        "SKYDECK_AUTH": "github",
        "SKYDECK_GITHUB_URL": fake_github.url,
        "SKYDECK_GITHUB_CLIENT_ID": fake_github.client_id,
        "SKYDECK_GITHUB_CLIENT_SECRET": fake_github.client_secret,
        "SKYDECK_GITHUB_ALLOWED": "rubin-sci",
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
    }
    hub = hub_factory(extra_config=[PRODUCTION_CONFIG], env=env, args=["--release", uri])
    assert not (hub.data_dir / "release").exists(), "nothing local may stand in for S3"

    github_login(hub, fake_github, USER)
    assert hub.api("GET", f"/users/{USER}").json()["groups"] == ["rubin-sci:galaxies"]
    try:
        server_url = hub.start_server(USER)
        lab = LabSession(server_url, hub.user_token(USER)).start()
        try:
            out = lab.execute(_LAB_CODE.format(ra=RA, dec=DEC, radius=RADIUS), timeout=600)
        finally:
            lab.shutdown()
            hub.stop_server(USER)
    finally:
        hub.stop()  # now, while PostgreSQL still runs (the session stops it before the hubs)
    report = json.loads(out["stdout"].strip().splitlines()[-1])

    # The lab was pointed at the S3 release and read it from there.
    assert report["release"] == uri
    assert report["catalog_dir"].startswith(f"{uri}/hats/")
    assert report["coadd_uri"].startswith(f"{uri}/butler/")
    # TAP (async job) and lsdb agree on the cone, and it is not empty.
    assert report["tap_phase"] == "COMPLETED"
    assert report["tap_ids"] == report["lsdb_ids"]
    assert len(report["tap_ids"]) >= 5
    # ... and so do the dask-gateway workers, given the S3 endpoint through the hub.
    assert report["worker_endpoints"] == [s3_server.endpoint_url]
    assert report["dask_ids"] == report["tap_ids"]
    # Cutouts in the lab and from the SODA service: the asked size, real pixels, a WCS
    # centred where asked.
    for name in ("lab_cutout", "soda_cutout"):
        cut = report[name]
        if name == "lab_cutout":
            assert cut["shape"] == [48, 48]
        else:  # CIRCLE of 7.2 arcsec radius: a box about 72 pixels of 0.2 arcsec wide
            assert 60 <= min(cut["shape"]) <= max(cut["shape"]) <= 80, cut
        assert cut["finite"] == 1.0
        assert cut["max"] > cut["median"] + 5 * cut["mad"], "no source in the cutout"
        assert cut["center_offset_arcsec"] < 1.0, cut
    assert report["soda_status"] == 200

    # The backends were really used.
    assert (USER,) in _rows(hub_db, "SELECT name FROM users")
    assert not list((hub.data_dir / "hub").glob("*.sqlite"))
    sessions = _rows(quota_db, "SELECT source FROM quota_usage_session WHERE \"user\" = 'vera'")
    assert ("lab",) in sessions
    assert not list(hub.data_dir.glob("services/quota/*.sqlite"))
    jobs = _rows(tap_db, "SELECT job_id, owner, phase FROM tap_jobs")
    assert (report["tap_job_id"], USER, "COMPLETED") in jobs
    assert not list(hub.data_dir.glob("services/tap/*.sqlite"))
    schemas = [
        schema
        for (schema,) in _rows(
            registry_url,
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'skydeck_pub_%'",
        )
    ]
    assert len(schemas) == 1
    (datasets,) = _rows(registry_url, f'SELECT count(*) FROM "{schemas[0]}".dataset')[0]
    assert datasets > 50
    keys = _s3_keys(s3_server, bucket)
    assert "dr1/manifest.json" in keys
    assert "dr1/butler/butler.yaml" in keys
    assert any(k.startswith("dr1/hats/Object/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith("dr1/butler/") and k.endswith(".fits") for k in keys)
    # The hub's own check refuses a prefix with no release on it, in one line.
    _check_refuses_empty_prefix(hub, f"s3://{bucket}/nothing-here", s3_environment)


def _check_refuses_empty_prefix(hub: RunningHub, uri: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "skydeck.hub", "up", "--data-dir", str(hub.data_dir / "x")]
    result = subprocess.run(
        [*command, "--port", str(free_port()), "--release", uri],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_base_env(), **env},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"skydeck: error: cannot serve the data release at {uri}: ")
    assert "No Skydeck data release" in lines[0]


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}


_LAB_CODE = r"""
import io, json, os
import numpy as np
import requests
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from skydeck.lab import (
    get_butler, get_cutout, get_dask_client, get_tap_service, open_catalog,
    shutdown_dask_clusters,
)

ra, dec, radius = {ra}, {dec}, {radius}
report = {{"release": os.environ["SKYDECK_RELEASE"]}}

tap = get_tap_service()
job = tap.submit_job(
    "SELECT objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object WHERE "
    f"CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {{ra}}, {{dec}}, {{radius}})) = 1"
)
job.run()
job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=300)
report["tap_job_id"] = job.job_id
report["tap_phase"] = job.phase
job.raise_if_error()
report["tap_ids"] = sorted(int(i) for i in job.fetch_result().to_table()["objectId"])

objects = open_catalog("Object", columns=["objectId", "coord_ra", "coord_dec"])
report["catalog_dir"] = str(objects.hc_structure.catalog_base_dir)
cone = objects.cone_search(ra=ra, dec=dec, radius_arcsec=radius * 3600).compute()
report["lsdb_ids"] = sorted(int(i) for i in cone["objectId"])

# the same cone on a Dask cluster of dask-gateway: its workers read S3 too
client = get_dask_client(n_workers=1)
try:
    endpoints = client.run(lambda: os.environ.get("AWS_ENDPOINT_URL"))
    report["worker_endpoints"] = sorted(set(endpoints.values()))
    on_cluster = objects.cone_search(ra=ra, dec=dec, radius_arcsec=radius * 3600).compute()
    report["dask_ids"] = sorted(int(i) for i in on_cluster["objectId"])
finally:
    client.close()
    shutdown_dask_clusters()

def describe(pixels, wcs, ra, dec):
    pixels = np.asarray(pixels, float)
    ny, nx = pixels.shape
    centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    good = pixels[np.isfinite(pixels)]
    median = float(np.median(good))
    return {{
        "shape": [ny, nx],
        "finite": float(np.isfinite(pixels).mean()),
        "max": float(good.max()),
        "median": median,
        "mad": float(np.median(np.abs(good - median))),
        "center_offset_arcsec": float(
            centre.separation(SkyCoord(ra, dec, unit="deg")).arcsec
        ),
    }}

# centred on a detected object, so the cutout must show a source
target = cone.sort_values("objectId").iloc[0]
cra, cdec = float(target["coord_ra"]), float(target["coord_dec"])
cut = get_cutout(cra, cdec, size=48, band="r")
report["lab_cutout"] = describe(cut.image, cut.wcs, cra, cdec)

butler = get_butler()
ref = butler.query_datasets(
    "deepCoadd", where=f"band = 'r' AND patch.region OVERLAPS POINT({{cra}}, {{cdec}})", limit=1
)[0]
report["coadd_uri"] = str(butler.getURI(ref))
response = requests.get(
    os.environ["SKYDECK_CUTOUT_URL"].rstrip("/") + "/sync",
    params={{"ID": str(ref.id), "CIRCLE": f"{{cra}} {{cdec}} 0.002"}},
    headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}},
    timeout=120,
)
report["soda_status"] = response.status_code
with fits.open(io.BytesIO(response.content)) as hdus:
    report["soda_cutout"] = describe(hdus["IMAGE"].data, WCS(hdus["IMAGE"].header), cra, cdec)
print(json.dumps(report))
"""
