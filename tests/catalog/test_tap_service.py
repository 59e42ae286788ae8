"""The TAP service over HTTP: sync, formats, errors, UWS async (surviving restarts), pyvo."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.io.votable import parse, parse_single_table
from astropy.table import Table

UWS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
CONE = (
    "SELECT objectId, coord_ra, coord_dec, detect_isPrimary, refBand, r_psfFlux "
    "FROM dp02_dc2_catalogs.Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 1.5)) = 1"
)


def truth_cone(objects: pd.DataFrame) -> pd.DataFrame:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(objects["coord_ra"].to_numpy() * u.deg, objects["coord_dec"].to_numpy() * u.deg)
    sep = c.separation(SkyCoord(62 * u.deg, -37 * u.deg)).deg
    return objects[sep <= 1.5].set_index("objectId").sort_index()


def test_sync_votable_binary2_round_trips(tap_server, tap_release):
    response = requests.get(tap_server.url + "/sync", params={"LANG": "ADQL", "QUERY": CONE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    assert b"<BINARY2>" in response.content
    votable = parse(io.BytesIO(response.content))
    status = [i for i in votable.resources[0].infos if i.name == "QUERY_STATUS"]
    assert [i.value for i in status] == ["OK"]
    table = votable.get_first_table().to_table().to_pandas().set_index("objectId").sort_index()
    truth = truth_cone(tap_release.objects)
    assert len(truth) > 50
    assert table.index.tolist() == truth.index.tolist()
    np.testing.assert_allclose(table["coord_ra"], truth["coord_ra"])
    assert (table["detect_isPrimary"] == truth["detect_isPrimary"]).all()
    assert (table["refBand"] == truth["refBand"]).all()
    nulls = truth["r_psfFlux"].isna()
    assert nulls.any()
    assert table["r_psfFlux"][nulls.to_numpy()].isna().all()
    np.testing.assert_allclose(
        table["r_psfFlux"][~nulls.to_numpy()], truth["r_psfFlux"][~nulls].astype(float)
    )
    fields = {f.name: f for f in votable.get_first_table().fields}
    assert fields["coord_ra"].unit == "deg"
    assert fields["coord_ra"].ucd == "pos.eq.ra;meta.main"


def test_sync_post_and_case_insensitive_parameters(tap_server):
    response = requests.post(
        tap_server.url + "/sync",
        data={"lang": "ADQL", "query": "SELECT TOP 3 objectId FROM Object", "unknownparam": "x"},
    )
    assert response.status_code == 200
    assert len(parse_single_table(io.BytesIO(response.content)).array) == 3


def test_oddly_named_parameters_are_ignored_not_refused(tap_server):
    """JupyterLab's requests carry a cache-busting ``?<timestamp>`` (the lab extension's
    "Run again" posts one): DALI clients may send parameters a service does not know."""
    created = requests.post(
        tap_server.url + "/async?1796530704777",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 objectId FROM Object", "<b>": "x"},
        allow_redirects=False,
    )
    assert created.status_code == 303, created.text
    parameters = requests.get(created.headers["location"] + "/parameters").text
    assert "1796530704777" not in parameters and "&lt;b&gt;" not in parameters
    assert "SELECT TOP 1 objectId FROM Object" in parameters


def test_maxrec_overflow_marks_query_status(tap_server):
    response = tap_server.sync("SELECT objectId FROM Object", maxrec=5)
    text = response.text
    assert text.index('value="OVERFLOW"') > text.index("</TABLE>")
    assert len(parse_single_table(io.BytesIO(response.content)).array) == 5
    zero = tap_server.sync("SELECT objectId FROM Object", maxrec=0)
    assert 'value="OVERFLOW"' in zero.text


@pytest.mark.parametrize("fmt", ["csv", "tsv", "fits", "parquet", "votable/td", "text/csv"])
def test_response_formats(tap_server, tap_release, fmt):
    response = tap_server.sync(CONE, responseformat=fmt)
    assert response.status_code == 200, response.text
    body = response.content
    if fmt in {"csv", "text/csv"}:
        table = pd.read_csv(io.BytesIO(body))
    elif fmt == "tsv":
        table = pd.read_csv(io.BytesIO(body), sep="\t")
    elif fmt == "fits":
        table = Table.read(fits.open(io.BytesIO(body))[1]).to_pandas()
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(body)).to_pandas()
    else:
        assert b"<TABLEDATA>" in body
        table = parse_single_table(io.BytesIO(body)).to_table().to_pandas()
    truth = truth_cone(tap_release.objects)
    table = table.set_index("objectId").sort_index()
    assert table.index.tolist() == truth.index.tolist()
    np.testing.assert_allclose(table["coord_dec"], truth["coord_dec"])


@pytest.mark.parametrize(
    ("query", "pattern"),
    [
        ("SELECT objectId FROM\nObject WHERE WHERE", r"line 2, column \d+"),
        ("SELECT objectid, coord_decl FROM Object", "Did you mean coord_dec"),
        ("SELECT * FROM dp02_dc2_catalogs.Objects", "Did you mean dp02_dc2_catalogs.Object"),
    ],
)
def test_errors_are_dali_error_documents(tap_server, query, pattern):
    response = tap_server.sync(query)
    assert response.status_code == 400
    votable = parse(io.BytesIO(response.content))
    info = next(i for i in votable.resources[0].infos if i.name == "QUERY_STATUS")
    assert info.value == "ERROR"
    assert re.search(pattern, info.content), info.content


def test_bad_parameters(tap_server):
    assert tap_server.sync("SELECT 1 FROM Object", responseformat="image/png").status_code == 400
    assert (
        "LANG" in requests.post(tap_server.url + "/sync", data={"LANG": "SQL", "QUERY": "x"}).text
    )
    missing = requests.post(tap_server.url + "/sync", data={"LANG": "ADQL"})
    assert missing.status_code == 400 and "QUERY" in missing.text


def test_upload_urls_are_refused(tap_server):
    response = tap_server.sync(
        "SELECT * FROM TAP_UPLOAD.t", upload="t,http://169.254.169.254/latest/meta-data"
    )
    assert response.status_code == 403
    assert "refused" in response.text


def test_vosi_documents(tap_server, tap_release):
    caps = requests.get(tap_server.url + "/capabilities").text
    for feature in ("CONTAINS", "POLYGON", "scisql_nanojanskyToAbMag", "upload-inline"):
        assert feature in caps
    tables = requests.get(tap_server.url + "/tables").text
    assert "<name>dp02_dc2_catalogs.Object</name>" in tables
    assert "<name>gaia_dr3.gaia_source</name>" in tables
    one = requests.get(tap_server.url + "/tables/dp02_dc2_catalogs.ForcedSource")
    assert one.status_code == 200 and "<name>psfFlux</name>" in one.text
    assert "<available>true</available>" in requests.get(tap_server.url + "/availability").text
    assert 'property="query"' in requests.get(tap_server.url + "/examples").text


def _job_phase(url: str) -> str:
    return requests.get(url + "/phase").text


def test_async_lifecycle_survives_restart(tap_server, tap_release):
    base = tap_server.url + "/async"
    created = requests.post(
        base,
        data={"LANG": "ADQL", "QUERY": CONE, "RUNID": "mine", "EXECUTIONDURATION": "120"},
        allow_redirects=False,
    )
    assert created.status_code == 303
    job = created.headers["location"]
    assert _job_phase(job) == "PENDING"
    assert requests.get(job + "/executionduration").text == "120"
    requests.post(job + "/parameters", data={"MAXREC": "1000"})
    assert "1000" in requests.get(job + "/parameters").text
    started = requests.post(job + "/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert started.status_code == 303
    document = requests.get(job, params={"WAIT": "30", "PHASE": "QUEUED"}).text
    deadline = time.monotonic() + 60
    while _job_phase(job) in {"QUEUED", "EXECUTING"} and time.monotonic() < deadline:
        requests.get(job, params={"WAIT": "5"})
    assert _job_phase(job) == "COMPLETED", requests.get(job).text
    document = requests.get(job).text
    assert "<uws:runId>mine</uws:runId>" in document
    result = requests.get(job + "/results/result")
    rows = parse_single_table(io.BytesIO(result.content)).to_table()
    assert len(rows) == len(truth_cone(tap_release.objects))

    failing = requests.post(
        base, data={"LANG": "ADQL", "QUERY": "SELECT nope FROM Object", "PHASE": "RUN"}
    ).url
    requests.get(failing, params={"WAIT": "30"})
    deadline = time.monotonic() + 30
    while _job_phase(failing) != "ERROR" and time.monotonic() < deadline:
        time.sleep(0.2)
    error = requests.get(failing + "/error")
    assert "Unknown column nope" in error.text

    pending = requests.post(base, data={"LANG": "ADQL", "QUERY": "SELECT 1 FROM Object"}).url
    requests.post(pending + "/phase", data={"PHASE": "ABORT"})
    assert _job_phase(pending) == "ABORTED"

    tap_server.restart()
    assert _job_phase(job) == "COMPLETED"
    again = requests.get(job + "/results/result")
    assert again.content == result.content
    listing = requests.get(base).text
    for url in (job, failing, pending):
        assert url.rsplit("/", 1)[1] in listing
    only_errors = requests.get(base, params={"PHASE": "ERROR"}).text
    assert failing.rsplit("/", 1)[1] in only_errors and job.rsplit("/", 1)[1] not in only_errors

    deleted = requests.delete(job, allow_redirects=False)
    assert deleted.status_code == 303
    assert requests.get(job).status_code == 404
    requests.post(pending, data={"ACTION": "DELETE"})
    assert requests.get(pending).status_code == 404


def test_pyvo_sync_async_and_upload_crossmatch(tap_server, tap_release):
    service = pyvo.dal.TAPService(tap_server.url)
    sync = service.search(CONE).to_table()
    assert len(sync) == len(truth_cone(tap_release.objects))

    job = service.submit_job("SELECT TOP 10 objectId FROM Object ORDER BY objectId")
    job.run()
    job.wait(phases=["COMPLETED", "ERROR"], timeout=60)
    job.raise_if_error()
    rows = job.fetch_result().to_table()
    assert list(rows["objectId"]) == sorted(tap_release.objects["objectId"])[:10]
    job.delete()

    gaia = tap_release.gaia.head(200)
    upload = Table.from_pandas(gaia[["source_id", "ra", "dec"]])
    matched = service.search(
        "SELECT u.source_id, o.objectId FROM TAP_UPLOAD.mine AS u "
        "JOIN dp02_dc2_catalogs.Object AS o ON "
        "DISTANCE(POINT('ICRS', u.ra, u.dec), POINT('ICRS', o.coord_ra, o.coord_dec)) < 0.0003",
        uploads={"mine": upload},
    ).to_table()
    from astropy import units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    objects = tap_release.objects
    c1 = SkyCoord(gaia["ra"].to_numpy() * u.deg, gaia["dec"].to_numpy() * u.deg)
    c2 = SkyCoord(objects["coord_ra"].to_numpy() * u.deg, objects["coord_dec"].to_numpy() * u.deg)
    i1, i2, _, _ = search_around_sky(c1, c2, 0.0003 * u.deg)
    truth = set(
        zip(gaia["source_id"].to_numpy()[i1], objects["objectId"].to_numpy()[i2], strict=True)
    )
    assert len(truth) > 100
    assert set(zip(matched["source_id"], matched["objectId"], strict=True)) == truth


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("stilts") is None, reason="needs `apt-get install -y stilts`")
def test_taplint_reports_no_errors(tap_server, tmp_path):
    result = subprocess.run(
        ["stilts", "taplint", f"tapurl={tap_server.url}", "report=EW"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    errors = [line for line in result.stdout.splitlines() if line.startswith("E-")]
    assert "Errors: 0" in summary, "\n".join(errors) or result.stdout[-3000:]
