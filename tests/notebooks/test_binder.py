"""The Binder (repo2docker) configuration, checked without Docker.

Docker cannot run on the test machines, so the image is not built here.  What can
be checked for real is: the scripts parse, the locked export postBuild installs
from works, the commands postBuild calls exist with the options it passes, every
workspace member gets installed, and ``start`` really delivers the tutorials and
points the clients at the release.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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
    delivered = sorted(p.name for p in (home / "tutorials").glob("*.ipynb"))
    assert delivered == [p.name for p in list_notebooks()]
