"""skydeck.lab in a real lab on the shared ``tiny_release`` (images, pipeline, TAP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.hats_check import cone_ids, primary_catalog_dir, read_hats_table
from support.hub import RunningHub
from support.lab import LabSession

pytestmark = pytest.mark.slow

USER = "lab-release"


@pytest.fixture(scope="module")
def session(release_hub: RunningHub) -> Iterator[LabSession]:
    url = release_hub.start_server(USER)
    lab = LabSession(url, release_hub.user_token(USER)).start()
    yield lab
    lab.shutdown()


@pytest.fixture(scope="module")
def objects(release_hub: RunningHub) -> Any:
    release = (release_hub.data_dir / "release").resolve()
    return read_hats_table(primary_catalog_dir(release / "hats" / "Object"))


def _json(session: LabSession, code: str) -> Any:
    out = session.execute(code, timeout=300)
    return json.loads(out["stdout"].strip().splitlines()[-1])


def test_butler_finds_the_deep_coadd_covering_an_object(session: LabSession, objects: Any):
    ra, dec = float(objects["coord_ra"].iloc[0]), float(objects["coord_dec"].iloc[0])
    found = _json(
        session,
        f"""
import json
from lsst.sphgeom import LonLat, UnitVector3d
from skydeck.lab import get_butler
butler = get_butler()
def covering(ra, dec):
    refs = butler.query_datasets(
        "deepCoadd", where=f"patch.region OVERLAPS POINT({{ra}}, {{dec}})", explain=False
    )
    out = []
    for ref in refs:
        patch = butler.registry.expandDataId(ref.dataId).records["patch"]
        inside = patch.region.contains(UnitVector3d(LonLat.fromDegrees(ra, dec)))
        out.append([ref.dataId["band"], ref.dataId["tract"], ref.dataId["patch"], inside])
    return out
print(json.dumps({{"here": covering({ra}, {dec}), "far": covering({ra} + 180, {-dec})}}))
""",
    )
    assert found["here"], "no deepCoadd covers an Object position"
    assert all(inside for *_, inside in found["here"])
    assert len({(tract, patch) for _, tract, patch, _ in found["here"]}) >= 1
    assert found["far"] == []


def test_cone_search_on_the_release_equals_brute_force(session: LabSession, objects: Any):
    ra = float(np.median(objects["coord_ra"]))
    dec = float(np.median(objects["coord_dec"]))
    radius = 40.0
    found = _json(
        session,
        "import json\nfrom skydeck.lab import open_catalog\n"
        f"rows = open_catalog('Object').cone_search(ra={ra}, dec={dec}, radius_arcsec={radius})"
        ".compute()\nprint(json.dumps(sorted(int(i) for i in rows['objectId'])))",
    )
    expected = cone_ids(objects, ra, dec, radius)
    assert 0 < len(expected) < len(objects)
    assert found == expected


def test_tap_service_runs_a_query(session: LabSession, objects: Any, release_hub: RunningHub):
    manifest = json.loads((release_hub.data_dir / "release" / "manifest.json").read_text())
    schema = Path(manifest["catalogs"]["Object"]["schema"]).stem  # the felis schema name
    found = _json(
        session,
        f"""
import json
from skydeck.lab import get_tap_service
tap = get_tap_service()
table = tap.search("SELECT objectId FROM {schema}.Object").to_table()
print(json.dumps(sorted(int(i) for i in table["objectId"])))
""",
    )
    assert found == sorted(int(i) for i in objects["objectId"])


def test_list_catalogs_matches_the_manifest(session: LabSession, release_hub: RunningHub):
    manifest = json.loads((release_hub.data_dir / "release" / "manifest.json").read_text())
    found = _json(
        session,
        "import json\nfrom skydeck.lab import list_catalogs\n"
        "print(json.dumps({k: int(v) for k, v in list_catalogs()['rows'].items()}))",
    )
    assert found == {name: info["rows"] for name, info in manifest["catalogs"].items()}


def test_data_dir_release_is_the_tiny_release(release_hub: RunningHub):
    assert Path(release_hub.data_dir / "release" / "butler" / "butler.yaml").exists()
