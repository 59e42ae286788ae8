"""Storage: the HATS catalogs of a release, their partitions and their felis metadata."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq

from skydeck.catalog.release import ReleaseLayout

from ._schema import ColumnInfo, SchemaInfo, TableInfo, load_felis

log = logging.getLogger(__name__)

#: Columns HATS adds for its own bookkeeping; not part of the published table.
HATS_INTERNAL = {"_healpix_29", "Norder", "Dir", "Npix"}

_ARROW_TO_VOTABLE = {
    "bool": "boolean",
    "int8": "short",
    "uint8": "unsignedByte",
    "int16": "short",
    "int32": "int",
    "int64": "long",
    "uint16": "int",
    "uint32": "long",
    "uint64": "long",
    "float": "float",
    "halffloat": "float",
    "double": "double",
}


#: felis/VOTable datatype -> (DuckDB type, Arrow types that already are it)
_DECLARED: dict[str, tuple[str, set[str]]] = {
    "boolean": ("BOOLEAN", {"bool"}),
    "unsignedByte": ("UTINYINT", {"uint8"}),
    "short": ("SMALLINT", {"int16"}),
    "int": ("INTEGER", {"int32"}),
    "long": ("BIGINT", {"int64"}),
    "float": ("FLOAT", {"float"}),
    "double": ("DOUBLE", {"double"}),
}


@dataclass
class HatsPartition:
    """One HEALPix partition file of a catalog."""

    order: int
    pixel: int
    path: str


@dataclass
class HatsTable:
    """A queryable table backed by a HATS catalog."""

    info: TableInfo
    root: str
    ra_column: str | None
    dec_column: str | None
    partitions: list[HatsPartition] = field(default_factory=list)
    #: The parquet column name for each published (TAP) column name.
    physical: dict[str, str] = field(default_factory=dict)
    #: Published column -> DuckDB type, where the parquet type differs from the felis one.
    casts: dict[str, str] = field(default_factory=dict)
    #: The order-29 HEALPix index column rows are sorted by (row-group pruning), if any.
    healpix_column: str | None = None

    @property
    def files(self) -> list[str]:
        return [p.path for p in self.partitions]

    def touched(self, order: int, pixels: np.ndarray) -> list[HatsPartition]:
        """The partitions that overlap the given HEALPix ``pixels`` of ``order`` (nested)."""
        pixels = np.unique(np.asarray(pixels, dtype=np.int64))
        chosen = []
        for part in self.partitions:
            if part.order <= order:
                parents = pixels >> (2 * (order - part.order))
                hit = bool(np.any(parents == part.pixel))
            else:
                parent = part.pixel >> (2 * (part.order - order))
                hit = bool(np.any(pixels == parent))
            if hit:
                chosen.append(part)
        return chosen


def _arrow_column(name: str, arrow_type: str) -> ColumnInfo:
    datatype = _ARROW_TO_VOTABLE.get(arrow_type)
    if datatype is not None:
        return ColumnInfo(name=name, datatype=datatype)
    if arrow_type.startswith("timestamp"):
        return ColumnInfo(name=name, datatype="char", arraysize="*", xtype="timestamp")
    return ColumnInfo(name=name, datatype="char", arraysize="*")


#: Felis schema name -> the name TAP publishes it under.  The release's DP0.2-derived
#: schema is served as ``dp02_dc2_catalogs`` so DP0.2 queries and tutorials run verbatim.
DEFAULT_SCHEMA_NAMES = {"dp02_skydeck": "dp02_dc2_catalogs"}


def _rename(schema: SchemaInfo, new: str) -> None:
    old = schema.name
    schema.name = new
    for table in schema.tables:
        table.schema = new
        for key in table.keys:
            key.from_table = new + key.from_table[len(old) :]
            key.target_table = new + key.target_table[len(old) :]


def load_schemas(
    layout: ReleaseLayout, renames: dict[str, str] | None = None
) -> dict[str, SchemaInfo]:
    """Every felis schema published in the release, by (published) schema name and file."""
    renames = DEFAULT_SCHEMA_NAMES if renames is None else renames
    schemas: dict[str, SchemaInfo] = {}
    if not layout.schema_dir.exists():
        return schemas
    for path in sorted(layout.schema_dir.iterdir()):
        if path.suffix not in {".yaml", ".yml"}:
            continue
        try:
            schema = load_felis(path.read_text())
        except (ValueError, KeyError, TypeError) as error:
            log.warning("skipping %s: %s", path, error)
            continue
        if schema.name in renames:
            _rename(schema, renames[schema.name])
        schemas[schema.name] = schema
        schemas[f"schema/{path.name}"] = schema  # manifests may name the file
    return schemas


def _find_table(
    schemas: dict[str, SchemaInfo], name: str, schema_hint: str
) -> tuple[SchemaInfo, TableInfo] | None:
    candidates = [schemas[schema_hint]] if schema_hint in schemas else list(schemas.values())
    for schema in candidates:
        for table in schema.tables:
            if table.short_name.lower() == name.lower():
                return schema, table
    if schema_hint in schemas and len(schemas[schema_hint].tables) == 1:
        return schemas[schema_hint], schemas[schema_hint].tables[0]  # gaia_dr3 -> gaia_source
    return None


def load_tables(
    layout: ReleaseLayout, renames: dict[str, str] | None = None
) -> tuple[list[SchemaInfo], list[HatsTable]]:
    """The schemas and HATS-backed tables the release publishes (manifest order)."""
    import hats
    from hats.catalog.healpix_dataset.healpix_dataset import HealpixDataset
    from hats.io import paths

    schemas = load_schemas(layout, renames)
    published: dict[str, SchemaInfo] = {}
    tables: list[HatsTable] = []
    for entry in layout.catalogs():
        root = layout.root / entry.path
        try:
            catalog = hats.read_hats(root)
        except (FileNotFoundError, ValueError) as error:
            log.warning(
                "catalog %s at %s is not a readable HATS catalog: %s", entry.name, root, error
            )
            continue
        if not isinstance(catalog, HealpixDataset):
            log.warning("%s at %s is not a partitioned HATS table; left out", entry.name, root)
            continue
        partitions = [
            HatsPartition(
                order=int(pixel.order),
                pixel=int(pixel.pixel),
                path=str(paths.pixel_catalog_file(catalog.catalog_base_dir, pixel)),
            )
            for pixel in catalog.get_healpix_pixels()
        ]
        arrow_schema = None  # all partitions share one schema
        if partitions:  # through the release's filesystem: local, or s3fs for s3:// releases
            with root.fs.open(partitions[0].path, "rb") as footer:
                arrow_schema = pq.read_schema(footer)
        physical_names = list(arrow_schema.names if arrow_schema else [])
        physical_types = {
            n: str(arrow_schema.field(n).type) for n in physical_names if arrow_schema is not None
        }
        table_name = str(entry.extra.get("table", entry.name))
        found = _find_table(schemas, table_name, entry.schema)
        if found is not None:
            felis_schema, felis_table = found
            schema_name = felis_schema.name
            info = TableInfo(
                schema=schema_name,
                short_name=felis_table.short_name,
                description=felis_table.description or entry.description,
                table_index=felis_table.table_index,
                keys=list(felis_table.keys),
            )
            by_lower = {n.lower(): n for n in physical_names}
            physical: dict[str, str] = {}
            casts: dict[str, str] = {}
            for col in felis_table.columns:
                if col.name.lower() in by_lower:
                    info.columns.append(col)
                    physical[col.name] = by_lower[col.name.lower()]
                    stored = physical_types[by_lower[col.name.lower()]]
                    wanted = _DECLARED.get(col.datatype)
                    if wanted is not None and stored not in wanted[1]:
                        casts[col.name] = wanted[0]  # serve what felis declares
            known = {c.lower() for c in physical.values()}
            for extra in physical_names:
                if extra.lower() not in known and extra not in HATS_INTERNAL:
                    info.columns.append(_arrow_column(extra, physical_types[extra]))
                    physical[extra] = extra
            if felis_schema.name not in published:
                published[schema_name] = SchemaInfo(
                    name=schema_name,
                    description=felis_schema.description,
                    schema_index=felis_schema.schema_index,
                )
        else:
            schema_name = entry.schema if entry.schema.isidentifier() else "release"
            info = TableInfo(
                schema=schema_name, short_name=entry.name, description=entry.description
            )
            casts = {}
            public = [n for n in physical_names if n not in HATS_INTERNAL]
            info.columns = [_arrow_column(n, physical_types[n]) for n in public]
            physical = {n: n for n in public}
            published.setdefault(schema_name, SchemaInfo(name=schema_name))
        info.nrows = entry.rows or int(catalog.catalog_info.total_rows or 0)
        all_names = set(arrow_schema.names) if arrow_schema is not None else set()
        healpix = catalog.catalog_info.healpix_column or "_healpix_29"
        if int(catalog.catalog_info.healpix_order or 29) != 29:
            healpix = ""  # only order-29 indices are understood here
        ra = catalog.catalog_info.ra_column
        dec = catalog.catalog_info.dec_column
        tables.append(
            HatsTable(
                info=info,
                root=str(root),
                healpix_column=healpix if healpix in all_names else None,
                ra_column=ra if ra in physical_names else None,
                dec_column=dec if dec in physical_names else None,
                partitions=partitions,
                physical=physical,
                casts=casts,
            )
        )
        published[schema_name].tables.append(info)
    names = {t.info.name for t in tables}
    for table in tables:  # keys to tables that are not published cannot be followed
        table.info.keys = [k for k in table.info.keys if k.target_table in names]
    return list(published.values()), tables
