"""Execution: DuckDB over the HATS parquet files, TAP_SCHEMA in memory, uploads per query."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from skydeck.catalog.release import ReleaseLayout

from ._adql import AdqlError, ResolvedTable, Translation, Translator, closest
from ._catalogs import DEFAULT_SCHEMA_NAMES, HatsPartition, HatsTable, load_tables
from ._fanout import FanOut, FanOutPlan
from ._geometry import SQL_MACROS, Cone, cone_pixels, polygon_udf
from ._schema import ColumnInfo, ForeignKey, SchemaInfo, TableInfo, adql_name

log = logging.getLogger(__name__)

TAP_SCHEMA = "TAP_SCHEMA"


def _c(name: str, datatype: str, description: str, arraysize: str | None = None) -> ColumnInfo:
    return ColumnInfo(
        name=name,
        datatype=datatype,
        arraysize=arraysize,
        description=description,
        principal=1,
        std=1,
    )


def _tap_schema_tables() -> list[TableInfo]:
    """TAP_SCHEMA's own description (TAP 1.1 section 4)."""
    s = "*"
    specs: list[tuple[str, str, list[ColumnInfo]]] = [
        (
            "schemas",
            "The schemas published by this service.",
            [
                _c("schema_name", "char", "schema name, for reference", s),
                _c("utype", "char", "utype of the schema", s),
                _c("description", "char", "description of the schema", s),
                _c("schema_index", "int", "recommended sort order when listing schemas"),
            ],
        ),
        (
            "tables",
            "The tables published by this service.",
            [
                _c("schema_name", "char", "the schema this table belongs to", s),
                _c("table_name", "char", "the fully qualified table name", s),
                _c("table_type", "char", "one of: table, view", s),
                _c("utype", "char", "utype of the table", s),
                _c("description", "char", "description of the table", s),
                _c("table_index", "int", "recommended sort order when listing tables"),
            ],
        ),
        (
            "columns",
            "The columns of the published tables.",
            [
                _c("table_name", "char", "the table this column belongs to", s),
                _c("column_name", "char", "the column name", s),
                _c("datatype", "char", "ADQL datatype as in section 2.5", s),
                _c("arraysize", "char", "array size (VOTable syntax)", s),
                _c("xtype", "char", "a DALI or custom extended type annotation", s),
                _c("size", "int", "deprecated: use arraysize"),
                _c("description", "char", "description of the column", s),
                _c("utype", "char", "utype of the column", s),
                _c("unit", "char", "unit in VO standard format", s),
                _c("ucd", "char", "UCD of the column", s),
                _c("indexed", "int", "an indexed column; 1 means true, 0 false"),
                _c("principal", "int", "a principal column; 1 means true, 0 false"),
                _c("std", "int", "a standard column; 1 means true, 0 false"),
                _c("column_index", "int", "recommended sort order when listing columns"),
            ],
        ),
        (
            "keys",
            "Foreign keys between the published tables.",
            [
                _c("key_id", "char", "unique key identifier", s),
                _c("from_table", "char", "fully qualified table name", s),
                _c("target_table", "char", "fully qualified table name", s),
                _c("description", "char", "description of this key", s),
                _c("utype", "char", "utype of this key", s),
            ],
        ),
        (
            "key_columns",
            "The columns of the foreign keys.",
            [
                _c("key_id", "char", "key identifier from TAP_SCHEMA.keys", s),
                _c("from_column", "char", "key column name in the from_table", s),
                _c("target_column", "char", "key column name in the target_table", s),
            ],
        ),
    ]
    links = [
        ("tables", "schemas", "schema_name", "schema_name"),
        ("columns", "tables", "table_name", "table_name"),
        ("keys", "tables", "from_table", "table_name"),
        ("keys", "tables", "target_table", "table_name"),
        ("key_columns", "keys", "key_id", "key_id"),
    ]
    tables = []
    for index, (name, description, columns) in enumerate(specs):
        for position, col in enumerate(columns):
            col.column_index = position
        tables.append(
            TableInfo(
                schema=TAP_SCHEMA,
                short_name=name,
                description=description,
                columns=columns,
                table_index=100000 + index,
                keys=[
                    ForeignKey(
                        key_id=f"TAP_SCHEMA.{src}.{f}",
                        from_table=f"{TAP_SCHEMA}.{src}",
                        target_table=f"{TAP_SCHEMA}.{dst}",
                        from_columns=[f],
                        target_columns=[t],
                        description=f"{src}.{f} refers to {dst}.{t}",
                    )
                    for src, dst, f, t in links
                    if src == name
                ],
            )
        )
    return tables


_DUCK_TYPES = {
    "boolean": "BOOLEAN",
    "short": "SMALLINT",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "char": "VARCHAR",
}


@dataclass
class QueryResult:
    """The rows of a query and what is known about each column."""

    table: pa.Table
    columns: list[ColumnInfo]
    overflow: bool
    translation: Translation
    elapsed: float = 0.0
    info: dict[str, str] = field(default_factory=dict)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Engine:
    """Owns the DuckDB database: views over the release, TAP_SCHEMA, query execution."""

    def __init__(
        self,
        layout: ReleaseLayout,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        query_memory_limit: str | None = None,
        temp_directory: Path | None = None,
        max_temp_size: str | None = None,
        schema_names: dict[str, str] | None = None,
    ) -> None:
        self.layout = layout
        #: memory of one query's intermediates (sorts, hash tables) unless a caller says less
        self.query_memory_limit = query_memory_limit
        renames = DEFAULT_SCHEMA_NAMES if schema_names is None else schema_names
        #: felis schema names still accepted in queries, lower case -> published name
        self.schema_aliases = {old.lower(): new for old, new in renames.items()}
        schemas, tables = load_tables(layout, renames)
        self.tap_schema = SchemaInfo(
            name=TAP_SCHEMA,
            description="Description of the schemas, tables and columns this service publishes.",
            tables=_tap_schema_tables(),
            schema_index=100000,
        )
        self.schemas: list[SchemaInfo] = [*schemas, self.tap_schema]
        self.tables: dict[str, HatsTable] = {t.info.name.lower(): t for t in tables}
        self.fanout: FanOut | None = None  # set by the factory when a Dask cluster is configured
        self._tables_in_release = tables
        self._threads = threads
        self._temp_directory = temp_directory
        self._max_temp_size = max_temp_size
        if temp_directory is not None:  # spilled intermediates, bounded, in the service's data
            temp_directory.mkdir(parents=True, exist_ok=True)
        self.query_memory_limit = query_memory_limit or memory_limit
        self._databases = _Databases(self._open, parse_size(memory_limit) if memory_limit else None)
        self._databases.warm(self.query_memory_limit)  # a broken release fails here, not later

    def _open(self, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        """A DuckDB database for one query at a time: views over the release, sandboxed."""
        db = duckdb.connect(":memory:")
        if self.layout.root.protocol not in ("", "file", "local"):
            # An object-store release (s3://...) is read through its fsspec filesystem (s3fs,
            # configured by AWS_ENDPOINT_URL & co.), not DuckDB's httpfs extension, which
            # would have to be downloaded at run time.
            db.register_filesystem(self.layout.root.fs)
        if self._threads:
            db.execute(f"SET threads = {int(self._threads)}")
        # parquet footers are read once, not on every query (files of a release never change
        # in place: a new release is published by renaming a whole directory)
        db.execute("SET parquet_metadata_cache = true")
        if memory_limit:  # DuckDB enforces memory per database: this one runs one query
            db.execute("SET memory_limit = ?", [memory_limit])
        if self._temp_directory is not None:
            db.execute("SET temp_directory = ?", [str(self._temp_directory)])
        if self._max_temp_size:
            db.execute("SET max_temp_directory_size = ?", [self._max_temp_size])
        for macro in SQL_MACROS:
            db.execute(macro)
        db.create_function(  # type: ignore[call-overload]
            "adql_in_polygon", polygon_udf, ["DOUBLE", "DOUBLE", "VARCHAR"], "BOOLEAN", type="arrow"
        )
        for table in self._tables_in_release:
            self._create_view(db, table)
        self._create_tap_schema(db)
        # From here on queries may read only the release files, nothing else on this host or
        # in the object store, wherever the release lives, and change no setting.
        db.execute("SET allowed_directories = ?", [_allowed_directories(self._tables_in_release)])
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
        return db

    # ----- setup -----------------------------------------------------------------------
    def _select_list(self, table: HatsTable) -> str:
        items = []
        for name, phys in table.physical.items():
            cast = table.casts.get(name)
            value = f"CAST({_q(phys)} AS {cast})" if cast else _q(phys)
            items.append(f"{value} AS {_q(name)}" if value != _q(name) else value)
        return ", ".join(items)

    def _source_sql(self, table: HatsTable, files: list[str], condition: str = "") -> str:
        if not files:
            files, where = table.files[:1], " WHERE false"
        else:
            where = f" WHERE {condition}" if condition else ""
        file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"SELECT {self._select_list(table)} FROM read_parquet([{file_list}]){where}"

    def _create_view(self, db: duckdb.DuckDBPyConnection, table: HatsTable) -> None:
        if not table.partitions:
            log.warning("table %s has no partitions; it is left out", table.info.name)
            return
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(table.info.schema)}")
        db.execute(
            f"CREATE VIEW {_q(table.info.schema)}.{_q(table.info.short_name)} AS "
            + self._source_sql(table, table.files)
        )

    def _create_tap_schema(self, db: duckdb.DuckDBPyConnection) -> None:
        db.execute(f"CREATE SCHEMA {TAP_SCHEMA}")
        for info in self.tap_schema.tables:
            cols = ", ".join(f"{_q(c.name)} {_DUCK_TYPES[c.datatype]}" for c in info.columns)
            db.execute(f"CREATE TABLE {TAP_SCHEMA}.{_q(info.short_name)} ({cols})")
        schema_rows, table_rows, column_rows, key_rows, key_column_rows = [], [], [], [], []
        for schema in self.schemas:
            schema_rows.append((schema.name, None, schema.description, schema.schema_index))
            for table in schema.tables:
                table_rows.append(
                    (schema.name, table.name, table.table_type, None, table.description,
                     table.table_index)
                )  # fmt: skip
                for col in table.columns:
                    column_rows.append(
                        (table.name, adql_name(col.name), col.datatype, col.arraysize, col.xtype,
                         _fixed_size(col.arraysize),
                         col.description, col.utype or None, col.unit or None, col.ucd or None,
                         col.indexed, col.principal, col.std, col.column_index)
                    )  # fmt: skip
                for key in table.keys:
                    key_rows.append(
                        (key.key_id, key.from_table, key.target_table, key.description or None,
                         None)
                    )  # fmt: skip
                    for f, t in zip(key.from_columns, key.target_columns, strict=False):
                        key_column_rows.append((key.key_id, f, t))
        for name, rows in (
            ("schemas", schema_rows),
            ("tables", table_rows),
            ("columns", column_rows),
            ("keys", key_rows),
            ("key_columns", key_column_rows),
        ):
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                db.executemany(f"INSERT INTO {TAP_SCHEMA}.{_q(name)} VALUES ({marks})", rows)

    # ----- resolution ------------------------------------------------------------------
    def all_tables(self) -> list[TableInfo]:
        return [t for s in self.schemas for t in s.tables]

    def resolve(self, schema: str | None, name: str, uploads: dict[str, pa.Table]) -> ResolvedTable:
        """The table a (schema, name) in a query refers to."""
        lowered = name.lower()
        if schema and schema.lower() in self.schema_aliases:
            schema = self.schema_aliases[schema.lower()]
        if schema and schema.lower() == "tap_upload":
            for upload, data in uploads.items():
                if upload.lower() == lowered:
                    return ResolvedTable(
                        "upload", f"TAP_UPLOAD.{upload}", None, f"__upload_{upload}",
                        list(data.column_names), obj=data,
                    )  # fmt: skip
            hint = closest(name, list(uploads))
            raise AdqlError(
                f"Unknown uploaded table TAP_UPLOAD.{name}. "
                + (f"Uploaded: {', '.join(uploads)}." if uploads else "Nothing was uploaded: "
                   "pass UPLOAD=name,param:field with the VOTable in that form field.")
                + (f" Did you mean {hint[0]}?" if hint else "")
            )  # fmt: skip
        wanted_schema = schema.lower() if schema else None
        candidates = [
            t
            for t in self.all_tables()
            if t.short_name.lower() == lowered
            and (wanted_schema is None or t.schema.lower() == wanted_schema)
        ]
        if len(candidates) > 1:
            raise AdqlError(
                f"Table name {name} is ambiguous: qualify it as one of "
                + ", ".join(t.name for t in candidates)
                + "."
            )
        if not candidates:
            full = f"{schema}.{name}" if schema else name
            known = [t.name for t in self.all_tables()]
            hint = closest(full, known) or closest(name, [t.short_name for t in self.all_tables()])
            raise AdqlError(
                f"Unknown table {full}."
                + (f" Did you mean {', '.join(hint)}?" if hint else "")
                + " The published tables are listed at /tables and in TAP_SCHEMA.tables."
            )
        info = candidates[0]
        if info.schema == TAP_SCHEMA:
            return ResolvedTable(
                "tap_schema", info.name, TAP_SCHEMA, info.short_name, [c.name for c in info.columns]
            )
        hats = self.tables[info.name.lower()]
        return ResolvedTable(
            "hats",
            info.name,
            info.schema,
            info.short_name,
            [c.name for c in info.columns],
            ra_column=hats.ra_column,
            dec_column=hats.dec_column,
            obj=hats,
        )

    def select_partitions(
        self, table: HatsTable, cones: list[Cone]
    ) -> tuple[list[HatsPartition], str]:
        """The partitions a query constrained to ``cones`` must read, and a row filter."""
        chosen = None
        conditions = []
        for cone in cones:
            pixels = cone_pixels(cone)
            if pixels is None:
                continue
            order, ipix = pixels
            touched = {(p.order, p.pixel) for p in table.touched(order, ipix)}
            chosen = touched if chosen is None else chosen & touched
            if table.healpix_column:
                # rows are sorted by the order-29 index, so ranges of it skip row groups
                conditions.append(_healpix_condition(_q(table.healpix_column), order, ipix))
        if chosen is None:
            return list(table.partitions), ""
        parts = [p for p in table.partitions if (p.order, p.pixel) in chosen]
        return parts, " AND ".join(conditions)

    def _pruned_source(self, table: HatsTable, cones: list[Cone]) -> tuple[str, int, int]:
        parts, condition = self.select_partitions(table, cones)
        sql = self._source_sql(table, [p.path for p in parts], condition)
        return "(" + sql + ")", len(parts), len(table.partitions)

    def source_sql(self, table: HatsTable, files: list[str], condition: str = "") -> str:
        """SELECT of the published columns of ``table`` from ``files`` (public for fan-out)."""
        return self._source_sql(table, files, condition)

    # ----- execution -------------------------------------------------------------------
    def translate(self, adql: str, uploads: dict[str, pa.Table] | None = None) -> Translation:
        uploads = uploads or {}
        translator = Translator(
            lambda schema, name: self.resolve(schema, name, uploads), self._pruned_source
        )
        return translator.translate(adql)

    def execute(
        self,
        adql: str,
        *,
        maxrec: int | None = None,
        uploads: dict[str, pa.Table] | None = None,
        timeout: float | None = None,
        on_cursor: Callable[[Callable[[], None]], None] | None = None,
        memory_limit: str | None = None,
    ) -> QueryResult:
        """Run one ADQL query; at most ``maxrec`` rows (``overflow`` set if there were more).

        ``memory_limit`` bounds the query's intermediates (default: the engine's per-query
        limit); a query that needs more is refused with `AdqlError`.
        """
        start = time.perf_counter()
        uploads = uploads or {}
        plan = self._fanout_plan(adql, uploads)
        if plan is not None and self.fanout is not None:
            translation = plan.translation
            try:
                table = self.fanout.run(plan)
            except duckdb.Error as error:
                raise self._explain(error, translation) from None
        else:
            translation = self.translate(adql, uploads)
            memory = memory_limit or self.query_memory_limit
            table = self._run_local(translation, maxrec, uploads, timeout, on_cursor, start, memory)
        info = {"fanout": str(len(plan.views))} if plan is not None else {}
        overflow = maxrec is not None and table.num_rows > maxrec
        if overflow and maxrec is not None:
            table = table.slice(0, maxrec)
        table = self._unique_names(table)
        columns = self._describe(table, translation)
        return QueryResult(
            table=table,
            columns=columns,
            overflow=overflow,
            translation=translation,
            elapsed=time.perf_counter() - start,
            info=info,
        )

    def _fanout_plan(self, adql: str, uploads: dict[str, pa.Table]) -> FanOutPlan | None:
        if self.fanout is None or uploads:
            return None
        try:
            return self.fanout.plan(adql, uploads)
        except AdqlError:
            raise
        except Exception:  # planning is an optimisation: the local path still answers
            log.exception("fan-out planning failed; running in process")
            return None

    def _run_local(
        self,
        translation: Translation,
        maxrec: int | None,
        uploads: dict[str, pa.Table],
        timeout: float | None,
        on_cursor: Callable[[Callable[[], None]], None] | None,
        start: float,
        memory_limit: str | None = None,
    ) -> pa.Table:
        sql = translation.sql
        if maxrec is not None:
            sql = f"SELECT * FROM ({sql}) AS adql_result LIMIT {int(maxrec) + 1}"
        with self._databases.use(memory_limit or self.query_memory_limit) as (db, limit):
            return self._run_on(db, limit, sql, translation, uploads, timeout, on_cursor, start)

    def _run_on(
        self,
        db: duckdb.DuckDBPyConnection,
        memory_limit: str | None,
        sql: str,
        translation: Translation,
        uploads: dict[str, pa.Table],
        timeout: float | None,
        on_cursor: Callable[[Callable[[], None]], None] | None,
        start: float,
    ) -> pa.Table:
        cursor = db.cursor()
        timer: threading.Timer | None = None
        try:
            for name, data in uploads.items():
                cursor.register(f"__upload_{name}", data)
            stopped = threading.Event()

            def interrupt() -> None:
                stopped.set()  # before the query started, interrupt() alone would be lost
                cursor.interrupt()

            if on_cursor is not None:
                on_cursor(interrupt)
            if stopped.is_set():
                raise AdqlError("The query was aborted.")
            if timeout:
                timer = threading.Timer(timeout, cursor.interrupt)
                timer.start()
            try:
                table: pa.Table = cursor.sql(sql).to_arrow_table()
            except duckdb.InterruptException:
                if timeout is None or time.perf_counter() - start < timeout:
                    raise AdqlError("The query was aborted.") from None
                raise AdqlError(
                    f"The query ran longer than its {timeout:g} s execution limit and was stopped. "
                    "Add a spatial constraint or a TOP, or run it as an async job with a longer "
                    "EXECUTIONDURATION."
                ) from None
            except duckdb.OutOfMemoryException:
                raise AdqlError(
                    "The query needs more memory than your limit of "
                    f"{memory_limit or 'this service'}: add a "
                    "constraint (a smaller region, a TOP, fewer columns, a join condition) or "
                    "split it into smaller queries."
                ) from None
            except duckdb.Error as error:
                raise self._explain(error, translation) from None
        finally:
            if timer is not None:
                timer.cancel()
            cursor.close()
        return table

    @staticmethod
    def _unique_names(table: pa.Table) -> pa.Table:
        seen: dict[str, int] = {}
        names = []
        for name in table.column_names:
            key = name.lower()
            if key in seen:
                seen[key] += 1
                name = f"{name}_{seen[key]}"
            else:
                seen[key] = 1
            names.append(name)
        return table.rename_columns(names) if names != table.column_names else table

    def _describe(self, table: pa.Table, translation: Translation) -> list[ColumnInfo]:
        known: dict[str, ColumnInfo] = {}
        for ref in translation.tables:
            info = None
            if ref.kind == "hats":
                info = self.tables[ref.name.lower()].info
            elif ref.kind == "tap_schema":
                info = next(t for t in self.tap_schema.tables if t.name == ref.name)
            elif ref.kind == "upload":
                for fld in ref.obj.schema:
                    fmeta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
                    known.setdefault(
                        fld.name.lower(),
                        ColumnInfo(
                            name=fld.name, datatype=fmeta.get("datatype", ""),
                            arraysize=fmeta.get("arraysize") or None,
                            xtype=fmeta.get("xtype") or None, unit=fmeta.get("unit", ""),
                            ucd=fmeta.get("ucd", ""),
                        ),
                    )  # fmt: skip
            if info is not None:
                for col in info.columns:
                    known.setdefault(col.name.strip('"').lower(), col)
        result = []
        for position, (name, column) in enumerate(
            zip(table.column_names, table.columns, strict=True)
        ):
            meta = known.get(name.lower())
            arrow_type = column.type
            if position in translation.xtypes:
                result.append(
                    ColumnInfo(name=name, datatype="double", arraysize="*",
                               xtype=translation.xtypes[position], unit="deg")
                )  # fmt: skip
            elif meta is not None and not meta.datatype:
                inferred = _infer(arrow_type)
                inferred["xtype"] = meta.xtype or inferred.get("xtype")
                result.append(
                    ColumnInfo(name=name, unit=meta.unit, ucd=meta.ucd, **inferred)  # type: ignore[arg-type]
                )
            elif meta is not None and _compatible(meta.datatype, arrow_type):
                result.append(
                    ColumnInfo(
                        name=name, datatype=meta.datatype, arraysize=meta.arraysize,
                        xtype=meta.xtype, description=meta.description, unit=meta.unit,
                        ucd=meta.ucd, utype=meta.utype,
                    )
                )  # fmt: skip
            else:
                result.append(ColumnInfo(name=name, **_infer(arrow_type)))  # type: ignore[arg-type]
        return result

    def _explain(self, error: duckdb.Error, translation: Translation) -> AdqlError:
        text = str(error)
        match = re.search(r'Referenced column "?([^"\s]+)"? not found', text)
        if match is None:
            match = re.search(r'column with name "?([^"\s]+)"? does not exist', text)
        if match is not None:
            missing = match.group(1)
            columns = sorted({c for t in translation.tables for c in t.columns})
            hint = closest(missing, columns)
            tables = ", ".join(t.name for t in translation.tables)
            return AdqlError(
                f"Unknown column {missing} in {tables}."
                + (f" Did you mean {', '.join(hint)}?" if hint else "")
                + " The columns are listed at /tables and in TAP_SCHEMA.columns."
            )
        return AdqlError(f"The query could not be executed: {_public_message(text)}")

    def pixel_cover(self, cone: Cone) -> tuple[int, np.ndarray] | None:
        return cone_pixels(cone)


def _healpix_condition(column: str, order: int, pixels: np.ndarray, most: int = 48) -> str:
    """SQL keeping rows whose order-29 HEALPix index lies under ``pixels`` (of ``order``).

    Coarsens the pixels until at most ``most`` index ranges remain, and adds the
    envelope first so that parquet statistics can skip row groups cheaply.
    """
    pixels = np.unique(np.asarray(pixels, dtype=np.int64))
    while True:
        shift = 2 * (29 - order)
        starts = pixels << shift
        ends = ((pixels + 1) << shift) - 1
        breaks = np.nonzero(starts[1:] > ends[:-1] + 1)[0]
        if len(breaks) + 1 <= most or order == 0:
            break
        pixels = np.unique(pixels >> 2)
        order -= 1
    lows = np.concatenate([starts[:1], starts[breaks + 1]])
    highs = np.concatenate([ends[breaks], ends[-1:]])
    ranges = " OR ".join(
        f"{column} BETWEEN {lo} AND {hi}" for lo, hi in zip(lows, highs, strict=True)
    )
    return f"({column} BETWEEN {lows[0]} AND {highs[-1]} AND ({ranges}))"


def parse_size(size: str) -> int | None:
    """'1GB', '512MiB', '2 GiB' -> bytes (None when not understood)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?)B?\s*", size, re.IGNORECASE)
    if match is None:
        return None
    number, prefix, binary = match.groups()
    power = "KMGT".find(prefix.upper()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


class _Databases:
    """DuckDB databases, each running one query at a time with its own memory limit.

    DuckDB enforces memory per database, so a query gets a database of its own (reused,
    not rebuilt, for later queries); together the running queries reserve at most
    ``budget`` bytes, the process's limit. A query that finds the budget taken waits a
    little, then is refused with a message.
    """

    def __init__(
        self,
        open_database: Callable[[str | None], duckdb.DuckDBPyConnection],
        budget: int | None,
        wait_seconds: float = 30.0,
        keep_idle: int = 4,
    ) -> None:
        self._open = open_database
        self._budget = budget
        self._wait = wait_seconds
        self._keep = keep_idle
        self._idle: dict[str | None, list[duckdb.DuckDBPyConnection]] = {}
        self._reserved = 0
        self._cond = threading.Condition()

    def warm(self, limit: str | None) -> None:
        with self.use(limit):
            pass

    @contextlib.contextmanager
    def use(self, limit: str | None) -> Iterator[tuple[duckdb.DuckDBPyConnection, str | None]]:
        """A database for one query with at most ``limit`` memory (clamped to the budget)."""
        need = parse_size(limit) if limit else None
        if self._budget is not None and (need is None or need > self._budget):
            need, limit = self._budget, f"{self._budget // 2**20}MiB"
        need = need or 0
        with self._cond:
            free = self._cond.wait_for(
                lambda: self._budget is None or self._reserved + need <= self._budget,
                timeout=self._wait,
            )
            if not free:
                raise AdqlError(
                    "The TAP service's memory is taken by other queries right now; try again "
                    "in a minute (or run the query as an async job).",
                    status=503,
                )
            self._reserved += need
            idle = self._idle.get(limit)
            db = idle.pop() if idle else None
        try:
            if db is None:
                db = self._open(limit)
            yield db, limit
        finally:
            with self._cond:
                self._reserved -= need
                idle = self._idle.setdefault(limit, [])
                if db is not None and len(idle) < self._keep:
                    idle.append(db)
                elif db is not None:
                    db.close()
                self._cond.notify_all()


def _allowed_directories(tables: list[HatsTable]) -> list[str]:
    """The directories of the release's partition files, in each spelling DuckDB checks.

    A file read through a registered fsspec filesystem is checked both as written
    (``s3://bucket/x``) and as that filesystem returns it from a glob (``s3:///bucket/x``).
    """
    allowed = set()
    for table in tables:
        for part in table.partitions:
            folder = part.path.rsplit("/", 1)[0] + "/"
            allowed.add(folder)
            protocol, sep, rest = folder.partition("://")
            if sep and not rest.startswith("/"):
                allowed.add(f"{protocol}:///{rest}")
    return sorted(allowed)


#: a quoted name with a slash in it, or an absolute path: a file of this host or the store
_PATHS = re.compile(
    r"\"[^\"]*/[^\"]*\"|'[^']*/[^']*'|(?:[a-z][a-z0-9+.-]*:/)?/[\w.-]+(?:/[\w.*-]*)+"
)


def _public_message(text: str) -> str:
    """DuckDB's error message, first line, without file paths or internal suggestions."""
    first = text.split("\n")[0]
    first = re.sub(r"^[A-Za-z ]+ Error: ", "", first)
    first = re.split(r"\s*(?:Did you mean|Candidate|HINT|LINE \d)", first)[0]
    first = _PATHS.sub("a file", first)
    return first[:300]


def _fixed_size(arraysize: str | None) -> int | None:
    """TAP_SCHEMA.columns.size: the arraysize when it is a fixed number."""
    return int(arraysize) if arraysize and arraysize.isdigit() else None


def _compatible(datatype: str, arrow_type: pa.DataType) -> bool:
    if pa.types.is_boolean(arrow_type):
        return datatype == "boolean"
    if pa.types.is_integer(arrow_type):
        return datatype in {"short", "int", "long", "unsignedByte"}
    if pa.types.is_floating(arrow_type):
        return datatype in {"float", "double"}
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return datatype in {"char", "unicodeChar"}
    if pa.types.is_timestamp(arrow_type):
        return datatype == "char"
    return False


def _infer(arrow_type: pa.DataType) -> dict[str, str | None]:
    if pa.types.is_boolean(arrow_type):
        return {"datatype": "boolean"}
    if (
        pa.types.is_int8(arrow_type)
        or pa.types.is_int16(arrow_type)
        or pa.types.is_uint8(arrow_type)
    ):
        return {"datatype": "short"}
    if pa.types.is_int32(arrow_type) or pa.types.is_uint16(arrow_type):
        return {"datatype": "int"}
    if pa.types.is_integer(arrow_type):
        return {"datatype": "long"}
    if pa.types.is_float32(arrow_type) or pa.types.is_float16(arrow_type):
        return {"datatype": "float"}
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return {"datatype": "double"}
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return {"datatype": "char", "arraysize": "*", "xtype": "timestamp"}
    if pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return {"datatype": "double", "arraysize": "*"}
    return {"datatype": "char", "arraysize": "*"}
