"""The component boundaries of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: component source folder -> (its package, the skydeck packages it may import)
ALLOWED = {
    "hub/src/skydeck/hub": ("skydeck.hub", set()),
    "catalog/src/skydeck/catalog": ("skydeck.catalog", set()),
    "images/src/skydeck/images": ("skydeck.images", {"skydeck.catalog"}),
    "kernels/src/skydeck/lab": ("skydeck.lab", {"skydeck.images", "skydeck.catalog"}),
}

#: heavy science libraries a member must not depend on (or import)
FORBIDDEN_DEPENDENCIES = {
    "hub": {
        "lsdb",
        "hats",
        "hats-import",
        "lsst-daf-butler",
        "galsim",
        "skydeck-lab",
        "skydeck-catalog",
        "skydeck-images",
    },
    "catalog": {"skydeck-hub", "skydeck-lab", "skydeck-images", "jupyterhub"},
    "images": {"skydeck-hub", "skydeck-lab", "jupyterhub"},
    "kernels": {"skydeck-hub", "jupyterhub-kubespawner", "oauthenticator", "dask-gateway-server"},
}


def skydeck_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(".".join(n.split(".")[:2]) for n in names if n.startswith("skydeck."))
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_component_imports_only_what_it_may(folder: str) -> None:
    own, allowed = ALLOWED[folder]
    bad = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / folder).rglob("*.py")
        for name in skydeck_imports(path)
        if name != own and name not in allowed
    }
    assert not bad, sorted(bad)


def test_no_namespace_init_files() -> None:
    inits = [p for p in ROOT.glob("*/src/skydeck/__init__.py")]
    assert not inits, "skydeck is an implicit namespace package"


@pytest.mark.parametrize("member", sorted(FORBIDDEN_DEPENDENCIES))
def test_member_dependencies_are_honest(member: str) -> None:
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
    names = {
        dep.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for dep in project.get("dependencies", [])
    }
    assert not names & FORBIDDEN_DEPENDENCIES[member]
