"""Unit tests of what ``skydeck up`` checks and creates before starting anything."""

from __future__ import annotations

import stat

import pytest

from skydeck.hub.datadir import DataDir, DataDirError
from skydeck.hub.preflight import PreflightError, check_python


def test_old_python_is_refused_with_what_to_do() -> None:
    with pytest.raises(PreflightError, match=r"needs Python 3\.12 or newer, found 3\.11"):
        check_python((3, 11))
    check_python((3, 12))
    check_python((3, 13))


def test_credentials_are_private_and_generated_once(tmp_path) -> None:
    data = DataDir(tmp_path / "data")
    data.prepare()
    first, created = data.load_or_create_credentials()
    assert created
    assert stat.S_IMODE(data.credentials_path.stat().st_mode) == 0o600
    assert len(first.admin_password) >= 32  # JupyterHub's minimum for admin passwords
    again, created_again = data.load_or_create_credentials()
    assert (again, created_again) == (first, False)


def test_data_dir_that_cannot_be_created(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataDirError, match="not writable"):
        DataDir(blocker / "data").prepare()
