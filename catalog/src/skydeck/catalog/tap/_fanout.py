"""Scale-out: run a single-table query per HATS partition on a Dask cluster, then merge.

A query over one HATS table that reads several partitions is split into a *map*
query, which every Dask task runs with DuckDB on a group of partition files, and a
*merge* query, which DuckDB runs here over the concatenated partial results:

- filter / project / DISTINCT / ORDER BY / TOP / OFFSET: each partition returns
  at most TOP + OFFSET rows in order; the merge re-sorts and cuts;
- COUNT, SUM, MIN, MAX, AVG (optionally with GROUP BY on columns): partitions
  return partial aggregates (AVG as SUM and COUNT) which the merge combines.

Anything else (joins, sub-queries, HAVING, window functions, uploads) runs in
the single DuckDB process as usual; `FanOut.plan` returns None for it.

A release on object storage (``s3://...``) is read in each worker through the same
fsspec filesystem as in the service (s3fs registered in DuckDB): every task carries
the filesystem's protocol and storage options, and the worker's S3 endpoint and
credentials come from those options or, when they are empty, from the worker's own
``AWS_*`` environment (as in the service).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from ._adql import Translation, Translator

if TYPE_CHECKING:
    from ._catalogs import HatsTable
    from ._engine import Engine

log = logging.getLogger(__name__)

SOURCE = "__fanout_source"
MERGED = "__fanout_merged"


#: An object-store filesystem as tasks carry it: fsspec protocol and storage options.
Filesystem = tuple[str, dict[str, Any]]


@dataclass
class FanOutPlan:
    """How one query runs spread over partitions."""

    translation: Translation
    views: list[str]  # per partition: the SQL defining the source view
    map_sql: str
    merge_sql: str
    filesystem: Filesystem | None = None  # where the partition files are, if not local


def _connect(filesystem: Filesystem | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the ADQL geometry functions installed.

    With ``filesystem``, DuckDB reads ``<protocol>://`` paths through that fsspec
    filesystem (DuckDB's own httpfs extension would be downloaded at run time).
    """
    from ._geometry import SQL_MACROS, polygon_udf

    con = duckdb.connect(":memory:")
    if filesystem is not None:
        import fsspec

        protocol, options = filesystem
        con.register_filesystem(fsspec.filesystem(protocol, **options))
    for macro in SQL_MACROS:
        con.execute(macro)
    con.create_function(  # type: ignore[call-overload]
        "adql_in_polygon", polygon_udf, ["DOUBLE", "DOUBLE", "VARCHAR"], "BOOLEAN", type="arrow"
    )
    return con


def run_partition(view_sql: str, map_sql: str, filesystem: Filesystem | None = None) -> pa.Table:
    """Dask task: the map query over one partition (DuckDB in the worker)."""
    con = _connect(filesystem)
    try:
        con.execute(f"CREATE VIEW {SOURCE} AS {view_sql}")
        return con.sql(map_sql).to_arrow_table()
    finally:
        con.close()


def _int(node: exp.Expr | None) -> int | None:
    if node is None:
        return None
    value = node.args.get("expression") if isinstance(node, exp.Limit | exp.Offset) else node
    if isinstance(value, exp.Literal) and not value.is_string:
        return int(value.this)
    raise ValueError("non-literal LIMIT/OFFSET")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FanOut:
    """Plans and runs queries on a Dask cluster (``distributed`` scheduler address)."""

    def __init__(self, engine: Engine, scheduler: str, min_partitions: int = 2) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.min_partitions = min_partitions
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            self._client = Client(self.scheduler, timeout="30s")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _workers(self) -> int:
        try:
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        except Exception:  # the count only tunes task size
            return 1

    # ----- planning ---------------------------------------------------------------------
    def plan(self, adql: str, uploads: dict[str, pa.Table]) -> FanOutPlan | None:
        if uploads:
            return None
        recorded: list[tuple[HatsTable, list[str], str]] = []

        def source(table: HatsTable, cones: list[Any]) -> tuple[str, int, int]:
            parts, condition = self.engine.select_partitions(table, cones)
            recorded.append((table, [p.path for p in parts], condition))
            return f"(SELECT * FROM {SOURCE})", len(parts), len(table.partitions)

        translator = Translator(
            lambda schema, name: self.engine.resolve(schema, name, {}), source, always_source=True
        )
        translation = translator.translate(adql)
        if len(recorded) != 1 or len(translation.tables) != 1:
            return None
        table, files, condition = recorded[0]
        if len(files) < self.min_partitions:
            return None
        try:
            split = self._split(translation.sql, table, files[0], condition)
        except ValueError as why:
            log.debug("not fanned out: %s", why)
            return None
        if split is None:
            return None
        map_sql, merge_sql = split
        # a task per group of partitions: a few tasks per worker, not thousands of tiny ones
        tasks = min(len(files), max(2, 3 * self._workers()))
        groups = [files[i::tasks] for i in range(tasks)]
        views = [self.engine.source_sql(table, group, condition) for group in groups]
        return FanOutPlan(translation, views, map_sql, merge_sql, self._filesystem())

    def _filesystem(self) -> Filesystem | None:
        """The release's object-store filesystem, for the workers (None when local)."""
        root = self.engine.layout.root
        if root.protocol in ("", "file", "local"):
            return None
        protocol = root.protocol if isinstance(root.protocol, str) else root.protocol[0]
        return protocol, dict(root.storage_options)

    def _output_names(self, sql: str, table: HatsTable, sample: str, condition: str) -> list[str]:
        con = _connect(self._filesystem())
        try:
            view = self.engine.source_sql(table, [sample], condition)
            con.execute(f"CREATE VIEW {SOURCE} AS {view}")
            return list(con.sql(f"SELECT * FROM ({sql}) LIMIT 0").columns)
        finally:
            con.close()

    def _split(
        self, sql: str, table: HatsTable, sample: str, condition: str
    ) -> tuple[str, str] | None:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if not isinstance(tree, exp.Select):
            return None
        if tree.args.get("joins") or tree.args.get("with_") or tree.args.get("with"):
            return None
        if tree.args.get("having") or any(isinstance(n, exp.Window) for n in tree.walk()):
            return None
        if sum(1 for _ in tree.find_all(exp.Select)) != 2:  # the query and its source only
            return None
        names = self._output_names(sql, table, sample, condition)
        projections = tree.expressions
        limit, offset = _int(tree.args.get("limit")), _int(tree.args.get("offset"))
        order = tree.args.get("order")
        group = tree.args.get("group")
        aggregates = [a for p in projections for a in p.find_all(exp.AggFunc)]
        star = any(isinstance(p, exp.Star) for p in projections)
        by_name = {}
        if not star:
            for name, projection in zip(names, projections, strict=True):
                by_name[projection.alias_or_name.lower()] = name
                by_name[name.lower()] = name

        def order_clause() -> str:
            if order is None:
                return ""
            keys = []
            for ordered in order.expressions:
                key = ordered.this
                if isinstance(key, exp.Literal) and not key.is_string:
                    name = names[int(key.this) - 1]
                elif isinstance(key, exp.Column) and (star or key.name.lower() in by_name):
                    name = key.name if star else by_name[key.name.lower()]
                else:
                    raise ValueError("ORDER BY on something not selected")
                direction = " DESC" if ordered.args.get("desc") else ""
                nulls = " NULLS FIRST" if ordered.args.get("nulls_first") else " NULLS LAST"
                keys.append(f"{_q(name)}{direction}{nulls}")
            return " ORDER BY " + ", ".join(keys)

        tail = order_clause()
        if limit is not None:
            tail += f" LIMIT {limit}"
        if offset:
            tail += f" OFFSET {offset}"
        if not aggregates and group is None:
            mapped = tree.copy()
            mapped.set("offset", None)
            if limit is not None:
                mapped.set("limit", exp.Limit(expression=exp.Literal.number(limit + (offset or 0))))
            distinct = "DISTINCT " if tree.args.get("distinct") else ""
            return mapped.sql(dialect="duckdb"), f"SELECT {distinct}* FROM {MERGED}{tail}"
        if tree.args.get("distinct") or star:
            return None
        group_keys = {g.sql(dialect="duckdb").lower() for g in (group.expressions if group else [])}
        map_items, merge_items, map_group = [], [], []
        for index, (name, projection) in enumerate(zip(names, projections, strict=True)):
            inner = projection.unalias()
            text = inner.sql(dialect="duckdb")
            if text.lower() in group_keys and not list(inner.find_all(exp.AggFunc)):
                map_items.append(f"{text} AS g{index}")
                map_group.append(f"g{index}")
                merge_items.append(f"g{index} AS {_q(name)}")
                continue
            if not isinstance(inner, exp.AggFunc) or list(inner.this.find_all(exp.AggFunc)):
                return None
            if isinstance(inner.this, exp.Distinct):
                return None
            arg = inner.this.sql(dialect="duckdb")
            if isinstance(inner, exp.Count):
                map_items.append(f"COUNT({arg}) AS p{index}")
                merge_items.append(f"CAST(SUM(p{index}) AS BIGINT) AS {_q(name)}")
            elif isinstance(inner, exp.Sum):
                map_items.append(f"SUM({arg}) AS p{index}")
                merge_items.append(f"SUM(p{index}) AS {_q(name)}")
            elif isinstance(inner, exp.Min | exp.Max):
                fn = "MIN" if isinstance(inner, exp.Min) else "MAX"
                map_items.append(f"{fn}({arg}) AS p{index}")
                merge_items.append(f"{fn}(p{index}) AS {_q(name)}")
            elif isinstance(inner, exp.Avg):
                map_items.append(f"SUM({arg}) AS p{index}s, COUNT({arg}) AS p{index}c")
                merge_items.append(f"SUM(p{index}s) / SUM(p{index}c) AS {_q(name)}")
            else:
                return None
        if group is not None and len(map_group) != len(group.expressions):
            return None  # grouped by something not selected
        source = tree.args.get("from_") or tree.args.get("from")
        if source is None:
            return None
        where = tree.args.get("where")
        map_sql = (
            f"SELECT {', '.join(map_items)} {source.sql(dialect='duckdb')}"
            + (f" {where.sql(dialect='duckdb')}" if where is not None else "")
            + (f" GROUP BY {', '.join(map_group)}" if map_group else "")
        )
        merge_sql = (
            f"SELECT {', '.join(merge_items)} FROM {MERGED}"
            + (f" GROUP BY {', '.join(map_group)}" if map_group else "")
            + tail
        )
        return map_sql, merge_sql

    # ----- execution --------------------------------------------------------------------
    def run(self, plan: FanOutPlan) -> pa.Table:
        futures = self.client.map(
            run_partition,
            plan.views,
            map_sql=plan.map_sql,
            filesystem=plan.filesystem,
            pure=False,
        )
        parts = [t for t in self.client.gather(futures) if t is not None]
        merged = pa.concat_tables(parts, promote_options="default")
        con = duckdb.connect(":memory:")
        try:
            con.register(MERGED, merged)
            return con.sql(plan.merge_sql).to_arrow_table()
        finally:
            con.close()
