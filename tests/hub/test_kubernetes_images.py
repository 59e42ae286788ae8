"""The hub and lab image Dockerfiles, checked as text.

Docker cannot build here (no daemon), so nothing proves the images build; these
checks catch what text can: pinned base images, sources that exist, the lock used
frozen, a non-root user, and a build context that leaves out local environments.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "hub" / "Dockerfile"
LAB = REPO / "hub" / "deploy" / "lab" / "Dockerfile"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _args(path: Path) -> dict[str, str]:
    return dict(
        rest.split("=", 1)
        for keyword, rest in _instructions(path)
        if keyword == "ARG" and "=" in rest
    )


@pytest.mark.parametrize("path", [HUB, LAB], ids=["hub", "lab"])
def test_dockerfile_is_pinned_frozen_and_non_root(path: Path) -> None:
    instructions = _instructions(path)
    keywords = {k for k, _ in instructions}
    assert keywords <= {"ARG", "FROM", "USER", "COPY", "RUN", "WORKDIR", "ENV", "ENTRYPOINT", "CMD"}
    args = _args(path)
    for keyword, rest in instructions:
        if keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
            assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), f"unpinned base image {image}"
        if keyword == "COPY":
            words = shlex.split(rest)
            from_stage = any(w.startswith("--from=") for w in words)
            sources = [w for w in words if not w.startswith("--")][:-1]
            if from_stage:
                image = next(w for w in words if w.startswith("--from=")).removeprefix("--from=")
                assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), f"unpinned image {image}"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"{path.name} copies missing {source}"
        if keyword == "RUN" and "uv " in rest:
            assert "--frozen" in rest and "--no-dev" in rest, rest
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    final_user = users[-1]
    final_user = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], final_user)
    assert final_user not in ("root", "0"), "the image must not run as root"


def test_hub_image_is_the_chart_hub_image_plus_skydeck_hub() -> None:
    instructions = _instructions(HUB)
    (base,) = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert base.startswith("quay.io/jupyterhub/k8s-hub:")
    run = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "uv export --frozen --no-dev --package skydeck-hub" in run
    assert "pip install --no-cache-dir --no-deps ./hub" in run
    # Every workspace member's manifest is copied, so uv can read the lock.
    root = (REPO / "pyproject.toml").read_text()
    members = re.search(r"members = \[(.*?)\]", root, re.S)
    assert members
    copied = " ".join(rest for keyword, rest in instructions if keyword == "COPY")
    for member in re.findall(r'"([^"]+)"', members.group(1)):
        assert f"{member}/pyproject.toml" in copied, (
            f"hub/Dockerfile misses {member}/pyproject.toml"
        )


def test_images_match_the_helm_values() -> None:
    values = yaml.safe_load((REPO / "hub" / "deploy" / "helm" / "skydeck-values.yaml").read_text())
    hub_tag = f"{values['hub']['image']['name']}:{values['hub']['image']['tag']}"
    lab = values["singleuser"]["image"]
    lab_tag = f"{lab['name']}:{lab['tag']}"
    assert f"-t {hub_tag} ." in HUB.read_text()
    assert f"-t {lab_tag} ." in LAB.read_text()
    instructions = _instructions(LAB)
    assert ("CMD", '["jupyterhub-singleuser"]') in instructions
    # The lab's user matches the uid the hub config gives KubeSpawner.
    assert _args(LAB)["NB_UID"] == str(values["hub"]["config"]["KubeSpawner"]["uid"])


def test_build_context_leaves_out_local_environments() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in ("**/.venv", "**/node_modules", ".git", "skydeck-data"):
        assert entry in ignored


def test_hub_image_gets_what_the_hub_config_imports() -> None:
    """The lock's export for skydeck-hub (what hub/Dockerfile installs) has the production
    backends the chart's hub config uses: KubeSpawner, GitHub login, PostgreSQL."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to export the lock (https://docs.astral.sh/uv/)"
    command = [uv, "export", "--frozen", "--no-dev", "--package", "skydeck-hub"]
    exported = subprocess.run(
        [*command, "--no-emit-workspace", "--no-hashes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {
        re.split(r"[=<>\[; ]", line, maxsplit=1)[0].lower()
        for line in exported.splitlines()
        if line and not line.startswith((" ", "#", "-"))
    }
    needed = {"jupyterhub", "jupyterhub-kubespawner", "oauthenticator", "psycopg", "sqlalchemy"}
    assert needed <= names, f"missing from the hub image: {sorted(needed - names)}"
    assert "psycopg-binary" in names  # no compiler or libpq headers in the hub image
    assert "lsdb" not in names  # the hub image stays free of the science stack


def test_lab_image_dockerfile_is_not_in_binder() -> None:
    """repo2docker ignores every other binder/ file when binder/ has a Dockerfile."""
    assert not (REPO / "binder" / "Dockerfile").exists()
