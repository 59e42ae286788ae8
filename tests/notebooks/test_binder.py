"""The Binder (repo2docker) configuration, checked without Docker.

Docker cannot run on the test machines, so the image is not built here.  What can
be checked for real is: the scripts parse, the locked export postBuild installs
from works, the commands postBuild calls exist with the options it passes, every
workspace member gets installed, and ``start`` really delivers the tutorials and
points the clients at the release.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from skydeck.catalog.release import ReleaseLayout
from support.hub import free_port
from support.notebooks import REPO, list_notebooks

BINDER = REPO / "binder"


def read(name: str) -> str:
    return (BINDER / name).read_text()


@pytest.mark.parametrize("script", ["postBuild", "start"])
def test_scripts_are_strict_executable_bash(script: str) -> None:
    path = BINDER / script
    assert os.access(path, os.X_OK), f"binder/{script} must be executable (repo2docker runs it)"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_python_version_matches_the_project() -> None:
    runtime = read("runtime.txt").strip()
    assert runtime == "python-3.12"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.12"


def test_postbuild_installs_every_member_from_the_lock(tmp_path: Path) -> None:
    text = read("postBuild")
    export = next(line for line in text.splitlines() if line.startswith("uv export"))
    assert "--frozen" in export, "install exactly what uv.lock pins"
    continuation = text[text.index(export) :].split("\n", 2)[1].strip()
    args = shlex.split(export.rstrip("\\")) + shlex.split(continuation)
    out = tmp_path / "requirements.txt"
    args[args.index("--output-file") + 1] = str(out)
    subprocess.run(args, cwd=REPO, check=True, capture_output=True)
    pins = out.read_text()
    for package in ("lsst-daf-butler", "lsdb", "jupyterlab", "nbgitpuller", "pyvo"):
        assert re.search(rf"^{package}==", pins, re.M), f"{package} missing from the export"

    members = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]
    install = next(line for line in text.splitlines() if "--no-deps" in line)
    installed = {word.removeprefix("./") for word in shlex.split(install) if word.startswith("./")}
    assert installed == set(members), "postBuild must install every workspace member"


def test_postbuild_calls_real_commands() -> None:
    text = read("postBuild")
    build = next(line for line in text.splitlines() if line.startswith("skydeck data build"))
    assert "--size tiny" in build
    help_text = subprocess.run(
        [sys.executable, "-m", "skydeck.hub", "data", "build", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for option in re.findall(r"(--[a-z-]+)", build):
        assert option in help_text, f"`skydeck data build` has no {option}"
    default_url = re.search(r'default_url = "/lab/tree/(.+?)"', text)
    assert default_url, "postBuild sets the lab's default URL"
    first = default_url.group(1)
    assert first.startswith("tutorials/")
    assert (REPO / "notebooks" / first.removeprefix("tutorials/")).exists()


def test_start_delivers_tutorials_and_points_at_the_release(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "REPO_DIR": str(REPO),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    # No release in this home: start delivers the tutorials but starts no TAP service.
    result = subprocess.run(
        ["bash", str(BINDER / "start"), "env"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert seen["SKYDECK_RELEASE"] == str(home / "skydeck-data" / "release")
    assert "SKYDECK_TAP_URL" not in seen
    delivered = sorted(p.name for p in (home / "tutorials").glob("*.ipynb"))
    assert delivered == [p.name for p in list_notebooks()]


_QUERY_TAP = """
import time, requests
import skydeck.lab as sl
url = sl.where()["tap"]
deadline = time.monotonic() + 120
while True:
    try:
        if requests.get(url + "availability", timeout=5).ok:
            break
    except requests.ConnectionError:
        pass
    assert time.monotonic() < deadline, "the TAP service started by binder/start did not answer"
    time.sleep(0.5)
rows = sl.get_tap_service().search("SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.Object").to_table()
print("objects", int(rows["n"][0]))
"""


@pytest.mark.slow
def test_start_serves_tap_over_the_release(tiny_release: ReleaseLayout, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "REPO_DIR": str(REPO),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SKYDECK_RELEASE": str(tiny_release.root),
        "SKYDECK_BINDER_TAP_PORT": str(free_port()),
    }
    pid_file = home / ".skydeck" / "tap" / "tap.pid"
    try:
        result = subprocess.run(
            ["bash", str(BINDER / "start"), sys.executable, "-c", _QUERY_TAP],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = sum(e.rows for e in tiny_release.catalogs() if e.name == "Object")
    assert f"objects {expected}" in result.stdout
