"""Cutouts: a 100x100 cutout of a deepCoadd against reading the whole image, and
multi-epoch stamps of one object against reading every visit image whole.

The repository is the image tests' mini repository (the release build's geometry,
lsst.images datasets, default FITS tile compression) plus one 2048x2048 coadd, the
size of a demo patch with its border, so the ratio to a whole read means something.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from runner import Report

from support.images import COADD, build_mini_repo

CUTOUTS = 60
WHOLE_READS = 5
STAMP_RUNS = 5
LARGE = 2048


def _large_coadd(repo: Path, skymap: object) -> object:
    import astropy.units as u
    from lsst.daf.butler import Butler
    from lsst.images import Box, Image, Mask, MaskedImage, SkyProjection, TractFrame

    from skydeck.images.release.simulate import mask_schema

    butler = Butler.from_config(str(repo), writeable=True)
    run = "bench/large"
    butler.registry.registerRun(run)
    wcs = skymap.tract_wcs()  # type: ignore[attr-defined]
    box = Box.from_shape((LARGE, LARGE), start=(-500, -500))
    frame = TractFrame(skymap=skymap.name, tract=skymap.tract, bbox=box)  # type: ignore[attr-defined]
    projection = SkyProjection.from_fits_wcs(wcs, frame, pixel_bounds=box)
    rng = np.random.default_rng(1)
    pixels = rng.normal(0, 5, (LARGE, LARGE)).astype(np.float32)
    masked = MaskedImage(
        Image(pixels, yx0=(-500, -500), unit=u.nJy, sky_projection=projection),
        mask=Mask(schema=mask_schema(), bbox=box),
        variance=Image(np.full((LARGE, LARGE), 25.0, np.float32), yx0=(-500, -500), unit=u.nJy**2),
        sky_projection=projection,
    )
    return butler.put(
        masked,
        COADD,
        skymap=skymap.name,
        tract=skymap.tract,
        patch=0,
        band="z",
        run=run,  # type: ignore[attr-defined]
    )


def run(report: Report) -> None:
    from lsst.daf.butler import Butler

    from skydeck.images.cutouts import CutoutEngine

    with tempfile.TemporaryDirectory(prefix="bench-cutouts-") as tmp:
        mini = build_mini_repo(Path(tmp))
        ref = _large_coadd(mini.repo, mini.skymap)
        butler = Butler.from_config(str(mini.repo))
        engine = CutoutEngine(butler)
        rng = np.random.default_rng(7)
        wcs = mini.skymap.tract_wcs()

        whole = []
        for _ in range(WHOLE_READS):
            start = time.perf_counter()
            butler.get(ref)
            whole.append((time.perf_counter() - start) * 1000)
        report.add(f"read a whole {LARGE}x{LARGE} deepCoadd (image+mask+variance)", "ms", whole)

        engine.geometry(ref)  # the first call reads bbox + WCS, as any session's first does
        cuts = []
        for _ in range(CUTOUTS):
            x, y = rng.uniform(-400, LARGE - 600, 2)
            ra, dec = wcs.all_pix2world(x, y, 0)
            start = time.perf_counter()
            cut = engine.cutout(ref, float(ra), float(dec), 100)
            cuts.append((time.perf_counter() - start) * 1000)
            assert cut.image.shape == (100, 100)
        report.add(
            f"100x100 cutout of the {LARGE}x{LARGE} deepCoadd (WCS, variance, mask)",
            "ms",
            cuts,
            baseline=f"read a whole {LARGE}x{LARGE} deepCoadd (image+mask+variance)",
            target="p50 <= 20 ms",
        )

        by_position = []
        for _ in range(CUTOUTS // 2):
            ra, dec = mini.stars[int(rng.integers(len(mini.stars)))]
            start = time.perf_counter()
            engine.coadd_cutout(ra, dec, 100, band="r")
            by_position.append((time.perf_counter() - start) * 1000)
        report.add(
            "100x100 coadd cutout by (ra, dec, band), patch lookup included", "ms", by_position
        )

        ra, dec = min(mini.stars, key=lambda s: (s[0] - 62.0) ** 2 + (s[1] + 37.0) ** 2)
        refs = engine.visits_covering(ra, dec)
        whole_visits = []
        for _ in range(2):
            start = time.perf_counter()
            for visit_ref in refs:
                butler.get(visit_ref)
            whole_visits.append((time.perf_counter() - start) * 1000)
        report.add(f"read all {len(refs)} visit images whole", "ms", whole_visits)
        stamps = []
        for _ in range(STAMP_RUNS):
            start = time.perf_counter()
            found = engine.stamps(ra, dec, 32)
            stamps.append((time.perf_counter() - start) * 1000)
        report.add(
            f"multi-epoch stamps of one object ({len(found)} visits, 32x32, with the query)",
            "ms",
            stamps,
            baseline=f"read all {len(refs)} visit images whole",
        )
