"""ADQL -> DuckDB SQL, with the spatial constraints that let us prune HEALPix partitions.

ADQL is parsed with sqlglot's T-SQL reader (ADQL's grammar is SQL-92 plus ``TOP``,
which T-SQL shares), checked against the tables the service publishes, and
rewritten: geometry functions become spherical-trigonometry SQL, table
references become DuckDB views or, under a spatial constraint, sub-queries over
only the partition files the constraint touches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from ._geometry import Cone, box_cone, enclosing_cone, encode_vertices

#: Longest error message; longer ones (quoting a long query) are cut in the middle.
MAX_MESSAGE_CHARS = 600


class AdqlError(Exception):
    """A query the service cannot run; the message says why and what to do."""

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None, status: int = 400
    ) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # messages quote the query: keep them short
            half = MAX_MESSAGE_CHARS // 2
            message = message[:half] + " ... " + message[-half:]
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.status = status  # the HTTP status to answer with


#: Functions that are not typed in sqlglot's grammar but are part of the ADQL we accept.
GEOMETRY_FUNCTIONS = {
    "POINT",
    "CIRCLE",
    "BOX",
    "POLYGON",
    "CONTAINS",
    "INTERSECTS",
    "DISTANCE",
    "COORD1",
    "COORD2",
    "COORDSYS",
}
UDFS = {
    "SCISQL_NANOJANSKYTOABMAG",
    "SCISQL_NANOJANSKYTOABMAGSIGMA",
    "SCISQL_S2PTINCIRCLE",
}
#: Typed sqlglot functions that correspond to ADQL functions.
ALLOWED_FUNCS: tuple[type[exp.Expr], ...] = (
    exp.Abs, exp.Ceil, exp.Floor, exp.Degrees, exp.Radians, exp.Exp, exp.Ln, exp.Log,
    exp.Mod, exp.Pi, exp.Pow, exp.Rand, exp.Round, exp.Sqrt, exp.Trunc, exp.Acos, exp.Asin,
    exp.Atan, exp.Atan2, exp.Cos, exp.Cot, exp.Sin, exp.Tan, exp.Lower, exp.Upper,
    exp.Coalesce, exp.Sign, exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Cast,
    exp.TryCast, exp.Case, exp.If, exp.Contains, exp.Length, exp.Substring, exp.Trim,
    exp.Nullif, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop,
    exp.Greatest, exp.Least,
)  # fmt: skip


@dataclass(frozen=True)
class Point:
    ra: exp.Expr
    dec: exp.Expr


@dataclass(frozen=True)
class Circle:
    ra: exp.Expr
    dec: exp.Expr
    radius: exp.Expr


@dataclass(frozen=True)
class Box:
    ra: exp.Expr
    dec: exp.Expr
    width: exp.Expr
    height: exp.Expr


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[exp.Expr, exp.Expr], ...]


Shape = Point | Circle | Box | Polygon


@dataclass
class ResolvedTable:
    """What a table name in a query refers to."""

    kind: str  # "hats", "tap_schema", "upload"
    name: str  # the published (TAP) name
    sql_schema: str | None  # DuckDB schema of the view, if any
    sql_name: str  # DuckDB name of the view / registered table
    columns: list[str]  # published column names
    ra_column: str | None = None
    dec_column: str | None = None
    obj: Any = None  # the HatsTable, for pruning


#: (schema or None, table name) -> ResolvedTable; raises AdqlError for unknown tables.
Resolver = Callable[[str | None, str], ResolvedTable]
#: HatsTable object + cones -> SQL of a sub-query over the touched partitions only.
PrunedSource = Callable[[Any, list[Cone]], tuple[str, int, int]]


@dataclass
class Translation:
    """A translated query."""

    sql: str
    tables: list[ResolvedTable] = field(default_factory=list)
    #: published table name -> (partitions read, partitions in the catalog)
    pruning: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: output column position -> DALI xtype, for geometry values in the select list
    xtypes: dict[int, str] = field(default_factory=dict)


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name`` (case-insensitive), best first."""
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[m] for m in matches]


#: Longest ADQL text accepted (characters); longer queries are refused before parsing.
MAX_QUERY_CHARS = 100_000
#: Deepest nesting of parentheses accepted; deeper queries are refused before parsing.
MAX_NESTING = 64
#: Marks a node the translator produced (a resolved table or a partition sub-query).
RESOLVED = "adql_resolved"


def _too_deep(adql: str) -> bool:
    depth = 0
    for char in adql:
        if char == "(":
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif char == ")":
            depth -= 1
    return False


def _too_complex() -> AdqlError:
    return AdqlError(
        f"The query is nested too deeply (at most {MAX_NESTING} levels of parentheses and "
        "sub-queries): flatten it, e.g. with a WITH clause or a JOIN."
    )


def parse(adql: str) -> exp.Query:
    """Parse ADQL; syntax errors carry the line and column."""
    if not adql or not adql.strip():
        raise AdqlError("The QUERY parameter is empty: give an ADQL SELECT statement.")
    if len(adql) > MAX_QUERY_CHARS:
        raise AdqlError(
            f"The query is {len(adql)} characters long; at most {MAX_QUERY_CHARS} are accepted. "
            "Upload long lists of values as a table (UPLOAD) instead of writing them inline."
        )
    if _too_deep(adql):  # a counted guard: the parser recurses once per level
        raise _too_complex()
    try:
        statements = sqlglot.parse(adql, read="tsql")
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        line, col = first.get("line"), first.get("col")
        detail = str(first.get("description", error)).split(". Line")[0][:200]
        near = str(first.get("highlight") or "")
        if len(near) > 60:
            near = near[:60] + "..."
        where = f" at line {line}, column {col}" if line is not None else ""
        raise AdqlError(
            f"ADQL syntax error{where}" + (f" near '{near}'" if near else "") + f": {detail}",
            line,
            col,
        ) from None
    except TokenError as error:
        raise AdqlError(f"ADQL syntax error: {str(error)[:200]}") from None
    except RecursionError:
        raise _too_complex() from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        # the parser fails on a few odd inputs with its own bugs; say it is the syntax
        raise AdqlError(
            "ADQL syntax error: the query could not be parsed "
            f"({type(error).__name__}); check it against the ADQL grammar."
        ) from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise AdqlError("Give exactly one ADQL SELECT statement (no ';'-separated batches).")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if tree is not None else "empty"
        raise AdqlError(f"Only SELECT queries are allowed; this is a {kind} statement.")
    return tree


def _fname(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Contains):
        return "CONTAINS"
    return ""


def _number(node: exp.Expr | None) -> float | None:
    """The value of a numeric literal (optionally negated or parenthesised)."""
    if node is None:
        return None
    if isinstance(node, exp.Paren):
        return _number(node.this)
    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _args(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Contains):
        return [node.this, node.expression]
    return list(node.expressions)


def _strip_coordsys(name: str, args: list[exp.Expr], minimum: int) -> list[exp.Expr]:
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        system = str(args[0].this).strip().upper()
        if system and not system.startswith("ICRS") and system not in {"", "UNKNOWNFRAME"}:
            raise AdqlError(
                f"{name}: coordinate system '{args[0].this}' is not supported; "
                "this service holds ICRS coordinates: use 'ICRS' or ''."
            )
        args = args[1:]
    if len(args) < minimum:
        raise AdqlError(f"{name} needs {minimum} numeric arguments after the coordinate system.")
    return args


def _shape(node: exp.Expr) -> Shape | None:
    """The geometry a POINT/CIRCLE/BOX/POLYGON call denotes (already-rewritten args)."""
    name = _fname(node)
    if name not in {"POINT", "CIRCLE", "BOX", "POLYGON"}:
        return None
    cached = node.meta.get("adql_shape")
    if cached is not None:
        shape: Shape = cached
        return shape
    args = _args(node)
    if name == "POINT":
        a = _strip_coordsys(name, args, 2)
        if len(a) != 2:
            raise AdqlError("POINT takes a coordinate system, a longitude and a latitude.")
        shape = Point(a[0], a[1])
    elif name == "CIRCLE":
        a = _strip_coordsys(name, args, 2)
        if len(a) == 2 and isinstance(_shape(a[0]), Point):
            p = _shape(a[0])
            assert isinstance(p, Point)
            shape = Circle(p.ra, p.dec, a[1])
        elif len(a) == 3:
            shape = Circle(a[0], a[1], a[2])
        else:
            raise AdqlError("CIRCLE takes a coordinate system, centre RA, centre Dec and radius.")
    elif name == "BOX":
        a = _strip_coordsys(name, args, 4)
        if len(a) != 4:
            raise AdqlError("BOX takes a coordinate system, centre RA, Dec, width and height.")
        shape = Box(a[0], a[1], a[2], a[3])
    else:
        a = _strip_coordsys(name, args, 3)
        points = [_shape(x) for x in a]
        if all(isinstance(p, Point) for p in points):
            verts = tuple((p.ra, p.dec) for p in points if isinstance(p, Point))
        elif len(a) % 2 == 0:
            verts = tuple((a[i], a[i + 1]) for i in range(0, len(a), 2))
        else:
            raise AdqlError("POLYGON takes a coordinate system and an even number of coordinates.")
        if len(verts) < 3:
            raise AdqlError("POLYGON needs at least three vertices.")
        shape = Polygon(verts)
    node.meta["adql_shape"] = shape
    return shape


def _geometry_arg(node: exp.Expr, function: str) -> Shape:
    shape = _shape(node)
    if shape is None:
        raise AdqlError(
            f"{function} needs geometry arguments (POINT, CIRCLE, BOX or POLYGON); "
            f"got '{node.sql(dialect='tsql')}'. Geometry-valued columns are not published here."
        )
    return shape


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _distance(a: Point, b: Point) -> exp.Expr:
    return _call("adql_distance", a.ra, a.dec, b.ra, b.dec)


def _constant_vertices(poly: Polygon) -> list[tuple[float, float]] | None:
    values = [(_number(ra), _number(dec)) for ra, dec in poly.vertices]
    if any(ra is None or dec is None for ra, dec in values):
        return None
    return [(float(ra), float(dec)) for ra, dec in values if ra is not None and dec is not None]


def _point_in(point: Point, region: Shape, function: str) -> exp.Expr:
    if isinstance(region, Circle):
        cond: exp.Expr = exp.LTE(
            this=_distance(point, Point(region.ra, region.dec)), expression=region.radius.copy()
        )
        dec0, radius = _number(region.dec), _number(region.radius)
        if dec0 is not None and radius is not None:
            band = exp.Between(
                this=point.dec.copy(),
                low=exp.Literal.number(repr(dec0 - radius)),
                high=exp.Literal.number(repr(dec0 + radius)),
            )  # lets parquet row-group statistics skip data before the trigonometry
            cond = exp.And(this=band, expression=cond)
        return exp.Paren(this=cond)
    if isinstance(region, Box):
        return _call(
            "adql_in_box", point.ra, point.dec, region.ra, region.dec, region.width, region.height
        )
    if isinstance(region, Polygon):
        verts = _constant_vertices(region)
        if verts is None:
            raise AdqlError(f"{function}: POLYGON vertices must be numeric constants here.")
        return _call(
            "adql_in_polygon", point.ra, point.dec, exp.Literal.string(encode_vertices(verts))
        )
    if isinstance(region, Point):
        return exp.Paren(
            this=exp.And(
                this=exp.EQ(this=point.ra.copy(), expression=region.ra.copy()),
                expression=exp.EQ(this=point.dec.copy(), expression=region.dec.copy()),
            )
        )
    raise AdqlError(f"{function}: unsupported region")  # pragma: no cover


def _predicate(function: str, first: Shape, second: Shape) -> exp.Expr:
    if function == "INTERSECTS" and isinstance(second, Point) and not isinstance(first, Point):
        first, second = second, first
    if isinstance(first, Point):
        return _point_in(first, second, function)
    if isinstance(first, Circle) and isinstance(second, Circle):
        d = _distance(Point(first.ra, first.dec), Point(second.ra, second.dec))
        if function == "CONTAINS":
            return exp.Paren(
                this=exp.LTE(
                    this=exp.Add(this=d, expression=first.radius.copy()),
                    expression=second.radius.copy(),
                )
            )
        return exp.Paren(
            this=exp.LTE(
                this=d,
                expression=exp.Add(this=first.radius.copy(), expression=second.radius.copy()),
            )
        )
    raise AdqlError(
        f"{function} of a {type(first).__name__.upper()} and a {type(second).__name__.upper()} "
        "is not supported; supported are a POINT in any region and CIRCLE with CIRCLE."
    )


def _as_int(pred: exp.Expr) -> exp.Expr:
    case = exp.Case(
        ifs=[exp.If(this=pred, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )
    case.meta["adql_predicate"] = pred
    return case


def _geometry_value(shape: Shape) -> tuple[exp.Expr, str]:
    """A geometry in the select list -> a DuckDB array and its DALI xtype."""
    if isinstance(shape, Point):
        return exp.Array(expressions=[shape.ra.copy(), shape.dec.copy()]), "point"
    if isinstance(shape, Circle):
        return exp.Array(
            expressions=[shape.ra.copy(), shape.dec.copy(), shape.radius.copy()]
        ), "circle"
    if isinstance(shape, Polygon):
        flat = [c.copy() for v in shape.vertices for c in v]
        return exp.Array(expressions=flat), "polygon"
    raise AdqlError("BOX values cannot be selected; DALI has no box type. Select POLYGON instead.")


def _rewrite_node(node: exp.Expr) -> exp.Expr | None:
    """The replacement for one node whose children are already rewritten (None: keep)."""
    if isinstance(node, exp.EQ | exp.NEQ):
        for pred_side, other in ((node.this, node.expression), (node.expression, node.this)):
            pred = pred_side.meta.get("adql_predicate") if pred_side is not None else None
            value = _number(other)
            if pred is not None and value in (0.0, 1.0):
                truthy = (value == 1.0) == isinstance(node, exp.EQ)
                return pred.copy() if truthy else exp.Not(this=pred.copy())
        return None
    name = _fname(node)
    if not name:
        if isinstance(node, exp.Anonymous) and node.name.upper() == "SCISQL_S2PTINCIRCLE":
            a = _args(node)
            if len(a) != 5:
                raise AdqlError("scisql_s2PtInCircle takes ra, dec, centre ra, centre dec, radius.")
            pred = _point_in(Point(a[0], a[1]), Circle(a[2], a[3], a[4]), "scisql_s2PtInCircle")
            return _as_int(pred)
        return None
    args = _args(node)
    if name in {"CONTAINS", "INTERSECTS"}:
        if len(args) != 2:
            raise AdqlError(f"{name} takes two geometries.")
        first, second = _geometry_arg(args[0], name), _geometry_arg(args[1], name)
        return _as_int(_predicate(name, first, second))
    if name == "DISTANCE":
        if len(args) == 2:
            p1, p2 = _geometry_arg(args[0], name), _geometry_arg(args[1], name)
            if not isinstance(p1, Point) or not isinstance(p2, Point):
                raise AdqlError(
                    "DISTANCE takes two POINTs (or four numbers: ra1, dec1, ra2, dec2)."
                )
            return _distance(p1, p2)
        if len(args) == 4:
            return _distance(Point(args[0], args[1]), Point(args[2], args[3]))
        raise AdqlError("DISTANCE takes two POINTs (or four numbers: ra1, dec1, ra2, dec2).")
    if name in {"COORD1", "COORD2"}:
        if len(args) != 1:
            raise AdqlError(f"{name} takes one POINT.")
        shape = _geometry_arg(args[0], name)
        if not isinstance(shape, Point):
            raise AdqlError(f"{name} takes a POINT.")
        return (shape.ra if name == "COORD1" else shape.dec).copy()
    if name == "COORDSYS":
        return exp.Literal.string("ICRS")
    _shape(node)  # validate POINT/CIRCLE/BOX/POLYGON now; they are consumed by their parents
    return None


def _rewrite_geometry(tree: exp.Expr) -> None:
    nodes = list(tree.walk())
    for node in nodes:  # shapes cached by the pruning pass point at nodes about to change
        node.meta.pop("adql_shape", None)
    for node in reversed(nodes):
        if node.parent is None and node is not tree:
            continue  # detached by an earlier replacement
        new = _rewrite_node(node)
        if new is not None and new is not node:
            if node is tree:
                raise AdqlError("A query cannot be a bare expression.")
            node.replace(new)


def _check_functions(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            raise AdqlError(
                f"'{node.this.sql(dialect='tsql')}' is not a table: select from the published "
                "tables (see /tables or TAP_SCHEMA.tables)."
            )
        if isinstance(node, exp.Anonymous):
            name = node.name.upper()
            if name not in GEOMETRY_FUNCTIONS and name not in UDFS:
                raise AdqlError(
                    f"Unknown function {node.name}. ADQL functions, the geometry functions and "
                    "scisql_nanojanskyToAbMag, scisql_nanojanskyToAbMagSigma, scisql_s2PtInCircle "
                    "are available."
                )
        elif (
            isinstance(node, exp.Func)
            and not isinstance(node, ALLOWED_FUNCS)
            and not isinstance(node, exp.Connector | exp.Binary | exp.Unary | exp.Predicate)
        ):
            raise AdqlError(f"Function {node.sql_name()} is not part of ADQL and is not available.")


def _conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _cone_of(region: Shape) -> Cone | None:
    if isinstance(region, Circle):
        values = [_number(region.ra), _number(region.dec), _number(region.radius)]
        if any(v is None for v in values):
            return None
        ra, dec, r = (float(v) for v in values if v is not None)
        return Cone(ra % 360, dec, r)
    if isinstance(region, Box):
        values = [
            _number(region.ra),
            _number(region.dec),
            _number(region.width),
            _number(region.height),
        ]
        if any(v is None for v in values):
            return None
        ra, dec, w, h = (float(v) for v in values if v is not None)
        return box_cone(ra % 360, dec, w, h)
    if isinstance(region, Polygon):
        verts = _constant_vertices(region)
        return None if verts is None else enclosing_cone(verts)
    return None


def _spatial_constraint(cond: exp.Expr) -> tuple[exp.Expr, exp.Expr, Cone] | None:
    """(ra column, dec column, cone) if ``cond`` confines a column position to a constant cone."""
    # CONTAINS(POINT(..), region) = 1, 1 = ..., INTERSECTS likewise, scisql_s2PtInCircle(...) = 1
    if isinstance(cond, exp.EQ):
        for call, other in ((cond.this, cond.expression), (cond.expression, cond.this)):
            if _number(other) != 1.0:
                continue
            name = _fname(call) or (call.name.upper() if isinstance(call, exp.Anonymous) else "")
            args = _args(call) if name else []
            if name in {"CONTAINS", "INTERSECTS"} and len(args) == 2:
                shapes = [_shape(args[0]), _shape(args[1])]
                point, region = shapes
                if name == "INTERSECTS" and isinstance(region, Point):
                    point, region = region, point
                if isinstance(point, Point) and region is not None:
                    cone = _cone_of(region)
                    if cone is not None:
                        return point.ra, point.dec, cone
            if name == "SCISQL_S2PTINCIRCLE" and len(args) == 5:
                cone = _cone_of(Circle(args[2], args[3], args[4]))
                if cone is not None:
                    return args[0], args[1], cone
    # DISTANCE(POINT(col..), POINT(const)) < r  (or r > DISTANCE(...))
    if isinstance(cond, exp.LT | exp.LTE | exp.GT | exp.GTE):
        call, limit = (
            (cond.this, cond.expression)
            if isinstance(cond, exp.LT | exp.LTE)
            else (cond.expression, cond.this)
        )
        radius = _number(limit)
        if radius is not None and _fname(call) == "DISTANCE":
            args = _args(call)
            if len(args) == 2:
                shapes = [_shape(args[0]), _shape(args[1])]
                if all(isinstance(s, Point) for s in shapes):
                    a, b = shapes
                    assert isinstance(a, Point) and isinstance(b, Point)
                    for col, const in ((a, b), (b, a)):
                        cra, cdec = _number(const.ra), _number(const.dec)
                        if cra is not None and cdec is not None:
                            return col.ra, col.dec, Cone(cra % 360, cdec, radius)
            if len(args) == 4:
                cra, cdec = _number(args[2]), _number(args[3])
                if cra is not None and cdec is not None:
                    return args[0], args[1], Cone(cra % 360, cdec, radius)
    return None


def _visible_ctes(table: exp.Table) -> dict[str, exp.CTE]:
    """The CTEs ``table`` may refer to, innermost WITH first (SQL scoping, not recursive)."""
    visible: dict[str, exp.CTE] = {}
    path: list[exp.Expr] = [table]  # from the table up to the current node's child
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            if path[-1] is with_:
                # inside a CTE's body: only the CTEs defined before that one
                own = path[-2]
                ctes = ctes[: next((i for i, c in enumerate(ctes) if c is own), len(ctes))]
            for cte in ctes:
                visible.setdefault(cte.alias_or_name.lower(), cte)
        path.append(node)
        node = node.parent
    return visible


def _cte_references(tree: exp.Expr) -> dict[int, tuple[exp.Table, exp.CTE]]:
    """Table references that name a CTE in scope: id(table) -> (table, CTE)."""
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise AdqlError("WITH RECURSIVE is not part of ADQL; write the query without it.")
        names = [cte.alias_or_name.lower() for cte in with_.expressions]
        if len(names) != len(set(names)):
            raise AdqlError("A WITH clause defines the same name twice; give each a new name.")
    found: dict[int, tuple[exp.Table, exp.CTE]] = {}
    for table in tree.find_all(exp.Table):
        if table.db or table.catalog or not isinstance(table.this, exp.Identifier):
            continue
        cte = _visible_ctes(table).get(table.name.lower())
        if cte is not None:
            found[id(table)] = (table, cte)
    return found


def _rename_ctes(tree: exp.Expr, references: dict[int, tuple[exp.Table, exp.CTE]]) -> None:
    """Give every CTE a name of ours, so that DuckDB never resolves a user's name itself."""
    names: dict[int, str] = {}
    for index, cte in enumerate(tree.find_all(exp.CTE)):
        names[id(cte)] = f"adql_cte_{index}"
        alias = cte.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            alias.set("this", exp.to_identifier(names[id(cte)], quoted=True))
    for table, cte in references.values():
        replacement = exp.Table(
            this=exp.to_identifier(names[id(cte)], quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(table.alias or table.name, quoted=True)),
        )
        replacement.meta[RESOLVED] = True
        table.replace(replacement)


def _check_resolved(tree: exp.Expr) -> None:
    """Every table reference left must be one the translator made (defence in depth)."""
    for node in tree.walk():
        if isinstance(node, exp.Table) and not node.meta.get(RESOLVED):
            if any(p.meta.get(RESOLVED) for p in _ancestors(node)):
                continue  # inside a partition sub-query the engine wrote
            raise AdqlError(
                f"Table reference {node.sql(dialect='tsql')} cannot be used here: select from "
                "the published tables (see /tables or TAP_SCHEMA.tables) or a WITH name in scope."
            )


def _ancestors(node: exp.Expr) -> list[exp.Expr]:
    found = []
    parent = node.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


class Translator:
    """Turns ADQL into DuckDB SQL for one service's tables."""

    def __init__(
        self, resolve: Resolver, pruned_source: PrunedSource, always_source: bool = False
    ) -> None:
        self._resolve = resolve
        self._pruned_source = pruned_source
        self._always_source = always_source  # every HATS table through pruned_source

    def translate(self, adql: str) -> Translation:
        tree = parse(adql)
        try:
            return self._translate(tree)
        except RecursionError:
            raise _too_complex() from None

    def _translate(self, tree: exp.Query) -> Translation:
        _check_functions(tree)
        ctes = _cte_references(tree)
        resolved: dict[int, ResolvedTable] = {}
        tables = [t for t in tree.find_all(exp.Table) if id(t) not in ctes]
        for table in tables:
            if table.catalog:
                raise AdqlError(
                    f"Table {table.sql(dialect='tsql')} has too many name parts: "
                    "write schema.table or just table."
                )
            resolved[id(table)] = self._resolve(table.db or None, table.name)
        cones = self._spatial_pruning(tree, resolved)
        translation = Translation(sql="", tables=list(resolved.values()))
        # tables first: the geometry rewrite copies its arguments (and any sub-query in them)
        for table in tables:
            self._replace_table(table, resolved[id(table)], cones.get(id(table)), translation)
        _rename_ctes(tree, ctes)
        _rewrite_geometry(tree)
        self._select_geometry(tree, translation)
        for column in tree.find_all(exp.Column):
            if column.args.get("db") is not None:
                column.set("db", None)
            if column.args.get("catalog") is not None:
                column.set("catalog", None)
        _check_resolved(tree)
        translation.sql = tree.sql(dialect="duckdb")
        return translation

    def _scope_tables(
        self, select: exp.Select, resolved: dict[int, ResolvedTable]
    ) -> dict[str, exp.Table]:
        sources: list[exp.Expr] = []
        from_ = select.args.get("from_") or select.args.get("from")
        if from_ is not None:
            sources.append(from_.this)
        for join in select.args.get("joins") or []:
            sources.append(join.this)
        scope: dict[str, exp.Table] = {}
        for source in sources:
            if isinstance(source, exp.Table) and id(source) in resolved:
                scope[(source.alias or source.name).lower()] = source
        return scope

    def _spatial_pruning(
        self, tree: exp.Expr, resolved: dict[int, ResolvedTable]
    ) -> dict[int, list[Cone]]:
        cones: dict[int, list[Cone]] = {}
        for select in tree.find_all(exp.Select):
            scope = self._scope_tables(select, resolved)
            if not scope:
                continue
            for cond in _conjuncts(select.args.get("where")):
                found = _spatial_constraint(cond)
                if found is None:
                    continue
                ra_col, dec_col, cone = found
                if not isinstance(ra_col, exp.Column) or not isinstance(dec_col, exp.Column):
                    continue
                table = self._owner(ra_col, scope, resolved)
                if table is None or self._owner(dec_col, scope, resolved) is not table:
                    continue
                info = resolved[id(table)]
                if (
                    info.kind == "hats"
                    and info.ra_column is not None
                    and info.dec_column is not None
                    and ra_col.name.lower() == info.ra_column.lower()
                    and dec_col.name.lower() == info.dec_column.lower()
                ):
                    cones.setdefault(id(table), []).append(cone)
        return cones

    @staticmethod
    def _owner(
        column: exp.Column, scope: dict[str, exp.Table], resolved: dict[int, ResolvedTable]
    ) -> exp.Table | None:
        if column.table:
            return scope.get(column.table.lower())
        owners = [
            t
            for t in scope.values()
            if column.name.lower() in {c.lower() for c in resolved[id(t)].columns}
        ]
        return owners[0] if len(owners) == 1 else None

    @staticmethod
    def _select_geometry(tree: exp.Expr, translation: Translation) -> None:
        outer = tree
        while isinstance(outer, exp.SetOperation):
            outer = outer.this
        if not isinstance(outer, exp.Select):
            return
        for position, projection in enumerate(outer.expressions):
            target = projection.this if isinstance(projection, exp.Alias) else projection
            shape = _shape(target) if isinstance(target, exp.Anonymous) else None
            if shape is None:
                continue
            value, xtype = _geometry_value(shape)
            if isinstance(projection, exp.Alias):
                projection.set("this", value)
            else:
                target.replace(exp.Alias(this=value, alias=exp.to_identifier(target.name.lower())))
            translation.xtypes[position] = xtype
        for node in tree.walk():
            if isinstance(node, exp.Anonymous) and node.name.upper() in {
                "POINT",
                "CIRCLE",
                "BOX",
                "POLYGON",
            }:
                raise AdqlError(
                    f"{node.name.upper()} can be used only in the select list or inside "
                    "CONTAINS, INTERSECTS, DISTANCE, COORD1 and COORD2."
                )

    def _replace_table(
        self,
        table: exp.Table,
        info: ResolvedTable,
        cones: list[Cone] | None,
        translation: Translation,
    ) -> None:
        alias = table.alias or table.name
        if info.kind == "hats" and (cones or self._always_source):
            sql, read, total = self._pruned_source(info.obj, cones or [])
            translation.pruning[info.name] = (read, total)
            subquery = sqlglot.parse_one(sql, read="duckdb")
            replacement: exp.Expr = exp.Subquery(
                this=subquery, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
            )
            replacement.meta[RESOLVED] = True
        else:
            if info.kind == "hats":
                translation.pruning[info.name] = (
                    len(info.obj.partitions),
                    len(info.obj.partitions),
                )
            replacement = exp.Table(
                this=exp.to_identifier(info.sql_name, quoted=True),
                db=exp.to_identifier(info.sql_schema, quoted=True) if info.sql_schema else None,
                alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
            )
            replacement.meta[RESOLVED] = True
        table.replace(replacement)
