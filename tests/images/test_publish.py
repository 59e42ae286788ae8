"""``skydeck data publish`` refuses what cannot work, before writing anything.

(Publishing for real, to moto's S3 and a PostgreSQL registry, and serving the
result: tests/e2e/test_production.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from skydeck.catalog.release import ReleaseLayout
from skydeck.images.cli import data
from skydeck.images.publish import PublishError, publish_release

REGISTRY = "postgresql://skydeck@127.0.0.1:5/registry"


def _fake_release(root: Path) -> ReleaseLayout:
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"catalogs": {}}))
    return ReleaseLayout.at(root)


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("sqlite:///registry.sqlite3", "needs its Butler registry in PostgreSQL"),
        ("postgresql://skydeck:hunter2@db/registry", "contains a password"),
        ("not a url", "is not a database URL"),
    ],
)
def test_registry_must_be_postgres_without_password(
    tmp_path: Path, registry: str, message: str
) -> None:
    source = _fake_release(tmp_path / "release")
    with pytest.raises(PublishError, match=message):
        publish_release(source, str(tmp_path / "target"), registry)
    assert not (tmp_path / "target").exists()


def test_nothing_to_publish(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="build one first with `skydeck data build`"):
        publish_release(ReleaseLayout.at(tmp_path / "release"), str(tmp_path / "t"), REGISTRY)


def test_a_published_release_is_never_overwritten(tmp_path: Path) -> None:
    source = _fake_release(tmp_path / "release")
    _fake_release(tmp_path / "target")
    with pytest.raises(PublishError, match="a release is already published at"):
        publish_release(source, str(tmp_path / "target"), REGISTRY)


def test_cli_reports_errors_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        data,
        ["publish", "--data-dir", str(tmp_path), "--to", "s3://b/dr1", "--registry", REGISTRY],
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith("skydeck data publish: error: no release to publish")
    assert len(result.output.strip().splitlines()) == 1


def test_info_reads_a_release_anywhere(tmp_path: Path) -> None:
    missing = CliRunner().invoke(data, ["info", "--release", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "No Skydeck data release at" in missing.output
    _fake_release(tmp_path / "elsewhere")
    found = CliRunner().invoke(data, ["info", "--release", str(tmp_path / "elsewhere")])
    assert found.exit_code == 0, found.output
    assert f"Release at {tmp_path / 'elsewhere'}" in found.output


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_an_interrupted_publish_is_run_again(
    tiny_release: ReleaseLayout, postgres_url: str, s3_bucket: str
) -> None:
    """Until the manifest is written nothing counts as published; a rerun replaces it all."""
    from lsst.daf.butler import Butler

    target = f"s3://{s3_bucket}/dr1"
    first = publish_release(tiny_release, target, postgres_url)
    first.manifest_path.unlink()  # as if the publish had stopped before its last step
    assert not first.exists()
    again = publish_release(tiny_release, target, postgres_url)
    assert again.exists()
    source = Butler.from_config(str(tiny_release.butler_repo))
    published = Butler.from_config(str(again.butler_repo), collections="skydeck/drp")
    try:
        refs = published.query_datasets("deepCoadd", limit=None)
        assert len(refs) == len(source.query_datasets("deepCoadd", "skydeck/drp", limit=None))
        assert published.getURI(refs[0]).geturl().startswith(f"{target}/butler/")
        coadd = published.get(refs[0])
        assert coadd.image.array.shape == source.get(refs[0]).image.array.shape
    finally:
        source.close()
        published.close()
    with pytest.raises(PublishError, match="already published"):
        publish_release(tiny_release, target, postgres_url)
