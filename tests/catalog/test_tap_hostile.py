"""TAP against a hostile user (issue 15, findings 3, 4, 5, 7 and 8): sandbox, limits, errors.

Engine-level tests run in process; the HTTP tests use a TAP server of their own with
small limits, so that they neither depend on nor disturb the shared ``tap_server``.
"""

from __future__ import annotations

import re

import pytest

from skydeck.catalog.tap._adql import AdqlError
from skydeck.catalog.tap._engine import Engine

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
