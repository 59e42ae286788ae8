"""skydeck.lab in this process, against the mini release: API, errors, LocalCluster fallback.

Why not in a spawned lab (the rule for lab-side tests): these tests set the discovery
variables by hand to reach states a hub never produces on purpose (a TAP or gateway
port nobody answers at, a missing release, a 1-core ``CPU_LIMIT``) and check the
error each state gives, in seconds.  The same functions in labs the hub spawned, with
the environment a user gets, are tested in test_lab_platform.py, test_lab_release.py
and test_lab_environment.py; values set here use the spawner's forms (integer strings).
"""

from __future__ import annotations

import inspect
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import skydeck.lab as sl
from support.hats_check import cone_ids, nearest_pairs, primary_catalog_dir, read_hats_table

DISCOVERY_VARS = [
    "SKYDECK_RELEASE",
    "SKYDECK_TAP_URL",
    "SKYDECK_GATEWAY_URL",
    "SKYDECK_GATEWAY_PROXY_ADDRESS",
    "SKYDECK_CUTOUT_URL",
    "SKYDECK_QUOTA_URL",
    "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_API_TOKEN",
    "MEM_LIMIT",
    "CPU_LIMIT",
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


@pytest.fixture
def no_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DISCOVERY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def release(no_platform: None, monkeypatch: pytest.MonkeyPatch, mini_release: Path) -> Path:
    monkeypatch.setenv("SKYDECK_RELEASE", str(mini_release))
    return mini_release


def test_import_stays_light():
    code = (
        "import sys, skydeck.lab\n"
        "heavy = ['lsdb', 'dask', 'distributed', 'dask_gateway', 'pyvo', 'pandas',"
        " 'lsst.daf.butler', 'upath']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == []


def test_every_public_function_has_an_example():
    functions = [getattr(sl, name) for name in sl.__all__ if inspect.isfunction(getattr(sl, name))]
    assert {f.__name__ for f in functions} >= {
        "get_butler",
        "get_tap_service",
        "open_catalog",
        "list_catalogs",
        "get_dask_client",
    }
    for function in functions:
        assert ">>> " in (function.__doc__ or ""), f"{function.__name__} has no example"


def test_no_release_configured_says_what_to_do(no_platform):
    with pytest.raises(sl.ReleaseMissingError, match="SKYDECK_RELEASE is not set"):
        sl.open_catalog("Object")


def test_release_not_built_yet_says_what_to_do(no_platform, monkeypatch, tmp_path):
    monkeypatch.setenv("SKYDECK_RELEASE", str(tmp_path / "release"))
    for call in (sl.list_catalogs, lambda: sl.open_catalog("Object"), sl.get_butler):
        with pytest.raises(sl.ReleaseMissingError, match="skydeck data build"):
            call()


def test_list_catalogs_reads_the_manifest(release):
    table = sl.list_catalogs()
    assert list(table.index) == ["Object", "gaia_dr3"]
    assert table.loc["Object", "rows"] == 3000
    assert table.loc["gaia_dr3", "rows"] == 600
    assert "Gaia" in table.loc["gaia_dr3", "description"]


def test_unknown_catalog_lists_the_published_ones(release):
    with pytest.raises(sl.CatalogNotFoundError, match=r"'Objects'.*Object, gaia_dr3"):
        sl.open_catalog("Objects")


def test_open_catalog_attaches_the_margin_and_ignores_case(release):
    catalog = sl.open_catalog("object", columns=["objectId", "coord_ra", "coord_dec"])
    assert catalog.margin is not None
    assert catalog.hc_structure.catalog_info.total_rows == 3000


@pytest.mark.parametrize(("ra", "dec", "radius"), [(56.0, -30.0, 1200.0), (55.2, -30.9, 400.0)])
def test_cone_search_equals_brute_force(release, ra, dec, radius):
    found = sl.open_catalog("Object").cone_search(ra=ra, dec=dec, radius_arcsec=radius).compute()
    table = read_hats_table(primary_catalog_dir(release / "hats" / "Object"))
    expected = cone_ids(table, ra, dec, radius)
    assert expected, "the cone should not be empty"
    assert sorted(found["objectId"].tolist()) == expected


def test_release_without_butler_repository(release):
    with pytest.raises(sl.ReleaseMissingError, match="no Butler repository"):
        sl.get_butler()


def test_tap_not_configured(no_platform):
    with pytest.raises(sl.ServiceUnavailableError, match="SKYDECK_TAP_URL"):
        sl.get_tap_service()


def test_tap_down(no_platform, monkeypatch):
    monkeypatch.setenv("SKYDECK_TAP_URL", f"http://127.0.0.1:{_closed_port()}/services/tap/")
    with pytest.raises(sl.ServiceUnavailableError, match="does not answer"):
        sl.get_tap_service()


def test_gateway_down(release, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/services/dask-gateway/"
    monkeypatch.setenv("SKYDECK_GATEWAY_URL", url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-a-real-token")
    with pytest.raises(sl.ServiceUnavailableError, match=r"does not answer.*use-gateway"):
        sl.get_dask_client(1)


def test_local_cluster_limited_by_the_lab_cpu(release, monkeypatch):
    monkeypatch.setenv("CPU_LIMIT", "1")
    with pytest.raises(sl.LimitReachedError, match="1 CPU core"):
        sl.get_dask_client(2)


def test_local_cluster_fallback_crossmatches(release, monkeypatch):
    monkeypatch.setenv("CPU_LIMIT", "2")
    monkeypatch.setenv("MEM_LIMIT", str(2 * 2**30))
    with pytest.warns(sl.LocalClusterWarning, match="no dask-gateway"):
        client = sl.get_dask_client(2)
    try:
        workers = client.scheduler_info()["workers"].values()
        assert len(workers) == 2
        assert all(w["nthreads"] == 1 for w in workers)
        # 80 % of the lab's memory shared by the two workers.
        assert all(abs(w["memory_limit"] - 0.4 * 2 * 2**30) < 2**20 for w in workers)
        objects, stars = sl.open_catalog("Object"), sl.open_catalog("gaia_dr3")
        matched = objects.crossmatch(stars, radius_arcsec=1.0, n_neighbors=1).compute()
    finally:
        assert sl.shutdown_dask_clusters() == 1
    left = read_hats_table(primary_catalog_dir(release / "hats" / "Object"))
    right = read_hats_table(primary_catalog_dir(release / "hats" / "gaia_dr3"))
    got = sorted(
        zip(
            matched["objectId_Object"].astype(int),
            matched["source_id_gaia_dr3"].astype(int),
            strict=True,
        )
    )
    assert got == nearest_pairs(left, right, 1.0)
    assert len(got) >= 400  # every planted star is found
