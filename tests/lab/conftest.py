"""Fixtures for the skydeck.lab tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.mini_release import build_mini_release


@pytest.fixture(scope="session")
def mini_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small published release with HATS ``Object`` and ``gaia_dr3`` (built once).

    Until the shared ``tiny_release`` (images, pipeline; minutes to build) is
    needed, the lab tests use this one (seconds).
    """
    return build_mini_release(tmp_path_factory.mktemp("mini") / "release")
