"""TAP over the real release build (``tiny_release``): discovery from the manifest and felis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from skydeck.catalog.tap._engine import Engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tiny_release):
    return Engine(tiny_release, threads=2)


def hats_rows(layout, name: str) -> pd.DataFrame:
    root = Path(str(layout.catalog_path(name))) / "dataset"
    return pd.concat(pq.read_table(p).to_pandas() for p in sorted(root.rglob("*.parquet")))


def test_every_manifest_catalog_is_published(engine, tiny_release):
    tables = set(
        engine.execute("SELECT table_name FROM TAP_SCHEMA.tables").table["table_name"].to_pylist()
    )
    for entry in tiny_release.catalogs():
        count = engine.execute(f"SELECT COUNT(*) AS n FROM {entry.name}").table["n"][0].as_py()
        assert count == entry.rows, entry.name
        assert any(t.endswith("." + str(entry.extra.get("table", entry.name))) for t in tables)
    assert "dp02_dc2_catalogs.Object" in tables
    # the felis name of the schema is still understood
    assert engine.execute("SELECT TOP 1 * FROM dp02_skydeck.Object").table.num_rows == 1


def test_cone_on_the_release_object_table(engine, tiny_release):
    objects = hats_rows(tiny_release, "Object")
    ra0, dec0 = float(objects["coord_ra"].median()), float(objects["coord_dec"].median())
    radius = 0.05
    got = (
        engine.execute(
            "SELECT objectId FROM dp02_dc2_catalogs.Object WHERE "
            "CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
            f"CIRCLE('ICRS', {ra0}, {dec0}, {radius})) = 1"
        )
        .table["objectId"]
        .to_pylist()
    )
    coords = SkyCoord(
        objects["coord_ra"].to_numpy() * u.deg, objects["coord_dec"].to_numpy() * u.deg
    )
    inside = coords.separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg <= radius
    assert inside.sum() > 0
    assert sorted(got) == sorted(objects["objectId"][inside].tolist())


def test_units_and_ucds_come_from_felis(engine):
    columns = (
        engine.execute(
            "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
            "WHERE table_name = 'dp02_dc2_catalogs.Object'"
        )
        .table.to_pandas()
        .set_index("column_name")
    )
    assert columns.loc["coord_ra", "unit"] == "deg"
    assert columns.loc["coord_ra", "ucd"].startswith("pos.eq.ra")
    flux = [c for c in columns.index if c.endswith("_psfFlux")]
    assert flux and all(columns.loc[c, "unit"] == "nJy" for c in flux)
    assert np.all(columns.index.notna())
