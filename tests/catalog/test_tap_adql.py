"""ADQL features of the TAP engine against brute-force numpy/astropy over the same rows."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from skydeck.catalog.tap._adql import AdqlError
from skydeck.catalog.tap._engine import Engine

OBJ = "dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def engine(tap_release):
    return Engine(tap_release.layout, threads=2)


@pytest.fixture(scope="module")
def objects(tap_release):
    return tap_release.objects


def run(engine: Engine, adql: str) -> pd.DataFrame:
    return engine.execute(adql).table.to_pandas()


def ids(engine: Engine, adql: str) -> set[int]:
    return set(run(engine, adql)["objectId"].tolist())


def within(df: pd.DataFrame, ra: float, dec: float, radius: float) -> set[int]:
    points = SkyCoord(df["coord_ra"].to_numpy() * u.deg, df["coord_dec"].to_numpy() * u.deg)
    sep = points.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    return set(df["objectId"][sep <= radius].tolist())


def unit(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def in_convex_polygon(df: pd.DataFrame, vertices: list[tuple[float, float]]) -> set[int]:
    v = unit(np.array([p[0] for p in vertices]), np.array([p[1] for p in vertices]))
    normals = np.cross(v, np.roll(v, -1, axis=0))
    centre = v.sum(axis=0)
    normals *= np.sign(normals @ centre)[:, None]  # orient every edge towards the inside
    p = unit(df["coord_ra"].to_numpy(), df["coord_dec"].to_numpy())
    inside = np.all(p @ normals.T >= 0, axis=1)
    return set(df["objectId"][inside].tolist())


CONES = [
    pytest.param(62.0, -37.0, 0.5, id="dp02-field"),
    pytest.param(0.5, 0.0, 2.0, id="across-ra-0"),
    pytest.param(359.7, 1.0, 1.5, id="across-ra-360"),
    pytest.param(123.0, 89.0, 3.0, id="north-pole"),
    pytest.param(10.0, -90.0, 4.0, id="south-pole"),
    pytest.param(200.0, 45.0, 1e-4, id="empty"),
]


@pytest.mark.parametrize(("ra", "dec", "radius"), CONES)
def test_cone_forms_match_brute_force(engine, objects, ra, dec, radius):
    expected = within(objects, ra, dec, radius)
    if radius >= 1e-3:
        assert expected, "the synthetic rows should put objects in this cone"
    circle = f"CIRCLE('ICRS', {ra}, {dec}, {radius})"
    point = "POINT('ICRS', coord_ra, coord_dec)"
    forms = [
        f"SELECT objectId FROM {OBJ} WHERE 1 = CONTAINS({point}, {circle})",
        f"SELECT objectId FROM {OBJ} WHERE CONTAINS({point}, {circle}) = 1",
        f"SELECT objectId FROM {OBJ} WHERE INTERSECTS({circle}, {point}) = 1",
        f"SELECT objectId FROM {OBJ} WHERE "
        f"DISTANCE({point}, POINT('ICRS', {ra}, {dec})) <= {radius}",
        f"SELECT objectId FROM {OBJ} WHERE scisql_s2PtInCircle(coord_ra, coord_dec, {ra}, {dec}, "
        f"{radius}) = 1",
    ]
    for adql in forms:
        assert ids(engine, adql) == expected, adql


def test_cone_prunes_partitions_before_reading(engine):
    result = engine.execute(
        f"SELECT COUNT(*) AS n FROM {OBJ} WHERE "
        "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 0.2)) = 1"
    )
    read, total = result.translation.pruning[OBJ]
    assert total > 10
    assert 1 <= read < total / 4
    # the same query without a usable spatial constraint reads everything
    full = engine.execute(f"SELECT COUNT(*) FROM {OBJ} WHERE coord_dec < -36")
    assert full.translation.pruning[OBJ] == (total, total)


def test_box_across_ra_zero(engine, objects):
    ra0, dec0, width, height = 0.0, 0.0, 4.0, 3.0
    dra = (objects["coord_ra"] - ra0 + 180) % 360 - 180
    mask = (dra.abs() <= width / 2) & ((objects["coord_dec"] - dec0).abs() <= height / 2)
    expected = set(objects["objectId"][mask])
    assert len(expected) > 20
    got = ids(
        engine,
        f"SELECT objectId FROM {OBJ} WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
        f"BOX('ICRS', {ra0}, {dec0}, {width}, {height})) = 1",
    )
    assert got == expected


@pytest.mark.parametrize(
    "vertices",
    [
        pytest.param([(358.0, -3.0), (2.5, -3.0), (2.0, 3.0), (359.0, 2.0)], id="across-ra-0"),
        pytest.param([(60.0, -40.0), (65.0, -40.0), (64.0, -34.0)], id="triangle-field"),
        pytest.param([(0.0, 85.0), (120.0, 85.0), (240.0, 85.0)], id="around-north-pole"),
        pytest.param([(59.0, -36.0), (59.0, -38.0), (61.0, -38.0), (61.0, -36.0)], id="clockwise"),
    ],
)
def test_polygon_matches_brute_force(engine, objects, vertices):
    expected = in_convex_polygon(objects, vertices)
    assert expected
    coords = ", ".join(f"{ra}, {dec}" for ra, dec in vertices)
    got = ids(
        engine,
        f"SELECT objectId FROM {OBJ} WHERE "
        f"1 = CONTAINS(POINT('ICRS', coord_ra, coord_dec), POLYGON('ICRS', {coords}))",
    )
    assert got == expected


def test_coord_functions_and_point_values(engine, objects):
    df = run(
        engine,
        f"SELECT TOP 5 objectId, COORD1(POINT('ICRS', coord_ra, coord_dec)) AS c1, "
        f"COORD2(POINT('ICRS', coord_ra, coord_dec)) AS c2, "
        f"POINT('ICRS', coord_ra, coord_dec) AS pos FROM {OBJ} ORDER BY objectId",
    )
    truth = objects.sort_values("objectId").head(5)
    np.testing.assert_allclose(df["c1"], truth["coord_ra"])
    np.testing.assert_allclose(df["c2"], truth["coord_dec"])
    np.testing.assert_allclose(np.stack(df["pos"].to_numpy()), truth[["coord_ra", "coord_dec"]])


def test_distance_values(engine, objects):
    df = run(
        engine,
        f"SELECT objectId, DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', 0, 90)) "
        f"AS d FROM {OBJ} WHERE coord_dec > 80",
    )
    truth = objects.set_index("objectId").loc[df["objectId"]]
    np.testing.assert_allclose(df["d"], 90 - truth["coord_dec"], atol=1e-9)


def test_circle_intersects_circle(engine):
    inside = run(
        engine,
        "SELECT INTERSECTS(CIRCLE('ICRS', 0, 0, 1), CIRCLE('ICRS', 1.5, 0, 0.6)) AS a, "
        "INTERSECTS(CIRCLE('ICRS', 0, 0, 1), CIRCLE('ICRS', 359, 0, 0.1)) AS b, "
        "INTERSECTS(CIRCLE('ICRS', 0, 0, 1), CIRCLE('ICRS', 3, 0, 1)) AS c, "
        "CONTAINS(CIRCLE('ICRS', 0.1, 0, 0.2), CIRCLE('ICRS', 0, 0, 1)) AS d "
        "FROM TAP_SCHEMA.schemas WHERE schema_name = 'TAP_SCHEMA'",
    )
    assert inside.iloc[0].tolist() == [1, 1, 0, 1]


def test_nanojansky_magnitudes_and_nulls(engine, objects):
    df = run(
        engine,
        f"SELECT objectId, scisql_nanojanskyToAbMag(r_psfFlux) AS m, "
        f"scisql_nanojanskyToAbMagSigma(r_psfFlux, r_psfFluxErr) AS dm FROM {OBJ}",
    ).set_index("objectId")
    truth = objects.set_index("objectId").loc[df.index]
    flux = truth["r_psfFlux"].astype(float).to_numpy()
    valid = np.isfinite(flux) & (flux > 0)
    assert (~valid).sum() > 50  # NULL and negative fluxes are both present
    np.testing.assert_allclose(df["m"][valid], -2.5 * np.log10(flux[valid]) + 31.4)
    np.testing.assert_allclose(
        df["dm"][valid], 2.5 / np.log(10) * truth["r_psfFluxErr"][valid] / flux[valid]
    )
    assert df["m"][~valid].isna().all()


def test_null_handling(engine, objects):
    df = run(
        engine,
        f"SELECT COUNT(*) AS n, COUNT(r_psfFlux) AS n_r, AVG(r_psfFlux) AS mean_r FROM {OBJ}",
    )
    assert df["n"][0] == len(objects)
    assert df["n_r"][0] == objects["r_psfFlux"].notna().sum()
    assert df["mean_r"][0] == pytest.approx(objects["r_psfFlux"].astype(float).mean())
    nulls = run(engine, f"SELECT objectId FROM {OBJ} WHERE r_psfFlux IS NULL")
    assert set(nulls["objectId"]) == set(objects["objectId"][objects["r_psfFlux"].isna()])


def test_boolean_columns_compare_with_integers(engine, objects):
    for value, truth in ((1, True), (0, False)):
        n = run(engine, f"SELECT COUNT(*) AS n FROM {OBJ} WHERE detect_isPrimary = {value}")
        assert n["n"][0] == (objects["detect_isPrimary"] == truth).sum()


def test_identifiers_are_case_insensitive(engine, objects):
    df = run(engine, "select top 3 OBJECTID, Coord_Ra from DP02_DC2_CATALOGS.object order by 1")
    assert df.iloc[:, 0].tolist() == sorted(objects["objectId"])[:3]
    short = run(engine, "SELECT COUNT(*) AS n FROM Object")
    assert short["n"][0] == len(objects)


def test_join_object_forced_source(engine, tap_release):
    forced, objects = tap_release.forced, tap_release.objects
    df = run(
        engine,
        "SELECT o.objectId, f.forcedSourceId, f.psfFlux FROM dp02_dc2_catalogs.Object AS o "
        "JOIN dp02_dc2_catalogs.ForcedSource AS f ON o.objectId = f.objectId "
        "WHERE o.detect_isPrimary = 1",
    )
    truth = objects[objects["detect_isPrimary"]].merge(forced, on="objectId")
    assert set(df["forcedSourceId"]) == set(truth["forcedSourceId"])
    left = run(
        engine,
        "SELECT COUNT(*) AS n, COUNT(f.forcedSourceId) AS nf FROM dp02_dc2_catalogs.Object o "
        "LEFT OUTER JOIN dp02_dc2_catalogs.ForcedSource f ON o.objectId = f.objectId",
    )
    merged = objects.merge(forced, on="objectId", how="left")
    assert left["n"][0] == len(merged)
    assert left["nf"][0] == merged["forcedSourceId"].notna().sum()


def test_positional_crossmatch_with_distance(engine, tap_release):
    objects, gaia = tap_release.objects, tap_release.gaia
    radius = 1.0 / 3600
    df = run(
        engine,
        "SELECT o.objectId, g.source_id FROM dp02_dc2_catalogs.Object AS o, "
        "gaia_dr3.gaia_source AS g WHERE DISTANCE(POINT('ICRS', o.coord_ra, o.coord_dec), "
        f"POINT('ICRS', g.ra, g.dec)) < {radius}",
    )
    c_obj = SkyCoord(
        objects["coord_ra"].to_numpy() * u.deg, objects["coord_dec"].to_numpy() * u.deg
    )
    c_gaia = SkyCoord(gaia["ra"].to_numpy() * u.deg, gaia["dec"].to_numpy() * u.deg)
    i_gaia, i_obj, _, _ = search_around_sky(c_gaia, c_obj, radius * u.deg)
    truth = set(
        zip(
            objects["objectId"].to_numpy()[i_obj], gaia["source_id"].to_numpy()[i_gaia], strict=True
        )
    )
    assert len(truth) >= 590
    assert set(zip(df["objectId"], df["source_id"], strict=True)) == truth


def test_grouping_ordering_and_sets(engine, tap_release):
    forced = tap_release.forced
    df = run(
        engine,
        "SELECT band, COUNT(*) AS n, AVG(psfFlux) AS mean FROM dp02_dc2_catalogs.ForcedSource "
        "GROUP BY band HAVING COUNT(*) > 10 ORDER BY band DESC",
    )
    truth = forced.groupby("band")["psfFlux"].agg(["count", "mean"]).sort_index(ascending=False)
    assert df["band"].tolist() == truth.index.tolist()
    assert df["n"].tolist() == truth["count"].tolist()
    np.testing.assert_allclose(df["mean"], truth["mean"])

    page = run(engine, "SELECT objectId FROM Object ORDER BY objectId OFFSET 10")
    assert page["objectId"].tolist() == sorted(tap_release.objects["objectId"])[10:]
    top = run(engine, "SELECT TOP 7 objectId FROM Object ORDER BY objectId DESC")
    assert top["objectId"].tolist() == sorted(tap_release.objects["objectId"], reverse=True)[:7]
    distinct = run(engine, "SELECT DISTINCT refBand FROM Object")
    assert set(distinct["refBand"]) == set(tap_release.objects["refBand"])
    union = run(
        engine,
        "SELECT objectId FROM Object WHERE coord_dec > 85 UNION "
        "SELECT objectId FROM Object WHERE coord_dec < -85",
    )
    objs = tap_release.objects
    assert set(union["objectId"]) == set(objs["objectId"][objs["coord_dec"].abs() > 85])
    sub = run(
        engine,
        "SELECT COUNT(*) AS n FROM Object WHERE objectId IN "
        "(SELECT objectId FROM ForcedSource WHERE band = 'g')",
    )
    assert sub["n"][0] == forced[forced["band"] == "g"]["objectId"].nunique()


def test_string_math_and_cast_functions(engine, objects):
    df = run(
        engine,
        "SELECT TOP 20 objectId, UPPER(refBand) AS up, LOWER(UPPER(refBand)) AS low, "
        "CAST(deblend_nChild AS DOUBLE PRECISION) / 2 AS half, COALESCE(r_psfFlux, -1) AS r, "
        "ROUND(coord_ra, 2) AS rr, FLOOR(coord_dec) AS fd, MOD(deblend_nChild, 2) AS m, "
        "SQRT(ABS(coord_dec)) AS s, POWER(2, deblend_nChild) AS p, LOG10(g_psfFlux) AS lg, "
        "DEGREES(RADIANS(coord_ra)) AS dr, TRUNCATE(coord_ra, 1) AS tr "
        "FROM Object ORDER BY objectId",
    ).set_index("objectId")
    t = objects.set_index("objectId").loc[df.index]
    assert (df["up"] == t["refBand"].str.upper()).all()
    assert (df["low"] == t["refBand"]).all()
    np.testing.assert_allclose(df["half"], t["deblend_nChild"] / 2)
    np.testing.assert_allclose(df["r"], t["r_psfFlux"].astype(float).fillna(-1))
    np.testing.assert_allclose(df["rr"], np.round(t["coord_ra"], 2))
    np.testing.assert_allclose(df["fd"], np.floor(t["coord_dec"]))
    np.testing.assert_allclose(df["m"], t["deblend_nChild"] % 2)
    np.testing.assert_allclose(df["s"], np.sqrt(np.abs(t["coord_dec"])))
    np.testing.assert_allclose(df["p"], 2.0 ** t["deblend_nChild"])
    np.testing.assert_allclose(df["lg"], np.log10(t["g_psfFlux"]))
    np.testing.assert_allclose(df["dr"], t["coord_ra"])
    np.testing.assert_allclose(df["tr"], np.trunc(t["coord_ra"] * 10) / 10)
    ilike = run(engine, "SELECT COUNT(*) AS n FROM Object WHERE refBand ILIKE 'G'")
    assert ilike["n"][0] == (objects["refBand"] == "g").sum()


def test_tap_schema_describes_the_felis_columns(engine, tap_release):
    df = run(
        engine,
        "SELECT column_name, datatype, unit, ucd FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'dp02_dc2_catalogs.Object' ORDER BY column_index",
    )
    assert set(df["column_name"]) == set(tap_release.objects.columns)
    coord = df.set_index("column_name").loc["coord_ra"]
    assert (coord["datatype"], coord["unit"], coord["ucd"]) == (
        "double",
        "deg",
        "pos.eq.ra;meta.main",
    )
    tables = set(run(engine, "SELECT table_name FROM TAP_SCHEMA.tables")["table_name"])
    assert {OBJ, "dp02_dc2_catalogs.ForcedSource", "gaia_dr3.gaia_source"} <= tables
    keys = run(engine, "SELECT from_table, target_table FROM TAP_SCHEMA.keys")
    assert ("dp02_dc2_catalogs.ForcedSource", OBJ) in set(
        zip(keys.from_table, keys.target_table, strict=True)
    )


def test_maxrec_overflow(engine):
    result = engine.execute("SELECT objectId FROM Object", maxrec=10)
    assert result.overflow and result.table.num_rows == 10
    exact = engine.execute("SELECT TOP 10 objectId FROM Object", maxrec=10)
    assert not exact.overflow and exact.table.num_rows == 10


@pytest.mark.parametrize(
    ("adql", "expected"),
    [
        ("SELECT objectId FROM\n  Object WHERE (", "line 2, column"),
        ("SELECT coord_raa FROM Object", "Did you mean coord_ra"),
        ("SELECT * FROM Objekt", "Did you mean Object"),
        ("SELECT * FROM dp02_dc2_catalogs.ForcedSorce", "ForcedSource"),
        ("DELETE FROM Object", "Only SELECT"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "is not a table"),
        ("SELECT read_text('/etc/passwd') FROM Object", "Unknown function"),
        ("SELECT * FROM TAP_UPLOAD.mine", "Nothing was uploaded"),
        (
            "SELECT * FROM Object WHERE "
            "CONTAINS(POINT('GALACTIC', 1, 2), CIRCLE('ICRS', 1, 2, 3)) = 1",
            "coordinate system",
        ),
    ],
)
def test_errors_say_what_to_do(engine, adql, expected):
    with pytest.raises(AdqlError) as info:
        engine.execute(adql)
    assert expected in info.value.message
