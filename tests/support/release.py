"""The ``tiny_release`` session fixture: a ``--size tiny`` release built once per session.

Set ``SKYDECK_TEST_RELEASE=/some/dir`` to keep the build between sessions: the
release is built into ``<dir>/release`` the first time and reused afterwards
(delete it after changing the release code: the BPS test compares a fresh pipeline
run with the cached one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skydeck.catalog.release import ReleaseLayout

#: Seed of the test release.
TINY_SEED = 1


def build_tiny(data_dir: Path) -> ReleaseLayout:
    """Build (or reuse) the tiny release in ``data_dir``."""
    from skydeck.images.release.build import BuildOptions, build_release

    return build_release(BuildOptions(data_dir=data_dir, size="tiny", seed=TINY_SEED))


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> ReleaseLayout:
    """A complete tiny release (ReleaseLayout), shared by the whole session."""
    cached = os.environ.get("SKYDECK_TEST_RELEASE")
    data_dir = Path(cached) if cached else tmp_path_factory.mktemp("tiny-release")
    layout = build_tiny(data_dir)
    assert layout.exists(), f"the tiny release build did not publish {layout.manifest_path}"
    return layout
