"""The tiny data release: Butler contents, image round trip, accuracy against truth, HATS."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from skydeck.catalog.release import ReleaseLayout
from skydeck.images.release._config import BANDS, SIZES
from skydeck.images.release._geometry import (
    SkyMapSpec,
    detector_ids,
    detector_wcs,
    plan_visits,
)
from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

pytestmark = pytest.mark.slow

SIZE = SIZES["tiny"]
SEED = 1


def _butler(layout: ReleaseLayout):
    from lsst.daf.butler import Butler

    return Butler.from_config(str(layout.butler_repo), collections=DEFAULT_COLLECTION)


def _concat(butler, name: str) -> pd.DataFrame:
    return pd.concat([butler.get(r) for r in butler.query_datasets(name)], ignore_index=True)


@pytest.fixture(scope="module")
def butler(tiny_release):
    b = _butler(tiny_release)
    yield b
    b.close()


@pytest.fixture(scope="module")
def matched(butler) -> pd.DataFrame:
    """Truth stars matched to primary Objects, with truth and measured columns."""
    objects = _concat(butler, "objectTable")
    matches = _concat(butler, "MatchesTruth")
    truth = butler.get("truth_catalog")
    truth["id"] = truth["id"].astype(str)
    m = matches[matches["match_candidate"]].merge(
        objects, left_on="match_objectId", right_on="objectId"
    )
    return m.merge(truth, on="id", suffixes=("", "_truth"))


def test_dataset_counts(butler):
    n_visits = len(plan_visits(SIZE, SEED))
    n_dets = len(detector_ids(SIZE))
    n_patches = len(SkyMapSpec.for_size(SIZE).patches())
    counts = {
        name: len(butler.query_datasets(name, explain=False))
        for name in (
            "visit_image",
            "sourceTable",
            "deepCoadd",
            "deepCoadd_meas",
            "forcedSourceTable",
            "objectTable",
            "MatchesTruth",
            "TruthSummary",
            "truth_catalog",
            "skyMap",
        )
    }
    assert counts == {
        "visit_image": n_visits * n_dets,
        "sourceTable": n_visits * n_dets,
        "deepCoadd": n_patches * len(BANDS),
        "deepCoadd_meas": n_patches,
        "forcedSourceTable": n_visits * n_dets,
        "objectTable": n_patches,
        "MatchesTruth": n_patches,
        "TruthSummary": n_patches,
        "truth_catalog": 1,
        "skyMap": 1,
    }


def test_spatial_query_returns_exactly_the_overlapping_images(butler):
    plans = plan_visits(SIZE, SEED)
    n = SIZE.detector_pixels
    # A point near a corner of the field, so that dithers put it on some images only.
    ra, dec = detector_wcs(SIZE, plans[0], 0).all_pix2world([8.0], [n - 9.0], 0)
    expected = set()
    for plan in plans:
        for det in detector_ids(SIZE):
            x, y = detector_wcs(SIZE, plan, det).all_world2pix(ra, dec, 0)
            if -0.5 <= x[0] <= n - 0.5 and -0.5 <= y[0] <= n - 0.5:
                expected.add((plan.visit, det))
    refs = butler.query_datasets(
        "visit_image",
        where=f"visit_detector_region.region OVERLAPS POINT({ra[0]}, {dec[0]})",
    )
    found = {(r.dataId["visit"], r.dataId["detector"]) for r in refs}
    assert 0 < len(expected) < len(plans)
    assert found == expected


def test_image_round_trip_with_wcs(butler, tiny_release):
    from lsst.images import Box

    from skydeck.images.release.simulate import render_visit

    plans = plan_visits(SIZE, SEED)
    plan = plans[3]
    stored = butler.get("visit_image", instrument="SkydeckCam", visit=plan.visit, detector=0)
    fresh = render_visit(SIZE, plan, 0, butler.get("truth_catalog"), SEED)
    # Image and variance are stored quantized to 1/16 of the noise (as Rubin stores its
    # images): equal to what was rendered within half a quantization step; the mask exactly.
    sigma = np.sqrt(fresh.variance.array)
    image_error = np.abs(stored.image.array - fresh.image.array) / sigma
    assert 0 < image_error.max() <= 0.5 / 16 * 1.2
    variance_error = np.abs(stored.variance.array - fresh.variance.array) / fresh.variance.array
    assert variance_error.max() < 1e-3
    np.testing.assert_array_equal(stored.mask.array, fresh.mask.array)
    wcs = detector_wcs(SIZE, plan, 0)
    xs = np.array([0.0, 100.5, SIZE.detector_pixels - 1.0])
    ys = np.array([3.0, 250.25, SIZE.detector_pixels - 1.0])
    ra0, dec0 = wcs.all_pix2world(xs, ys, 0)
    ra1, dec1 = stored.fits_wcs.all_pix2world(xs, ys, 0)
    np.testing.assert_allclose(ra1, ra0, atol=1e-9)
    np.testing.assert_allclose(dec1, dec0, atol=1e-9)
    assert stored.image.unit.to_string() == "nJy"
    # Partial read: a sub-box comes back with the same pixels.
    box = Box.factory[10:60, 20:90]
    part = butler.get(
        "visit_image",
        instrument="SkydeckCam",
        visit=plan.visit,
        detector=0,
        parameters={"bbox": box},
    )
    np.testing.assert_array_equal(part.image.array, stored.image.array[10:60, 20:90])


def test_star_astrometry(matched):
    stars = matched[(matched["truth_type"] == 1)]
    ref = stars["refBand"].to_numpy()
    flux = np.array([stars[f"{b}_psfFlux"].iloc[k] for k, b in enumerate(ref)])
    err = np.array([stars[f"{b}_psfFluxErr"].iloc[k] for k, b in enumerate(ref)])
    bright = stars[flux / err > 20]
    assert len(bright) >= 10
    dra = (bright["coord_ra"] - bright["ra_truth"]) * np.cos(np.radians(bright["dec_truth"]))
    ddec = bright["coord_dec"] - bright["dec_truth"]
    offset = np.hypot(dra, ddec) * 3600.0
    assert np.median(offset) <= 0.05


def test_star_photometry(matched):
    stars = matched[(matched["truth_type"] == 1) & ~matched["is_variable"].astype(bool)]
    pulls, ratios = [], []
    for band in BANDS:
        f, e, t = stars[f"{band}_psfFlux"], stars[f"{band}_psfFluxErr"], stars[f"flux_{band}"]
        sel = (f / e > 20) & ~stars[f"{band}_pixelFlags_saturatedCenter"].astype(bool)
        pulls.append(((f - t) / e)[sel])
        ratios.append((f / t - 1.0)[sel])
    pull = pd.concat(pulls)
    ratio = pd.concat(ratios)
    assert len(pull) >= 50
    width = 1.4826 * np.median(np.abs(pull - np.median(pull)))
    assert 0.75 <= width <= 1.3, width
    assert abs(np.median(ratio)) < 0.01


def test_hats_catalogs_match_pipeline_outputs(tiny_release, butler):
    import lsdb

    manifest = tiny_release.read_manifest()
    expected = {
        "Object": len(_concat(butler, "objectTable")),
        "Source": len(_concat(butler, "sourceTable")),
        "ForcedSource": len(_concat(butler, "forcedSourceTable")),
        "TruthSummary": len(_concat(butler, "TruthSummary")),
        "MatchesTruth": len(_concat(butler, "MatchesTruth")),
        "Visit": len(plan_visits(SIZE, SEED)),
        "CcdVisit": len(plan_visits(SIZE, SEED)) * len(detector_ids(SIZE)),
    }
    for entry in tiny_release.catalogs():
        catalog = lsdb.open_catalog(str(tiny_release.root / entry.path))
        rows = len(catalog.compute())
        assert rows == entry.rows, entry.name
        if entry.name in expected:
            assert rows == expected[entry.name], entry.name
        assert (tiny_release.root / entry.schema).exists()
    assert manifest["catalogs"]["gaia_dr3"]["rows"] == 482_176
    for name in ("Object", "Source", "TruthSummary"):
        with_margin = lsdb.open_catalog(
            str(tiny_release.catalog_path(name)),
            margin_cache=str(tiny_release.hats_dir / f"{name}_10arcs"),
        )
        assert with_margin.margin is not None, name


def _dp02_columns() -> dict[str, dict[str, dict]]:
    from skydeck.catalog.schema import dp02_schema

    return {t["name"]: {c["name"]: c for c in t["columns"]} for t in dp02_schema()["tables"]}


def test_published_columns_and_units_follow_dp02(tiny_release):
    import lsdb

    dp02 = _dp02_columns()
    published = yaml.safe_load((tiny_release.schema_dir / "dp02_skydeck.yaml").read_text())
    extras = {"TruthSummary": {"period", "amplitude"}, "MatchesTruth": {"ra", "dec"}}
    for table in published["tables"]:
        name = table["name"]
        catalog = lsdb.open_catalog(str(tiny_release.catalog_path(name)))
        columns = set(catalog.columns) | {"_healpix_29"}
        described = {c["name"] for c in table["columns"]}
        assert described == columns, name
        for col in table["columns"]:
            if col["name"] == "_healpix_29" or col["name"] in extras.get(name, set()):
                continue
            ref = dp02[name][col["name"]]
            assert col.get("fits:tunit") == ref.get("fits:tunit"), (name, col["name"])
            assert col["datatype"] == ref["datatype"], (name, col["name"])
    obj = {c["name"]: c for c in published["tables"][0]["columns"]}
    for required in ("objectId", "coord_ra", "coord_dec", "detect_isPrimary", "refExtendedness"):
        assert required in obj
    for band in BANDS:
        for col in ("psfFlux", "psfFluxErr", "cModelFlux"):
            assert obj[f"{band}_{col}"]["fits:tunit"] == "nJy"
    forced = next(t for t in published["tables"] if t["name"] == "ForcedSource")
    names = {c["name"] for c in forced["columns"]}
    assert {"forcedSourceId", "objectId", "ccdVisitId", "band", "psfFlux", "psfFluxErr"} <= names


def test_gaia_dr3_columns_are_magnitudes_and_licensed(tiny_release):
    import lsdb

    from skydeck.catalog.hats_build import check_gaia_columns

    gaia = lsdb.open_catalog(str(tiny_release.catalog_path("gaia_dr3"))).compute()
    facts = check_gaia_columns(gaia)
    # Magnitudes: positive, a few mag around G, strongly correlated with G; RP brighter than
    # BP for nearly all stars (stars are redder than the Vega zero point on average).
    assert facts["bp_min"] > 0 and facts["rp_min"] > 0
    assert facts["corr_bp_g"] > 0.8 and facts["corr_rp_g"] > 0.8
    assert 0.5 < facts["median_bp_minus_rp"] < 2.0
    assert facts["fraction_rp_brighter_than_bp"] > 0.9
    text = (tiny_release.licenses_dir / "gaia_dr3.txt").read_text()
    assert "CC BY-SA 3.0 IGO" in text and "ESA/Gaia/DPAC" in text


def test_manifest_lists_schemas(tiny_release):
    manifest = json.loads(tiny_release.manifest_path.read_text())
    for path in manifest["schemas"]:
        assert (tiny_release.root / path).exists()
    from skydeck.catalog.schema import validate

    for path in manifest["schemas"]:
        validate(yaml.safe_load((tiny_release.root / path).read_text()))


def test_truth_is_deterministic():
    from skydeck.images.release.truth import make_truth

    pd.testing.assert_frame_equal(make_truth(SIZE, 7), make_truth(SIZE, 7))
    assert not make_truth(SIZE, 7).equals(make_truth(SIZE, 8))
