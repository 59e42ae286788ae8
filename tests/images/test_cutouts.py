"""The cutout engine against a real Butler repository of lsst.images datasets."""

from __future__ import annotations

import uuid
from typing import Any

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from skydeck.images.cutouts import (
    CutoutEngine,
    CutoutError,
    DatasetNotFoundError,
    OffImageError,
    PixelBox,
)
from support.images import COADD, MiniRepo


@pytest.fixture(scope="module")
def engine(mini_image_repo: MiniRepo) -> CutoutEngine:
    return CutoutEngine.from_repo(
        str(mini_image_repo.repo), collections=[mini_image_repo.collection]
    )


def _full(engine: CutoutEngine, ref: Any) -> Any:
    return engine.butler.get(ref)


def test_discovers_image_dataset_types(engine: CutoutEngine) -> None:
    assert engine.coadd_type == COADD
    assert engine.visit_types == ["visit_image"]


def _check_against_full(engine: CutoutEngine, ref: Any, ra: float, dec: float, size: int) -> None:
    cut = engine.cutout(ref, ra, dec, size)
    full = _full(engine, ref)
    fb = full.bbox
    sl = (
        slice(cut.bbox.y0 - fb.y.start, cut.bbox.y1 - fb.y.start),
        slice(cut.bbox.x0 - fb.x.start, cut.bbox.x1 - fb.x.start),
    )
    np.testing.assert_array_equal(cut.image, full.image.array[sl])
    np.testing.assert_array_equal(cut.variance, full.variance.array[sl])
    np.testing.assert_array_equal(
        (cut.mask >> cut.mask_planes["EDGE"]) & 1, full.mask.get("EDGE")[sl].astype(int)
    )
    # The cutout WCS maps every pixel where the full image's WCS maps the same pixel.
    full_wcs = full.sky_projection.as_fits_wcs(full.bbox)
    ny, nx = cut.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra_c, dec_c = cut.wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    ra_f, dec_f = full_wcs.all_pix2world(
        xx.ravel() + cut.bbox.x0 - fb.x.start, yy.ravel() + cut.bbox.y0 - fb.y.start, 0
    )
    sep = SkyCoord(ra_c * u.deg, dec_c * u.deg).separation(SkyCoord(ra_f * u.deg, dec_f * u.deg))
    assert sep.max() < 1 * u.mas
    # And the requested position lands on the centre pixel.
    x, y = cut.wcs.all_world2pix(ra, dec, 0)
    assert abs(x - (nx // 2)) <= 0.5 + 1e-6 and abs(y - (ny // 2)) <= 0.5 + 1e-6


def test_coadd_cutout_equals_slicing_and_wcs(
    engine: CutoutEngine, mini_image_repo: MiniRepo
) -> None:
    ra, dec = mini_image_repo.stars[0]
    ref = engine.find_coadd(ra, dec, "r", 100)
    assert ref.dataId["band"] == "r"
    _check_against_full(engine, ref, ra, dec, 100)


def test_visit_cutout_equals_slicing_and_wcs(
    engine: CutoutEngine, mini_image_repo: MiniRepo
) -> None:
    ra, dec = mini_image_repo.stars[1]
    ref = engine.visits_covering(ra, dec)[0]
    _check_against_full(engine, ref, ra, dec, 37)
    # A dataset ID given as a string (what the SODA service receives) resolves too.
    cut = engine.cutout(f"butler://skydeck/{ref.id}", ra, dec, 20)
    assert cut.dataset_id == str(ref.id) and cut.image.shape == (20, 20)


def test_star_is_at_the_centre(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    ra, dec = mini_image_repo.stars[-1]  # the brightest
    cut = engine.coadd_cutout(ra, dec, 31, band="g")
    peak = np.unravel_index(np.argmax(cut.image), cut.image.shape)
    assert abs(peak[0] - 15) <= 1 and abs(peak[1] - 15) <= 1


def test_only_the_needed_pixels_are_read(
    engine: CutoutEngine, mini_image_repo: MiniRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the whole image would touch the HDUs' ``.data``; a cutout uses ``.section``."""
    from astropy.io.fits.hdu.compressed import CompImageHDU

    sections: list[tuple[Any, ...]] = []
    original = CompImageHDU.section

    def forbidden(self: Any) -> Any:
        raise AssertionError("the whole image was read")

    def spy(self: Any) -> Any:
        section = original.fget(self)  # type: ignore[attr-defined]

        class Spy:
            def __getitem__(self, key: Any) -> Any:
                sections.append(key)
                return section[key]

        return Spy()

    monkeypatch.setattr(CompImageHDU, "data", property(forbidden))
    monkeypatch.setattr(CompImageHDU, "section", property(spy))
    ra, dec = mini_image_repo.stars[2]
    cut = engine.coadd_cutout(ra, dec, 40, band="r")
    assert cut.image.shape == (40, 40)
    assert len(sections) == 3  # image, mask, variance
    for key in sections:
        rows, cols = key[0], key[1]
        assert rows.stop - rows.start == 40 and cols.stop - cols.start == 40


def test_near_patch_edge_gets_a_complete_cutout(
    engine: CutoutEngine, mini_image_repo: MiniRepo
) -> None:
    """Positions in the overlap of neighbouring patches: the patch holding the whole box
    is chosen, so the cutout is not clipped (patches overlap by a 40-pixel border)."""
    skymap = mini_image_repo.skymap
    assert skymap.nx_patches >= 2 and skymap.ny_patches >= 2
    nx = skymap.nx_patches
    patch = skymap.patch(nx + 1)  # cell (1, 1): it has a west and a south-west neighbour
    i, j = patch.inner[0], patch.inner[1]
    mid_y = (patch.inner[1] + patch.inner[3]) / 2
    cases = ((i - 15.0, mid_y, nx), (i + 15.0, mid_y, nx + 1), (i - 15.0, j - 15.0, 0))
    for x, y, expected in cases:
        ra, dec = skymap.tract_wcs().all_pix2world(x, y, 0)
        cut = engine.coadd_cutout(float(ra), float(dec), 60, band="r")
        assert not cut.clipped and cut.image.shape == (60, 60)
        assert cut.data_id["patch"] == expected
        assert np.isfinite(cut.image).all()


def test_image_edge_clips_or_pads(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    ra, dec = mini_image_repo.stars[1]
    ref = engine.visits_covering(ra, dec)[0]
    geometry = engine.geometry(ref)
    # Near the image corner: 10x10 pixels exist of a 40x40 request.
    wcs = engine.cutout(ref, ra, dec, 10).wcs  # any WCS of the parent grid will do
    corner = engine.cutout_box(ref, PixelBox(-30, -30, 10, 10))
    assert corner.clipped and corner.bbox == PixelBox(0, 0, 10, 10) and corner.shape == (10, 10)
    padded = engine.cutout_box(ref, PixelBox(-30, -30, 10, 10), pad=True)
    assert padded.shape == (40, 40)
    assert np.isnan(padded.image[:30, :]).all() and np.isfinite(padded.image[30:, 30:]).all()
    no_data = 1 << padded.mask_planes["NO_DATA"]
    assert (padded.mask[:30, :] & no_data).all() and not (padded.mask[30:, 30:] & no_data).any()
    np.testing.assert_array_equal(padded.image[30:, 30:], corner.image)
    # The padded WCS still puts pixel (30, 30) where the parent's pixel (0, 0) is.
    r1, d1 = padded.wcs.all_pix2world(30, 30, 0)
    r2, d2 = corner.wcs.all_pix2world(0, 0, 0)
    assert abs(r1 - r2) < 1e-9 and abs(d1 - d2) < 1e-9
    del wcs, geometry


def test_off_image_is_an_error(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    ra, dec = mini_image_repo.stars[1]
    ref = engine.visits_covering(ra, dec)[0]
    with pytest.raises(OffImageError, match="does not overlap"):
        engine.cutout_box(ref, PixelBox(-100, -100, -10, -10))
    with pytest.raises(OffImageError, match="does not overlap"):
        engine.cutout(ref, ra + 1.0, dec, 20)
    with pytest.raises(OffImageError, match="No deep_coadd"):
        engine.coadd_cutout(ra + 10.0, dec, 20, band="r")
    with pytest.raises(OffImageError):
        engine.coadd_cutout(ra, dec, 20, band="u")  # no u-band coadds in this repo


def test_bad_ids_are_refused(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    ra, dec = mini_image_repo.stars[1]
    for bad in ("../../etc/passwd", "/etc/passwd", "file:///etc/hosts", "", "12345"):
        with pytest.raises(DatasetNotFoundError, match="not a dataset ID"):
            engine.cutout(bad, ra, dec, 10)
    with pytest.raises(DatasetNotFoundError, match="No dataset with ID"):
        engine.cutout(str(uuid.uuid4()), ra, dec, 10)
    with pytest.raises(CutoutError, match="at least 1 pixel"):
        engine.cutout(engine.visits_covering(ra, dec)[0], ra, dec, 0)


def test_angular_size(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    ra, dec = mini_image_repo.stars[0]
    cut = engine.coadd_cutout(ra, dec, 10 * u.arcsec, band="r")
    assert cut.shape == (50, 50)  # 0.2 arcsec pixels


def _visits_seeing(ra: float, dec: float) -> set[int]:
    """Visits whose detector contains (ra, dec), from the simulation's own geometry."""
    from skydeck.images.release._config import SIZES
    from skydeck.images.release._geometry import detector_wcs, plan_visits

    size = SIZES["tiny"]
    seen = set()
    for plan in plan_visits(size, 5):
        x, y = detector_wcs(size, plan, 0).all_world2pix(ra, dec, 0)
        if -0.5 <= x < size.detector_pixels - 0.5 and -0.5 <= y < size.detector_pixels - 0.5:
            seen.add(plan.visit)
    return seen


def test_multi_epoch_stamps(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    centre = SkyCoord(62.0 * u.deg, -37.0 * u.deg)
    ra, dec = min(
        mini_image_repo.stars,
        key=lambda s: centre.separation(SkyCoord(s[0] * u.deg, s[1] * u.deg)).deg,
    )
    stamps = engine.stamps(ra, dec, 25)
    assert {s.data_id["visit"] for s in stamps} == _visits_seeing(ra, dec)
    assert len(stamps) == mini_image_repo.n_visits  # near the centre every visit sees it
    mjds = [s.mjd for s in stamps]
    assert all(m is not None for m in mjds) and mjds == sorted(mjds)  # type: ignore[type-var]
    for stamp in stamps:
        assert stamp.shape == (25, 25)
        peak = np.unravel_index(np.nanargmax(stamp.image), stamp.image.shape)
        assert abs(peak[0] - 12) <= 1 and abs(peak[1] - 12) <= 1
    r_only = engine.stamps(ra, dec, 25, band="r")
    assert {s.band for s in r_only} == {"r"} and 0 < len(r_only) < len(stamps)
    # Near the edge of the field only some visits see a star, and only those are returned.
    edge_ra, edge_dec = max(
        mini_image_repo.stars,
        key=lambda s: centre.separation(SkyCoord(s[0] * u.deg, s[1] * u.deg)).deg,
    )
    edge = engine.stamps(edge_ra, edge_dec, 25)
    assert {s.data_id["visit"] for s in edge} == _visits_seeing(edge_ra, edge_dec)


def test_fits_round_trip(engine: CutoutEngine, mini_image_repo: MiniRepo) -> None:
    import io

    from astropy.io import fits
    from astropy.wcs import WCS

    ra, dec = mini_image_repo.stars[0]
    cut = engine.coadd_cutout(ra, dec, 30, band="r")
    with fits.open(io.BytesIO(cut.to_fits_bytes())) as hdus:
        assert [h.name for h in hdus] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
        np.testing.assert_array_equal(hdus["IMAGE"].data, cut.image)
        wcs = WCS(hdus["IMAGE"].header)
        x, y = wcs.all_world2pix(ra, dec, 0)
        assert abs(x - 15) <= 0.5 and abs(y - 15) <= 0.5
        assert hdus[0].header["DATASET"] == cut.dataset_id
