"""Table metadata read from felis schemas: what TAP_SCHEMA and /tables describe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

#: felis datatype -> (TAP/VOTable datatype, arraysize, xtype)
FELIS_TYPES: dict[str, tuple[str, str | None, str | None]] = {
    "boolean": ("boolean", None, None),
    "byte": ("unsignedByte", None, None),
    "short": ("short", None, None),
    "int": ("int", None, None),
    "long": ("long", None, None),
    "float": ("float", None, None),
    "double": ("double", None, None),
    "char": ("char", "*", None),
    "string": ("char", "*", None),
    "text": ("char", "*", None),
    "unicode": ("unicodeChar", "*", None),
    "binary": ("unsignedByte", "*", None),
    "timestamp": ("char", "*", "timestamp"),
}


#: ADQL 2.1 reserved words (SQL-92 plus ADQL's own) that need delimiting as column names.
_RESERVED_WORDS = """
    ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG
    BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER
    CHAR_LENGTH CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT
    CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT
    CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DEC
    DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS
    DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC
    EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET
    GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER
    INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE
    LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL
    NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER
    OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR
    PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK
    ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE
    SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP
    TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION
    UNIQUE UNKNOWN UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN
    WHENEVER WHERE WITH WORK WRITE YEAR ZONE ABS ACOS AREA ASIN ATAN ATAN2 BOX CEILING CENTROID
    CIRCLE CONTAINS COORD1 COORD2 COORDSYS COS COT DEGREES DISTANCE EXP FLOOR INTERSECTS LOG
    LOG10 MOD PI POINT POLYGON POWER RADIANS REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE OFFSET
    ILIKE
"""
RESERVED = frozenset(_RESERVED_WORDS.split())
_REGULAR = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def adql_name(name: str) -> str:
    """``name`` as it must be written in ADQL: delimited if irregular or reserved."""
    if _REGULAR.match(name) and name.upper() not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


@dataclass
class ColumnInfo:
    """One column as TAP_SCHEMA.columns describes it."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    description: str = ""
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    principal: int = 0
    indexed: int = 0
    std: int = 0
    column_index: int = 0


@dataclass
class ForeignKey:
    """A foreign key from one table to another (TAP_SCHEMA.keys / key_columns)."""

    key_id: str
    from_table: str
    target_table: str
    from_columns: list[str]
    target_columns: list[str]
    description: str = ""


@dataclass
class TableInfo:
    """One table as TAP_SCHEMA.tables describes it; ``name`` is schema-qualified."""

    schema: str
    short_name: str
    description: str = ""
    columns: list[ColumnInfo] = field(default_factory=list)
    table_type: str = "table"
    table_index: int = 0
    keys: list[ForeignKey] = field(default_factory=list)
    nrows: int | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.short_name}"

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name`` (case-insensitive), if any."""
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)


@dataclass
class SchemaInfo:
    """One schema (TAP_SCHEMA.schemas row) and its tables."""

    name: str
    description: str = ""
    tables: list[TableInfo] = field(default_factory=list)
    schema_index: int = 0


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def load_felis(text: str) -> SchemaInfo:
    """Parse a felis YAML document into `SchemaInfo` (without validating every felis rule)."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or "name" not in doc or "tables" not in doc:
        raise ValueError("not a felis schema: expected a mapping with 'name' and 'tables'")
    schema = SchemaInfo(
        name=str(doc["name"]),
        description=_text(doc.get("description")),
        schema_index=int(doc.get("tap:schema_index", 0) or 0),
    )
    ids: dict[str, tuple[str, str]] = {}
    raw_keys: list[tuple[str, dict[str, Any]]] = []
    for table_doc in doc["tables"]:
        table = TableInfo(
            schema=schema.name,
            short_name=str(table_doc["name"]),
            description=_text(table_doc.get("description")),
            table_index=int(table_doc.get("tap:table_index", 0) or 0),
        )
        for position, col in enumerate(table_doc.get("columns", [])):
            felis_type = str(col.get("datatype", "double"))
            datatype, arraysize, xtype = FELIS_TYPES.get(felis_type, ("char", "*", None))
            if col.get("votable:arraysize") is not None:
                arraysize = str(col["votable:arraysize"])
            table.columns.append(
                ColumnInfo(
                    name=str(col["name"]),
                    datatype=datatype,
                    arraysize=arraysize,
                    xtype=col.get("votable:xtype") or xtype,
                    description=_text(col.get("description")),
                    unit=_text(col.get("fits:tunit") or col.get("ivoa:unit")),
                    ucd=_text(col.get("ivoa:ucd")),
                    principal=int(col.get("tap:principal", 0) or 0),
                    std=int(col.get("tap:std", 0) or 0),
                    column_index=int(col.get("tap:column_index", position) or position),
                )
            )
            if "@id" in col:
                ids[str(col["@id"])] = (table.short_name, str(col["name"]))
        for constraint in table_doc.get("constraints", []) or []:
            if constraint.get("@type") == "ForeignKey":
                raw_keys.append((table.short_name, constraint))
        schema.tables.append(table)
    by_name = {t.short_name: t for t in schema.tables}
    for table_name, constraint in raw_keys:
        try:
            source = [ids[c] for c in constraint.get("columns", [])]
            target = [ids[c] for c in constraint.get("referencedColumns", [])]
        except KeyError:
            continue  # the key points at a table or column that is not published
        if not source or not target:
            continue
        target_table = target[0][0]
        by_name[table_name].keys.append(
            ForeignKey(
                key_id=str(constraint.get("@id", constraint.get("name", ""))).lstrip("#"),
                from_table=f"{schema.name}.{table_name}",
                target_table=f"{schema.name}.{target_table}",
                from_columns=[c for _, c in source],
                target_columns=[c for _, c in target],
                description=_text(constraint.get("description")),
            )
        )
    return schema
