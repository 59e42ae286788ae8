"""A small synthetic release for the TAP tests: HATS catalogs built with hats-import.

The rows are designed for edge cases: a dense field at RA 62 / Dec -37 (the
DP0.2 area), objects straddling RA = 0/360, objects around both poles, NULL
fluxes, negative fluxes.  Column names and types come from the real DP0.2
felis schema (lsst-sdm-schemas ``dp02_dc2.yaml``), cut down to the columns
generated here, so TAP_SCHEMA metadata is the real thing.

``tap_release`` is the session fixture; ``build_tap_release(dir)`` builds one
anywhere (the benchmark uses it with a larger ``n_objects``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from skydeck.catalog.release import ReleaseLayout

OBJECT_COLUMNS = [
    "objectId", "coord_ra", "coord_dec", "detect_isPrimary", "refBand", "deblend_nChild",
    "g_psfFlux", "g_psfFluxErr", "r_psfFlux", "r_psfFluxErr", "i_psfFlux", "i_psfFluxErr",
]  # fmt: skip
FORCED_COLUMNS = [
    "forcedSourceId", "objectId", "ccdVisitId", "band", "coord_ra", "coord_dec",
    "psfFlux", "psfFluxErr",
]  # fmt: skip

GAIA_SCHEMA = """\
name: gaia_dr3
description: Gaia DR3 sources overlapping the Skydeck fields (test subset).
tables:
- name: gaia_source
  description: Gaia DR3 astrometry and G-band photometry.
  primaryKey: "#gaia_source.source_id"
  columns:
  - name: source_id
    "@id": "#gaia_source.source_id"
    datatype: long
    description: Unique source identifier
    ivoa:ucd: meta.id;meta.main
  - name: ra
    "@id": "#gaia_source.ra"
    datatype: double
    description: Right ascension
    fits:tunit: deg
    ivoa:ucd: pos.eq.ra;meta.main
  - name: dec
    "@id": "#gaia_source.dec"
    datatype: double
    description: Declination
    fits:tunit: deg
    ivoa:ucd: pos.eq.dec;meta.main
  - name: phot_g_mean_mag
    "@id": "#gaia_source.phot_g_mean_mag"
    datatype: float
    description: G-band mean magnitude
    fits:tunit: mag
    ivoa:ucd: phot.mag;em.opt
"""


@dataclass
class TapRelease:
    """The synthetic release and the exact rows that went into it."""

    layout: ReleaseLayout
    objects: pd.DataFrame
    forced: pd.DataFrame
    gaia: pd.DataFrame


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def make_objects(n_objects: int = 6000, seed: int = 5) -> pd.DataFrame:
    """Object rows; about a third in the DP0.2 field, the rest spread over edge cases."""
    rng = np.random.default_rng(seed)
    n_field = n_objects // 3
    n_wrap = n_objects // 8
    n_pole = n_objects // 16
    n_sky = n_objects - n_field - n_wrap - 2 * n_pole
    ra_sky, dec_sky = _sky(rng, n_sky)
    ra = np.concatenate([
        rng.uniform(57, 67, n_field),
        rng.uniform(-3, 3, n_wrap) % 360,
        rng.uniform(0, 360, 2 * n_pole),
        ra_sky,
    ])  # fmt: skip
    dec = np.concatenate([
        rng.uniform(-42, -32, n_field),
        rng.uniform(-4, 4, n_wrap),
        rng.uniform(84, 90, n_pole),
        rng.uniform(-90, -84, n_pole),
        dec_sky,
    ])  # fmt: skip
    n = len(ra)
    flux = {b: rng.lognormal(7, 1.5, n) for b in "gri"}
    flux["r"][rng.random(n) < 0.05] = -rng.uniform(1, 50)  # negative fluxes happen
    df = pd.DataFrame({
        "objectId": np.arange(1_000_000, 1_000_000 + n, dtype=np.int64) * 3,
        "coord_ra": ra,
        "coord_dec": dec,
        "detect_isPrimary": rng.random(n) < 0.8,
        "refBand": rng.choice(np.array(["g", "r", "i"]), n),
        "deblend_nChild": rng.integers(0, 4, n).astype(np.int32),
    })  # fmt: skip
    for b in "gri":
        df[f"{b}_psfFlux"] = flux[b]
        df[f"{b}_psfFluxErr"] = np.abs(flux[b]) * rng.uniform(0.01, 0.2, n)
    df["r_psfFlux"] = df["r_psfFlux"].astype("Float64")
    df.loc[rng.random(n) < 0.04, "r_psfFlux"] = pd.NA  # NULLs
    return df[OBJECT_COLUMNS]


def make_forced(objects: pd.DataFrame, seed: int = 6) -> pd.DataFrame:
    """Three forced measurements for each of the first 1500 objects."""
    rng = np.random.default_rng(seed)
    subset = objects.iloc[:1500]
    reps = 3
    n = len(subset) * reps
    return pd.DataFrame({
        "forcedSourceId": np.arange(n, dtype=np.int64) + 5_000_000,
        "objectId": np.repeat(subset["objectId"].to_numpy(), reps),
        "ccdVisitId": rng.integers(100, 120, n).astype(np.int64),
        "band": rng.choice(np.array(["g", "r", "i"]), n),
        "coord_ra": np.repeat(subset["coord_ra"].to_numpy(), reps),
        "coord_dec": np.repeat(subset["coord_dec"].to_numpy(), reps),
        "psfFlux": rng.normal(1000, 100, n),
        "psfFluxErr": rng.uniform(5, 20, n),
    })[FORCED_COLUMNS]  # fmt: skip


def make_gaia(objects: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Gaia-like sources: 600 within 0.2 arcsec of objects, 400 elsewhere."""
    rng = np.random.default_rng(seed)
    near = objects.sample(600, random_state=seed)
    offset = rng.uniform(0, 0.2 / 3600, 600)
    ra_far, dec_far = _sky(rng, 400)
    dec_near = np.clip(near["coord_dec"].to_numpy() + offset, -90, 90)
    return pd.DataFrame({
        "source_id": np.arange(1000, dtype=np.int64) * 7 + 11,
        "ra": np.concatenate([near["coord_ra"].to_numpy(), ra_far]),
        "dec": np.concatenate([dec_near, dec_far]),
        "phot_g_mean_mag": rng.uniform(10, 20, 1000).astype(np.float32),
    })  # fmt: skip


def dp02_schema_subset(tables: dict[str, list[str]]) -> str:
    """The DP0.2 felis schema cut down to the given tables and columns."""
    text = resources.files("lsst.sdm.schemas").joinpath("dp02_dc2.yaml").read_text()
    doc = yaml.safe_load(text)
    kept = []
    for table in doc["tables"]:
        if table["name"] not in tables:
            continue
        wanted = set(tables[table["name"]])
        table["columns"] = [c for c in table["columns"] if c["name"] in wanted]
        ids = {c["@id"] for c in table["columns"]}
        table["constraints"] = [
            c for c in table.get("constraints", []) if all(x in ids for x in c.get("columns", []))
        ]
        table.pop("indexes", None)
        kept.append(table)
    doc["tables"] = kept
    return yaml.safe_dump(doc, sort_keys=False)


def import_hats(
    frames: dict[str, tuple[pd.DataFrame, str, str, int]], hats_dir: Path, work: Path
) -> None:
    """Build one HATS catalog per frame with hats-import: name -> (rows, ra, dec, threshold)."""
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    work.mkdir(parents=True, exist_ok=True)
    with Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
    ) as client:
        for name, (df, ra, dec, threshold) in frames.items():
            source = work / f"{name}.parquet"
            df.to_parquet(source, index=False)
            args = ImportArguments(
                ra_column=ra,
                dec_column=dec,
                input_file_list=[str(source)],
                file_reader="parquet",
                output_path=str(hats_dir),
                output_artifact_name=name,
                pixel_threshold=threshold,
                highest_healpix_order=8,
                progress_bar=False,
                resume=False,
                tmp_dir=str(work / "tmp"),
            )
            pipeline_with_client(args, client)


def build_tap_release(root: Path, n_objects: int = 6000) -> TapRelease:
    """Write a complete release (HATS catalogs, felis schemas, manifest) under ``root``."""
    objects = make_objects(n_objects)
    forced = make_forced(objects)
    gaia = make_gaia(objects)
    layout = ReleaseLayout.at(root)
    root.mkdir(parents=True, exist_ok=True)
    import_hats(
        {
            "Object": (objects, "coord_ra", "coord_dec", max(300, n_objects // 20)),
            "ForcedSource": (forced, "coord_ra", "coord_dec", 1000),
            "gaia_dr3": (gaia, "ra", "dec", 400),
        },
        Path(str(layout.hats_dir)),
        root.parent / f"{root.name}-work",
    )
    schema_dir = Path(str(layout.schema_dir))
    schema_dir.mkdir(exist_ok=True)
    (schema_dir / "dp02_dc2_catalogs.yaml").write_text(
        dp02_schema_subset({"Object": OBJECT_COLUMNS, "ForcedSource": FORCED_COLUMNS})
    )
    (schema_dir / "gaia_dr3.yaml").write_text(GAIA_SCHEMA)
    manifest = {
        "size": "tap-test",
        "catalogs": {
            "Object": {"description": "Objects", "rows": len(objects), "path": "hats/Object",
                       "schema": "dp02_dc2_catalogs"},
            "ForcedSource": {"description": "Forced photometry", "rows": len(forced),
                             "path": "hats/ForcedSource", "schema": "dp02_dc2_catalogs"},
            "gaia_dr3": {"description": "Gaia DR3", "rows": len(gaia), "path": "hats/gaia_dr3",
                         "schema": "gaia_dr3"},
        },
    }  # fmt: skip
    Path(str(layout.manifest_path)).write_text(json.dumps(manifest, indent=2))
    return TapRelease(layout=layout, objects=objects, forced=forced, gaia=gaia)


@pytest.fixture(scope="session")
def tap_release(tmp_path_factory: pytest.TempPathFactory) -> TapRelease:
    """A synthetic release with Object, ForcedSource and gaia_dr3 (built once per session)."""
    return build_tap_release(tmp_path_factory.mktemp("tap") / "release")


@dataclass
class TapServer:
    """``python -m skydeck.catalog.tap`` running on loopback."""

    url: str
    data_dir: Path
    release: Path | str  # a directory or an object-store URI (s3://bucket/release)
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        cmd = [
            sys.executable, "-m", "skydeck.catalog.tap", "--release", str(self.release),
            "--data-dir", str(self.data_dir), "--port", str(self.port), "--auth", "none",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"TAP service exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(self.url + "/availability", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"TAP service did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def sync(self, query: str, **params: Any) -> requests.Response:
        data = {"LANG": "ADQL", "QUERY": query, **{k.upper(): v for k, v in params.items()}}
        return requests.post(self.url + "/sync", data=data, timeout=120)


def start_tap_server(
    release: Path | str, data_dir: Path, env: dict[str, str] | None = None
) -> TapServer:
    from support.hub import free_port

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = TapServer(
        url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        release=release,
        port=port,
        log_path=data_dir / "tap.log",
        env=env or {},
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def tap_server(
    tap_release: TapRelease, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TapServer]:
    """The TAP service over ``tap_release``, standalone, without authentication."""
    server = start_tap_server(
        Path(str(tap_release.layout.root)),
        tmp_path_factory.mktemp("tap-data"),
        env={"SKYDECK_TAP_MAX_CONCURRENT_PER_USER": "8"},
    )
    yield server
    server.stop()
