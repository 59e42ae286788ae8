"""The image widgets in process: stretches, the viewer's data, overlay, gallery, RGB.

Why not in a spawned lab: these check the widgets' numbers (pixel arrays, overlay
positions) in process against a mini image repository, which a kernel could only
return serialised.  The widgets in a lab the hub spawned, with a user's environment
(Butler reads included), are tested in test_widgets_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from support.images import MiniRepo


@pytest.fixture
def release(mini_image_repo: MiniRepo, monkeypatch: pytest.MonkeyPatch) -> Iterator[MiniRepo]:
    from skydeck.lab.widgets import _sources

    monkeypatch.setenv("SKYDECK_RELEASE", str(mini_image_repo.release_root))
    _sources.engine.cache_clear()
    yield mini_image_repo
    _sources.engine.cache_clear()


def test_stretches_differ_and_keep_nan() -> None:
    from skydeck.lab.widgets import STRETCHES, stretch

    rng = np.random.default_rng(3)
    data = rng.normal(0, 1, (50, 50))
    data[10:13, 10:13] += 500.0
    data[0, 0] = np.nan
    out = {kind: stretch(data, kind) for kind in STRETCHES}
    for kind, values in out.items():
        assert np.isnan(values[0, 0]), kind
        finite = values[np.isfinite(values)]
        assert finite.min() >= 0 and finite.max() <= 1, kind
    assert not np.allclose(out["asinh"], out["linear"], equal_nan=True)
    assert not np.allclose(out["zscale"], out["linear"], equal_nan=True)
    with pytest.raises(ValueError, match="Unknown stretch"):
        stretch(data, "log")


def test_viewer_overlay_pick_and_restretch(release: MiniRepo) -> None:
    import skydeck.lab as sl
    from skydeck.lab.widgets import ImageViewer

    ra, dec = release.stars[0]
    cut = sl.get_cutout(ra, dec, size=80, band="r")
    picked: list[dict[str, object]] = []
    viewer = ImageViewer(cut, on_pick=picked.append)
    source = viewer._source
    assert source.data["ra"][0].shape == (80, 80)
    # The hover's RA/Dec grid is the cutout's WCS.
    r, d = cut.wcs.all_pix2world(10, 20, 0)
    assert (
        abs(source.data["ra"][0][20, 10] - r) < 1e-9
        and abs(source.data["dec"][0][20, 10] - d) < 1e-9
    )
    before = source.data["image"][0].copy()
    viewer.stretch = "linear"
    assert not np.allclose(before, source.data["image"][0], equal_nan=True)
    far = (ra + 1.0, dec)
    frame = pd.DataFrame(
        {
            "objectId": [1, 2],
            "coord_ra": [ra, far[0]],
            "coord_dec": [dec, far[1]],
            "mag": [20.0, 21.0],
        }
    )
    assert viewer.add_catalog(frame) == 1  # the far one is not on the image
    viewer._picked("indices", [], [0])
    assert picked and picked[0]["objectId"] == 1


def test_gallery_epochs_and_rgb(release: MiniRepo) -> None:
    from skydeck.lab.widgets import CutoutGallery, aperture_flux, rgb_image

    stars = release.stars[:3]
    table = pd.DataFrame(
        {"objectId": [10, 11, 12], "ra": [s[0] for s in stars], "dec": [s[1] for s in stars]}
    )
    gallery = CutoutGallery(table, bands=("g", "r", "u"), size=32)
    assert len(gallery.cutouts) == 3
    assert all(row[0] is not None and row[2] is None for row in gallery.cutouts)  # no u coadds
    ra, dec = release.stars[-1]
    epochs = CutoutGallery.epochs(ra, dec, size=24)
    assert len(epochs.stamps) >= 1
    flux, error = aperture_flux(epochs.stamps[0])
    assert flux > 5 * error  # the brightest star is detected in a single visit
    rgb = rgb_image(ra=ra, dec=dec, bands=("r", "r", "g"), size=40)
    assert rgb.shape == (40, 40, 3) and rgb.dtype == np.uint8 and rgb.max() > 0
