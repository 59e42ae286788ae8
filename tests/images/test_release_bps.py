"""The release pipeline through BPS + Parsl (loopback site) gives the same Object table."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from skydeck.images.release.bps import submit
from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

# A handful of pipetask processes plus Parsl start-up: about a minute on an idle
# 2-core machine, far more on a shared one; the global 600 s limit is too tight there.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _objects(butler, collection: str) -> pd.DataFrame:
    refs = butler.query_datasets("objectTable", collections=collection)
    frames = [butler.get(ref) for ref in refs]
    return pd.concat(frames).sort_values("objectId").reset_index(drop=True)


def test_bps_parsl_matches_pipetask_run(tiny_release, tmp_path):
    from lsst.daf.butler import Butler

    # Work on a copy: the session's release stays untouched.
    repo = tmp_path / "butler"
    shutil.copytree(str(tiny_release.butler_repo), repo)
    result = submit(str(repo), "skydeck/bps", tmp_path / "bps")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    butler = Butler.from_config(str(repo))
    try:
        in_process = _objects(butler, DEFAULT_COLLECTION)
        through_bps = _objects(butler, "skydeck/bps")
    finally:
        butler.close()
    assert len(in_process) > 0
    pd.testing.assert_frame_equal(through_bps, in_process)
