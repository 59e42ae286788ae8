"""Result serialisation: VOTable (vectorised BINARY2, TABLEDATA), CSV, TSV, FITS, parquet.

The BINARY2 writer builds the whole data stream with numpy from the Arrow
buffers (no per-row Python), which is what keeps large results fast.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._schema import ColumnInfo


@dataclass(frozen=True)
class OutputFormat:
    """One RESPONSEFORMAT the service writes."""

    key: str
    mime: str
    aliases: tuple[str, ...]
    extension: str


VOTABLE_MIME = "application/x-votable+xml"
FORMATS = [
    OutputFormat("votable", VOTABLE_MIME, ("votable", "votable/b2", "votable/binary2",
                 "application/x-votable+xml;serialization=binary2", "text/xml",
                 "application/votable+xml"), "xml"),
    OutputFormat("votable-td", VOTABLE_MIME + ";serialization=tabledata",
                 ("votable/td", "votable/tabledata"), "xml"),
    OutputFormat("csv", "text/csv", ("csv", "text/csv;header=present"), "csv"),
    OutputFormat("tsv", "text/tab-separated-values", ("tsv", "text/tsv"), "tsv"),
    OutputFormat("fits", "application/fits", ("fits",), "fits"),
    OutputFormat("parquet", "application/vnd.apache.parquet",
                 ("parquet", "application/x-parquet"), "parquet"),
]  # fmt: skip


def find_format(name: str | None) -> OutputFormat:
    """The format named by RESPONSEFORMAT (MIME type or short name); VOTable by default."""
    if not name:
        return FORMATS[0]
    wanted = name.strip().lower().replace(" ", "")
    for fmt in FORMATS:
        if wanted == fmt.mime.lower() or wanted in fmt.aliases or wanted == fmt.key:
            return fmt
    known = ", ".join(sorted({f.key for f in FORMATS} | {f.mime for f in FORMATS}))
    raise ValueError(f"Unknown RESPONSEFORMAT '{name}'. Supported: {known}.")


_NUMPY = {
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
    "unsignedByte": "u1",
}


def _field(col: ColumnInfo) -> str:
    attrs = [f"name={quoteattr(col.name)}", f'datatype="{col.datatype}"']
    if col.arraysize:
        attrs.append(f'arraysize="{col.arraysize}"')
    for key, value in (
        ("xtype", col.xtype),
        ("unit", col.unit),
        ("ucd", col.ucd),
        ("utype", col.utype),
    ):
        if value:
            attrs.append(f"{key}={quoteattr(value)}")
    body = f"<DESCRIPTION>{escape(col.description)}</DESCRIPTION>" if col.description else ""
    return f"<FIELD {' '.join(attrs)}>{body}</FIELD>"


def _header(infos: list[tuple[str, str]]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
        '<RESOURCE type="results">',
    ]
    for name, value in infos:
        lines.append(f"<INFO name={quoteattr(name)} value={quoteattr(value)}/>")
    return "\n".join(lines) + "\n"


def error_votable(message: str) -> bytes:
    """A DALI error document."""
    return (
        _header([])
        + f'<INFO name="QUERY_STATUS" value="ERROR">{escape(message)}</INFO>\n'
        + "</RESOURCE>\n</VOTABLE>\n"
    ).encode()


def _fixed_bytes(
    array: pa.ChunkedArray | pa.Array, col: ColumnInfo
) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) uint8 big-endian bytes and the null mask of a fixed-width column."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if col.datatype == "boolean":
        values = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        out = np.where(values, ord("T"), ord("F")).astype(np.uint8)
        out[nulls] = ord("?")
        return out.reshape(-1, 1), nulls
    dtype = np.dtype(_NUMPY[col.datatype])
    if dtype.kind == "f":
        values = array.to_numpy(zero_copy_only=False).astype(dtype)
        if nulls.any():
            values[nulls] = np.nan
    else:
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype)
    return values.view(np.uint8).reshape(len(values), dtype.itemsize), nulls


def _variable_bytes(
    array: pa.ChunkedArray | pa.Array, col: ColumnInfo
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(counts, flat payload bytes, null mask, element size) of a variable-length column."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        dtype = np.dtype(_NUMPY.get(col.datatype, ">f8"))
        counts = np.asarray(pc.fill_null(pc.list_value_length(array), 0), dtype=np.int64)
        flat = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype(dtype)
        return counts, flat.view(np.uint8), nulls, dtype.itemsize
    if col.datatype == "unicodeChar":
        texts = [("" if v is None else v).encode("utf-16-be") for v in array.to_pylist()]
        counts = np.array([len(t) // 2 for t in texts], dtype=np.int64)
        return counts, np.frombuffer(b"".join(texts), dtype=np.uint8), nulls, 2
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    array = array.fill_null("")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
    counts = np.diff(offsets).astype(np.int64)
    payload = data[offsets[0] : offsets[-1]] if len(offsets) else data[:0]
    return counts, payload, nulls, 1


def _binary2(table: pa.Table, columns: list[ColumnInfo]) -> bytes:
    n = table.num_rows
    ncols = len(columns)
    if n == 0:
        return b""
    flag_width = (ncols + 7) // 8
    null_matrix = np.zeros((n, flag_width * 8), dtype=bool)
    # segments of each row, in order: fixed-width blocks (n, width) and variable columns
    blocks: list[list[np.ndarray]] = [[]]
    variables: list[tuple[np.ndarray, np.ndarray, int]] = []
    for i, (col, array) in enumerate(zip(columns, table.columns, strict=True)):
        if col.arraysize and col.datatype != "boolean":
            counts, payload, nulls, size = _variable_bytes(array, col)
            variables.append((counts, payload, size))
            blocks.append([])
        else:
            fixed, nulls = _fixed_bytes(array, col)
            blocks[-1].append(fixed)
        null_matrix[:, i] = nulls
    blocks[0].insert(0, np.packbits(null_matrix, axis=1))  # MSB first, as BINARY2 wants
    joined = [np.concatenate(b, axis=1) if b else np.zeros((n, 0), np.uint8) for b in blocks]
    if not variables:  # every row has the same layout: one contiguous copy
        return np.ascontiguousarray(joined[0]).tobytes()
    row_size = np.zeros(n, dtype=np.int64)
    for block in joined:
        row_size += block.shape[1]
    for counts, _, size in variables:
        row_size += 4 + counts * size
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(row_size[:-1], out=starts[1:])
    out = np.zeros(int(row_size.sum()), dtype=np.uint8)
    cursor = starts.copy()
    step = 65536  # rows per scatter, so index arrays stay small

    def scatter(block: np.ndarray) -> None:
        width = block.shape[1]
        if width == 0:
            return
        offsets = np.arange(width)
        for lo in range(0, n, step):
            out[cursor[lo : lo + step, None] + offsets] = block[lo : lo + step]

    for index, block in enumerate(joined):
        scatter(block)
        cursor += block.shape[1]
        if index == len(variables):
            break
        counts, payload, size = variables[index]
        scatter(counts.astype(">u4").view(np.uint8).reshape(n, 4))
        nbytes = counts * size
        total = int(nbytes.sum())
        if total:
            row_of_byte = np.repeat(np.arange(n), nbytes)
            first_byte = np.zeros(n, dtype=np.int64)
            np.cumsum(nbytes[:-1], out=first_byte[1:])
            within = np.arange(total) - first_byte[row_of_byte]
            out[cursor[row_of_byte] + 4 + within] = payload[:total]
        cursor += 4 + nbytes
    return out.tobytes()


def prepare(table: pa.Table, columns: list[ColumnInfo]) -> tuple[pa.Table, list[ColumnInfo]]:
    """Normalise Arrow types VOTable lacks (decimals, timestamps, non-ASCII text)."""
    arrays = []
    described = []
    for col, array in zip(columns, table.columns, strict=True):
        t = array.type
        if pa.types.is_decimal(t):
            array = pc.cast(
                array, pa.int64() if t.scale == 0 and t.precision <= 18 else pa.float64()
            )
            if col.datatype not in {"long", "double"}:
                col = ColumnInfo(
                    **{**col.__dict__, "datatype": "long" if t.scale == 0 else "double"}
                )
        elif pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
            array = pc.cast(array, pa.string())
            col = ColumnInfo(**{**col.__dict__, "datatype": "char", "arraysize": "*",
                                "xtype": col.xtype or "timestamp"})  # fmt: skip
        elif pa.types.is_large_string(t):
            array = pc.cast(array, pa.string())
        if col.datatype in {"char", "unicodeChar"} and not (col.arraysize or "").endswith("*"):
            # fixed-size text would need padding; a bounded variable size says the same
            col = ColumnInfo(**{**col.__dict__, "arraysize": f"{col.arraysize or ''}*"})
        if (
            pa.types.is_string(array.type)
            and pc.any(pc.invert(pc.string_is_ascii(array.fill_null("")))).as_py()
        ):
            col = ColumnInfo(**{**col.__dict__, "datatype": "unicodeChar", "arraysize": "*"})
        arrays.append(array)
        described.append(col)
    return pa.table(arrays, names=table.column_names), described


def votable(
    table: pa.Table,
    columns: list[ColumnInfo],
    *,
    overflow: bool = False,
    infos: list[tuple[str, str]] | None = None,
) -> bytes:
    """A TAP result as VOTable 1.4 with BINARY2 serialisation."""
    table, columns = prepare(table, columns)
    head = _header([("QUERY_STATUS", "OK"), *(infos or [])])
    fields = "\n".join(_field(c) for c in columns)
    stream = base64.b64encode(_binary2(table, columns))
    tail = "</STREAM></BINARY2></DATA>\n</TABLE>\n"
    if overflow:
        tail += '<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n'
    tail += "</RESOURCE>\n</VOTABLE>\n"
    return b"".join(  # one copy of the (possibly 100 MB) stream, not one per +
        [
            head.encode(),
            b"<TABLE>\n",
            fields.encode(),
            b'\n<DATA><BINARY2><STREAM encoding="base64">',
            stream,
            tail.encode(),
        ]
    )


def _astropy_table(document: bytes):  # type: ignore[no-untyped-def]
    from astropy.io.votable import parse

    return parse(io.BytesIO(document))


def serialise(
    fmt: OutputFormat,
    table: pa.Table,
    columns: list[ColumnInfo],
    *,
    overflow: bool = False,
    infos: list[tuple[str, str]] | None = None,
) -> bytes:
    """The result in ``fmt``."""
    if fmt.key == "votable":
        return votable(table, columns, overflow=overflow, infos=infos)
    if fmt.key == "votable-td":
        doc = _astropy_table(votable(table, columns, overflow=overflow, infos=infos))
        for resource in doc.resources:
            for t in resource.tables:
                t.format = "tabledata"
        buffer = io.BytesIO()
        doc.to_xml(buffer)
        return buffer.getvalue()
    if fmt.key == "fits":
        doc = _astropy_table(votable(table, columns, overflow=overflow))
        astropy_table = doc.get_first_table().to_table(use_names_over_ids=True)
        for name in astropy_table.colnames:
            if astropy_table[name].dtype.kind == "O":
                astropy_table[name] = astropy_table[name].astype(str)
        buffer = io.BytesIO()
        astropy_table.write(buffer, format="fits")
        return buffer.getvalue()
    table, columns = prepare(table, columns)
    if fmt.key == "parquet":
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()
    import pyarrow.csv as pacsv

    flat = pa.table(
        [
            pc.binary_join(pc.cast(a, pa.list_(pa.string())), " ")
            if pa.types.is_list(a.type)
            else a
            for a in table.columns
        ],
        names=table.column_names,
    )
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(
        delimiter="\t" if fmt.key == "tsv" else ",",
        quoting_style="needed" if fmt.key == "csv" else "none",
    )
    pacsv.write_csv(flat, buffer, write_options=options)
    return buffer.getvalue()
