"""A small data release with real HATS catalogs, for the lab tests and benchmarks.

`build_mini_release` publishes two HATS collections (``Object`` and ``gaia_dr3``,
each with a margin cache) built with lsdb/hats from seeded random positions,
plus a manifest, in the layout ``skydeck.catalog.release.ReleaseLayout``
describes.  A fraction of the ``gaia_dr3`` stars sit within 0.3 arcsec of an
``Object`` so crossmatches have true matches.  It takes seconds where
the shared ``tiny_release`` (images, pipeline) takes minutes, and its sizes are
parameters (the benchmarks use a bigger one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CENTER_RA = 56.0
CENTER_DEC = -30.0
HALF_WIDTH = 1.0  # degrees
N_OBJECTS = 3000
N_STARS_MATCHED = 400
N_STARS_EXTRA = 200


@dataclass(frozen=True)
class MiniSize:
    """How many rows: objects, stars planted next to objects, stars elsewhere."""

    objects: int = N_OBJECTS
    matched: int = N_STARS_MATCHED
    extra: int = N_STARS_EXTRA
    partition_rows: int = 600


def _objects(rng: np.random.Generator, n: int) -> pd.DataFrame:
    dec = rng.uniform(CENTER_DEC - HALF_WIDTH, CENTER_DEC + HALF_WIDTH, n)
    ra = CENTER_RA + rng.uniform(-HALF_WIDTH, HALF_WIDTH, n) / np.cos(np.radians(dec))
    return pd.DataFrame(
        {
            "objectId": np.arange(1, n + 1, dtype=np.int64) + 10**12,
            "coord_ra": ra,
            "coord_dec": dec,
            "r_psfFlux": rng.lognormal(8, 1, n),
        }
    )


def _stars(rng: np.random.Generator, objects: pd.DataFrame, size: MiniSize) -> pd.DataFrame:
    picked = objects.sample(size.matched, random_state=1)
    offset = rng.uniform(0, 0.3, size.matched) / 3600.0  # degrees
    angle = rng.uniform(0, 2 * np.pi, size.matched)
    dec_m = picked["coord_dec"].to_numpy() + offset * np.sin(angle)
    ra_m = picked["coord_ra"].to_numpy() + offset * np.cos(angle) / np.cos(np.radians(dec_m))
    dec_x = rng.uniform(CENTER_DEC - HALF_WIDTH, CENTER_DEC + HALF_WIDTH, size.extra)
    ra_x = CENTER_RA + rng.uniform(-HALF_WIDTH, HALF_WIDTH, size.extra) / np.cos(np.radians(dec_x))
    n = size.matched + size.extra
    return pd.DataFrame(
        {
            "source_id": np.arange(n, dtype=np.int64) + 5 * 10**15,
            "ra": np.concatenate([ra_m, ra_x]),
            "dec": np.concatenate([dec_m, dec_x]),
            "phot_g_mean_mag": rng.uniform(12, 20, n),
        }
    )


def build_mini_release(root: Path, seed: int = 42, size: MiniSize | None = None) -> Path:
    """Write a small release (HATS ``Object`` and ``gaia_dr3``, manifest) under ``root``."""
    import lsdb

    size = size or MiniSize()
    rng = np.random.default_rng(seed)
    objects = _objects(rng, size.objects)
    stars = _stars(rng, objects, size)
    hats = root / "hats"
    hats.mkdir(parents=True)
    tables = {
        "Object": (objects, "coord_ra", "coord_dec", "Coadd objects (synthetic test field)"),
        "gaia_dr3": (stars, "ra", "dec", "Gaia DR3 stars (synthetic test subset)"),
    }
    catalogs = {}
    for name, (frame, ra, dec, description) in tables.items():
        catalog = lsdb.from_dataframe(
            frame,
            ra_column=ra,
            dec_column=dec,
            lowest_order=4,
            highest_order=8,
            partition_rows=size.partition_rows,
            margin_threshold=10.0,
        )
        catalog.write_catalog(hats / name, catalog_name=name, progress_bar=False)
        catalogs[name] = {"description": description, "rows": len(frame), "path": f"hats/{name}"}
    manifest = {"size": "mini", "seed": seed, "catalogs": catalogs}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
