"""Atomicity: a build killed part way never leaves a half release; a rerun says what it does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skydeck.catalog.release import ReleaseLayout

pytestmark = pytest.mark.slow


def _start(data_dir: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "skydeck.hub", "data", "build", "--data-dir", str(data_dir)]
    return subprocess.Popen(
        [*cmd, "--size", "tiny", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_killed_build_leaves_no_release_and_rerun_resumes(tmp_path):
    layout = ReleaseLayout.in_data_dir(tmp_path)
    proc = _start(tmp_path)
    # Kill it while it is writing the Butler repository (mid-stage).
    _wait_for(tmp_path / "release.staging" / "butler" / "butler.yaml", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not layout.exists()
    assert not (tmp_path / "release").exists()
    assert (tmp_path / "release.staging").exists()

    # A rerun says whether it resumes or starts clean; stop it once it has said so.
    proc = _start(tmp_path)
    assert proc.stdout is not None
    said = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        said += line
        if "Resuming" in said or "Starting" in said or not line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert "Resuming the interrupted build" in said or "Starting clean" in said, said
    assert not (tmp_path / "release").exists()


def test_a_foreign_release_directory_is_refused(tmp_path):
    from skydeck.images.release.build import BuildError, BuildOptions, build_release

    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "something").write_text("not a release")
    with pytest.raises(BuildError, match="not a Skydeck release"):
        build_release(BuildOptions(tmp_path, size="tiny"))
    assert not (tmp_path / "release.staging").exists()


def test_unknown_size_is_refused(tmp_path):
    from skydeck.images.release.build import BuildError, BuildOptions, build_release

    with pytest.raises(BuildError, match="unknown release size"):
        build_release(BuildOptions(tmp_path, size="huge"))


def test_cli_lists_the_build_command():
    result = subprocess.run(
        [sys.executable, "-m", "skydeck.hub", "data", "build", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--data-dir", "--size", "--seed", "--registry", "--datastore"):
        assert option in result.stdout
