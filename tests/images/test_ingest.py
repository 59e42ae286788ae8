"""Ingest of users' own FITS images: spatial queries and cutouts find them; bad files are
rejected with nothing registered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip

from skydeck.images.cutouts import CutoutEngine
from skydeck.images.ingest import USER_IMAGE, IngestError, ingest

RA, DEC = 150.1, 2.2


def _wcs(kind: str, ra: float = RA, dec: float = DEC) -> WCS:
    wcs = WCS(naxis=2)
    scale = 0.25 / 3600
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [60.2, 40.3]
    wcs.wcs.cd = np.array([[-scale * 0.99, scale * 0.1], [scale * 0.1, scale * 0.99]])
    wcs.wcs.radesys = "ICRS"
    if kind == "TAN":
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    elif kind == "SIP":
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        a = np.zeros((4, 4))
        b = np.zeros((4, 4))
        a[2, 0], a[0, 2], b[1, 1], a[3, 0] = 2e-5, -1e-5, 1.5e-5, 1e-7
        wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    elif kind == "SIN":
        wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    elif kind == "GAL":
        wcs.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
        wcs.wcs.crval = [236.8, 42.1]
    wcs.wcs.set()
    return wcs


def _write(path: Path, kind: str, **header: Any) -> Path:
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    data = rng.normal(100.0, 3.0, (80, 120)).astype(np.float32)
    data += np.arange(120)[None, :] * 0.01
    hdr = _wcs(kind).to_header(relax=True)
    for key, value in header.items():
        hdr[key] = value
    fits.PrimaryHDU(data, header=hdr).writeto(path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> str:
    from lsst.daf.butler import Butler

    root = tmp_path / "repo"
    Butler.makeRepo(str(root))
    return str(root)


def _found_at(repo: str, collection: str, ra: float, dec: float) -> list[Any]:
    from lsst.daf.butler import Butler

    butler = Butler.from_config(repo)
    if USER_IMAGE not in {d.name for d in butler.registry.queryDatasetTypes()}:
        return []
    if collection not in set(butler.collections.query("*")):
        return []
    return butler.query_datasets(
        USER_IMAGE,
        collections=collection,
        where=f"visit_detector_region.region OVERLAPS POINT({ra}, {dec})",
        explain=False,
    )


def test_tan_and_sip_images_are_found_and_cut(repo: str, tmp_path: Path) -> None:
    tan = _write(
        tmp_path / "tan.fits", "TAN", FILTER="SDSS r'", **{"DATE-OBS": "2024-03-01T04:00:00"}
    )
    sip = _write(tmp_path / "sip.fits", "SIP", FILTER="g", **{"MJD-OBS": 60400.5})
    done = ingest([tan, sip], repo=repo, collection="u/alice/images")
    assert [d.band for d in done] == ["r", "g"]
    found = _found_at(repo, "u/alice/images", RA, DEC)
    assert {str(r.id) for r in found} == {d.dataset_id for d in done}
    assert _found_at(repo, "u/alice/images", RA + 1.0, DEC) == []  # not elsewhere

    engine = CutoutEngine.from_repo(repo, collections=["u/alice/images"])
    assert USER_IMAGE in engine.visit_types
    for item, path, kind in zip(done, (tan, sip), ("TAN", "SIP"), strict=True):
        original = fits.getdata(path)
        cut = engine.cutout(item.dataset_id, RA, DEC, 21)
        wcs = _wcs(kind)
        x, y = wcs.all_world2pix(RA, DEC, 0)
        cx, cy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        assert (cut.bbox.x0, cut.bbox.y0) == (cx - 10, cy - 10)
        np.testing.assert_array_equal(cut.image, original[cy - 10 : cy + 11, cx - 10 : cx + 11])
        # The cutout's WCS agrees with the file's own (SIP distortion included) within 1 mas.
        yy, xx = np.mgrid[0:21, 0:21]
        r1, d1 = cut.wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
        r2, d2 = wcs.all_pix2world(xx.ravel() + cx - 10, yy.ravel() + cy - 10, 0)
        err = np.hypot((r1 - r2) * np.cos(np.radians(DEC)), d1 - d2).max() * 3.6e6
        assert err < 1.0, f"{kind}: {err} mas"
    stamps = engine.stamps(RA, DEC, 15)
    assert len(stamps) == 2
    assert stamps[0].mjd is not None and stamps[0].mjd < stamps[1].mjd  # type: ignore[operator]


def test_sin_and_galactic_wcs_are_accepted(repo: str, tmp_path: Path) -> None:
    sin = _write(tmp_path / "sin.fits", "SIN")
    gal = _write(tmp_path / "gal.fits", "GAL")
    done = ingest([sin, gal], repo=repo, collection="u/bob/images")
    assert len(done) == 2
    # The galactic image sits where its WCS says, expressed in ICRS.
    from astropy.coordinates import SkyCoord

    centre = _wcs("GAL").pixel_to_world(59.5, 39.5).icrs  # the image centre
    assert SkyCoord(*done[1].center, unit="deg").separation(centre).arcsec < 0.01
    assert _found_at(repo, "u/bob/images", centre.ra.deg, centre.dec.deg)


def _assert_nothing_registered(repo: str, collection: str) -> None:
    assert _found_at(repo, collection, RA, DEC) == []
    stored = [p for p in Path(repo).rglob("*.fits")]
    assert stored == [], stored


def test_broken_inputs_are_rejected_and_nothing_registered(repo: str, tmp_path: Path) -> None:
    good = _write(tmp_path / "good.fits", "TAN")
    no_wcs = tmp_path / "nowcs.fits"
    fits.PrimaryHDU(np.zeros((10, 10), np.float32)).writeto(no_wcs)
    text = tmp_path / "notes.fits"
    text.write_text("this is not FITS at all\n" * 50)
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:5000])
    table = tmp_path / "table.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
    ).writeto(table)
    cube = tmp_path / "cube.fits"
    hdr = _wcs("TAN").to_header()
    fits.PrimaryHDU(np.zeros((3, 10, 10), np.float32), header=hdr).writeto(cube)
    cases = {
        no_wcs: "no celestial WCS",
        text: "not a readable FITS file",
        truncated: "not a readable FITS file",
        table: "no image",
        cube: "3 dimensions",
        tmp_path / "missing.fits": "no such file",
    }
    for bad, message in cases.items():
        with pytest.raises(IngestError, match=message):
            ingest([good, bad], repo=repo, collection="u/carol/images")
        _assert_nothing_registered(repo, "u/carol/images")


def test_cli(repo: str, tmp_path: Path) -> None:
    good = _write(tmp_path / "cli.fits", "TAN", FILTER="i")
    bad = tmp_path / "nowcs.fits"
    fits.PrimaryHDU(np.zeros((10, 10), np.float32)).writeto(bad)
    cmd = [sys.executable, "-m", "skydeck.hub", "images", "ingest", "--repo", repo]
    result = subprocess.run(
        [*cmd, "--collection", "u/dora/images", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "no celestial WCS" in result.stderr and "Nothing was ingested" in result.stderr
    _assert_nothing_registered(repo, "u/dora/images")
    result = subprocess.run(
        [*cmd, "--collection", "u/dora/images", str(good)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ingested 1 image(s) into collection u/dora/images" in result.stdout
    assert "band=i" in result.stdout
    assert len(_found_at(repo, "u/dora/images", RA, DEC)) == 1


def test_failure_while_writing_rolls_everything_back(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that fails only at registration (after another was written) leaves nothing."""
    import skydeck.images.ingest as module

    first = _write(tmp_path / "first.fits", "TAN")
    second = _write(tmp_path / "second.fits", "SIP")
    original = module._check_accuracy

    def fail_on_second(masked: Any, prepared: Any) -> None:
        if prepared.path == second:
            raise IngestError(f"{second}: simulated failure")
        original(masked, prepared)

    monkeypatch.setattr(module, "_check_accuracy", fail_on_second)
    with pytest.raises(IngestError, match="simulated failure"):
        ingest([first, second], repo=repo, collection="u/erin/images")
    _assert_nothing_registered(repo, "u/erin/images")
    from lsst.daf.butler import Butler

    visits = Butler.from_config(repo).query_dimension_records(
        "visit", instrument="SkydeckUser", explain=False
    )
    assert list(visits) == []
