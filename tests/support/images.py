"""A small Butler repository of images for the image tests, built like the release's.

It uses the release build's own geometry (instrument, visits with detector regions,
a skymap of overlapping patches) and stores ``lsst.images`` masked images: visit
images (``visit_image``) and coadd patches (``deep_coadd``, in tract pixel
coordinates), with Gaussian stars at known positions on a noisy background.
Building it takes a few seconds; it is made once per session.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

COADD = "deep_coadd"
COADD_BANDS = ("g", "r")


@dataclass(frozen=True)
class MiniRepo:
    """Where the mini repository is and what it holds."""

    release_root: Path  # a directory with ``butler/`` inside (a ReleaseLayout root)
    repo: Path
    collection: str
    stars: list[tuple[float, float]]  # (ra, dec) of the injected stars
    skymap: Any  # SkyMapSpec
    n_visits: int


def _stars(skymap: Any, rng: np.random.Generator) -> list[tuple[float, float]]:
    wcs = skymap.tract_wcs()
    nx, ny = skymap.tract_pixels
    xs = rng.uniform(60, nx - 60, 25)
    ys = rng.uniform(60, ny - 60, 25)
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    return [(float(r), float(d)) for r, d in zip(ra, dec, strict=True)]


def _render(shape: tuple[int, int], x0: int, y0: int, wcs: Any, stars: Any, rng: Any) -> Any:
    ny, nx = shape
    yy, xx = np.mgrid[y0 : y0 + ny, x0 : x0 + nx].astype(np.float64)
    image = rng.normal(0.0, 5.0, shape)
    ras = np.array([s[0] for s in stars])
    decs = np.array([s[1] for s in stars])
    px, py = wcs.all_world2pix(ras, decs, 0)
    for x, y, flux in zip(px, py, np.linspace(500, 5000, len(stars)), strict=True):
        if x0 - 20 < x < x0 + nx + 20 and y0 - 20 < y < y0 + ny + 20:
            image += flux / (2 * np.pi * 4.0) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    # A gradient so every pixel differs and slicing mistakes show.
    image += 0.001 * xx + 0.002 * yy
    return image.astype(np.float32)


def build_mini_repo(root: Path, seed: int = 5) -> MiniRepo:
    import astropy.units as u
    from lsst.daf.butler import DatasetType
    from lsst.images import (
        Box,
        DetectorFrame,
        Image,
        Mask,
        MaskedImage,
        SkyProjection,
        TractFrame,
    )

    from skydeck.images.release._config import SIZES
    from skydeck.images.release._geometry import SkyMapSpec, detector_wcs, plan_visits
    from skydeck.images.release.butler_repo import (
        INPUT_RUN,
        VISIT_IMAGE,
        create_repo,
        register_dimensions,
        register_input_dataset_types,
    )
    from skydeck.images.release.simulate import mask_schema

    size = SIZES["tiny"]
    rng = np.random.default_rng(seed)
    repo = root / "butler"
    butler = create_repo(str(repo))
    plans = plan_visits(size, seed)
    skymap = SkyMapSpec.for_size(size)
    register_dimensions(butler, size, plans, skymap)
    register_input_dataset_types(butler)
    butler.registry.registerDatasetType(
        DatasetType(
            COADD, ["skymap", "tract", "patch", "band"], "MaskedImageV2", universe=butler.dimensions
        )
    )
    stars = _stars(skymap, rng)
    n = size.detector_pixels
    for plan in plans:
        wcs = detector_wcs(size, plan, 0)
        box = Box.from_shape((n, n))
        frame = DetectorFrame(instrument="SkydeckCam", visit=plan.visit, detector=0, bbox=box)
        projection = SkyProjection.from_fits_wcs(wcs, frame, pixel_bounds=box)
        pixels = _render((n, n), 0, 0, wcs, stars, rng)
        mask = Mask(schema=mask_schema(), bbox=box)
        edge = np.zeros((n, n), bool)
        edge[:4, :] = edge[-4:, :] = edge[:, :4] = edge[:, -4:] = True
        mask.set("EDGE", edge)
        image = Image(pixels, unit=u.nJy, sky_projection=projection)
        variance = Image(np.full((n, n), 25.0, np.float32), unit=u.nJy**2)
        masked = MaskedImage(
            image,
            mask=mask,
            variance=variance,
            sky_projection=projection,
            metadata={"BAND": plan.band, "MJD-OBS": plan.mjd, "VISIT": plan.visit},
        )
        butler.put(
            masked,
            VISIT_IMAGE,
            instrument="SkydeckCam",
            visit=plan.visit,
            detector=0,
            run=INPUT_RUN,
        )
    tract_wcs = skymap.tract_wcs()
    tnx, tny = skymap.tract_pixels
    tract_box = Box.from_shape((tny, tnx))
    frame = TractFrame(skymap=skymap.name, tract=skymap.tract, bbox=tract_box)
    run = "skydeck/test/coadds"
    butler.registry.registerRun(run)
    for band in COADD_BANDS:
        for patch in skymap.patches():
            x0, y0, x1, y1 = patch.outer
            box = Box.factory[y0:y1, x0:x1]
            projection = SkyProjection.from_fits_wcs(tract_wcs, frame, pixel_bounds=box)
            pixels = _render((y1 - y0, x1 - x0), x0, y0, tract_wcs, stars, rng)
            mask = Mask(schema=mask_schema(), bbox=box)
            image = Image(pixels, yx0=(y0, x0), unit=u.nJy, sky_projection=projection)
            variance = Image(
                rng.uniform(1.0, 2.0, (y1 - y0, x1 - x0)).astype(np.float32),
                yx0=(y0, x0),
                unit=u.nJy**2,
            )
            masked = MaskedImage(
                image,
                mask=mask,
                variance=variance,
                sky_projection=projection,
                metadata={"BAND": band},
            )
            butler.put(
                masked,
                COADD,
                skymap=skymap.name,
                tract=skymap.tract,
                patch=patch.id,
                band=band,
                run=run,
            )
    collection = "skydeck/test"
    butler.collections.register(collection, type=_chained())
    butler.collections.redefine_chain(collection, [run, INPUT_RUN])
    # A manifest with no catalogs makes it a published release the other services accept.
    (root / "manifest.json").write_text(json.dumps({"size": "images-test", "catalogs": {}}))
    return MiniRepo(root, repo, collection, stars, skymap, len(plans))


def _chained() -> Any:
    from lsst.daf.butler import CollectionType

    return CollectionType.CHAINED


@pytest.fixture(scope="session")
def mini_image_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniRepo]:
    """A mini release directory (``butler/`` and an empty catalog manifest) with visit
    images and coadd patches."""
    root = tmp_path_factory.mktemp("mini-release")
    yield build_mini_repo(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def images_hub(hub_factory: Any, mini_image_repo: MiniRepo) -> Any:
    """A real hub (``skydeck up``) serving the mini image release, its cutout service up."""
    import time

    import requests

    # per-user cutout rates come from the quota service (tests set overrides)
    hub = hub_factory(release=mini_image_repo.release_root)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{hub.url}/services/cutouts/", timeout=5).status_code == 200:
                return hub
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the cutout service did not come up; see {hub.log_path}")
