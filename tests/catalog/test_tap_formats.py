"""The vectorised BINARY2 writer, read back by astropy: every type, NULLs, text, arrays."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from astropy.io.votable import parse

from skydeck.catalog.tap._formats import error_votable, votable
from skydeck.catalog.tap._schema import ColumnInfo


def test_binary2_round_trip_with_nulls():
    table = pa.table({
        "b": pa.array([True, None, False]),
        "s": pa.array([1, None, -3], pa.int16()),
        "i": pa.array([None, 2, 3], pa.int32()),
        "l": pa.array([2**40, None, -1], pa.int64()),
        "f": pa.array([1.5, None, np.nan], pa.float32()),
        "d": pa.array([None, 2.25, -1e300]),
        "t": pa.array(["abc", None, ""]),
        "u": pa.array(["é", "ok", None]),
        "p": pa.array([[1.0, 2.0], None, [3.0, 4.0, 5.0]], pa.list_(pa.float64())),
        "big": pa.array([1, 2, 3], pa.decimal128(38, 0)),
    })  # fmt: skip
    columns = [
        ColumnInfo("b", "boolean"), ColumnInfo("s", "short"), ColumnInfo("i", "int"),
        ColumnInfo("l", "long", unit="s", ucd="meta.id"), ColumnInfo("f", "float"),
        ColumnInfo("d", "double", description="a <double> & more"),
        ColumnInfo("t", "char", arraysize="*"), ColumnInfo("u", "char", arraysize="*"),
        ColumnInfo("p", "double", arraysize="*", xtype="point"), ColumnInfo("big", "long"),
    ]  # fmt: skip
    document = votable(table, columns, overflow=True, infos=[("QUERY", "SELECT 'x' < 1")])
    parsed = parse(io.BytesIO(document))
    result = parsed.get_first_table()
    data = result.array
    assert list(data["b"].mask) == [False, True, False]
    assert list(data["b"].data[[0, 2]]) == [True, False]
    assert data["s"][0] == 1 and data["s"].mask[1] and data["s"][2] == -3
    assert data["i"].mask[0] and list(data["i"][1:]) == [2, 3]
    assert data["l"][0] == 2**40 and data["l"].mask[1]
    assert data["f"][0] == 1.5 and data["f"].mask[1]
    assert data["d"].mask[0] and data["d"][1] == 2.25
    assert data["t"][0] == "abc" and data["t"][2] == ""
    assert data["u"][0] == "é" and data["u"][1] == "ok"
    assert list(data["p"][0]) == [1.0, 2.0] and list(data["p"][2]) == [3.0, 4.0, 5.0]
    assert list(data["big"]) == [1, 2, 3]
    fields = {f.name: f for f in result.fields}
    assert fields["u"].datatype == "unicodeChar"
    assert fields["p"].xtype == "point"
    assert fields["l"].unit == "s" and fields["l"].ucd == "meta.id"
    assert fields["d"].description == "a <double> & more"
    infos = [(i.name, i.value) for i in parsed.resources[0].infos]
    assert ("QUERY", "SELECT 'x' < 1") in infos
    assert ("QUERY_STATUS", "OVERFLOW") in infos


def test_empty_result_and_error_document():
    table = pa.table({"x": pa.array([], pa.float64())})
    parsed = parse(io.BytesIO(votable(table, [ColumnInfo("x", "double")])))
    assert len(parsed.get_first_table().array) == 0
    error = parse(io.BytesIO(error_votable("bad <query> & worse")))
    info = parsed_info = error.resources[0].infos[0]
    assert (info.name, info.value, parsed_info.content) == (
        "QUERY_STATUS",
        "ERROR",
        "bad <query> & worse",
    )
