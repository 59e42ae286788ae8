"""Production backends: PostgreSQL registry and S3 datastore for the release's Butler repo."""

from __future__ import annotations

import pytest

from skydeck.images.release._config import SIZES
from skydeck.images.release._geometry import detector_ids, detector_wcs, plan_visits
from skydeck.images.release.build import BuildOptions, build_release
from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

SIZE = SIZES["tiny"]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_build_with_postgres_registry_and_s3_datastore(tmp_path, postgres_url, s3_bucket):
    from lsst.daf.butler import Butler

    layout = build_release(
        BuildOptions(
            data_dir=tmp_path,
            size="tiny",
            seed=2,
            registry=postgres_url,
            datastore=f"s3://{s3_bucket}/butler",
        )
    )
    assert layout.exists()
    # The registry lives in PostgreSQL: its tables are in the database, not in SQLite.
    import sqlalchemy

    assert not (layout.butler_repo / "gen3.sqlite3").exists()
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sqlalchemy.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema LIKE 'skydeck_%'"
            )
        ).scalar_one()
    engine.dispose()
    assert tables > 10

    butler = Butler.from_config(str(layout.butler_repo), collections=DEFAULT_COLLECTION)
    try:
        plans = plan_visits(SIZE, 2)
        refs = butler.query_datasets("visit_image")
        assert len(refs) == len(plans) * len(detector_ids(SIZE))
        uri = butler.getURI(refs[0])
        assert uri.scheme == "s3"
        image = butler.get(refs[0])
        assert image.image.array.shape == (SIZE.detector_pixels, SIZE.detector_pixels)
        ra, dec = detector_wcs(SIZE, plans[0], 0).all_pix2world([280.0], [280.0], 0)
        hits = butler.query_datasets(
            "visit_image", where=f"visit_detector_region.region OVERLAPS POINT({ra[0]}, {dec[0]})"
        )
        assert len(hits) == len(plans)
        assert len(butler.query_datasets("objectTable")) > 0
    finally:
        butler.close()
    manifest = layout.read_manifest()
    assert manifest["registry"] == postgres_url
    assert manifest["catalogs"]["Object"]["rows"] > 0
