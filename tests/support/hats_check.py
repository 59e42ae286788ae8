"""Brute-force answers (numpy over the published parquet files) to check lsdb against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def read_hats_table(catalog_dir: Path) -> pd.DataFrame:
    """Every row of a HATS catalog (not its margin), read straight from the parquet files."""
    files = sorted(catalog_dir.glob("dataset/Norder=*/Dir=*/Npix=*.parquet"))
    files += sorted(catalog_dir.glob("dataset/Norder=*/Dir=*/Npix=*/*.parquet"))
    assert files, f"no parquet files under {catalog_dir}"
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def separation_arcsec(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray
) -> np.ndarray:
    """Great-circle distance (haversine), broadcasting."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=float)) for a in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0


def cone_ids(table: pd.DataFrame, ra: float, dec: float, radius_arcsec: float) -> list[int]:
    """objectIds within ``radius_arcsec`` of (ra, dec)."""
    distance = separation_arcsec(table["coord_ra"], table["coord_dec"], ra, dec)
    return sorted(int(i) for i in table.loc[distance <= radius_arcsec, "objectId"])


def nearest_pairs(
    left: pd.DataFrame, right: pd.DataFrame, radius_arcsec: float
) -> list[tuple[int, int]]:
    """(objectId, source_id) of each Object's nearest gaia_dr3 star within the radius."""
    distance = separation_arcsec(
        left["coord_ra"].to_numpy()[:, None],
        left["coord_dec"].to_numpy()[:, None],
        right["ra"].to_numpy()[None, :],
        right["dec"].to_numpy()[None, :],
    )
    nearest = distance.argmin(axis=1)
    close = distance[np.arange(len(left)), nearest] <= radius_arcsec
    ids = left["objectId"].to_numpy()[close]
    stars = right["source_id"].to_numpy()[nearest[close]]
    return sorted(zip((int(i) for i in ids), (int(s) for s in stars), strict=True))


def primary_catalog_dir(path: Path) -> Path:
    """The main catalog directory of a published HATS catalog or collection."""
    properties = path / "collection.properties"
    if not properties.exists():
        return path
    for line in properties.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "hats_primary_table_url":
            return path / value.strip()
    raise AssertionError(f"{properties} names no primary table")
