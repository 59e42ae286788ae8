"""The component boundaries of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The services' shared layer (hub/service): every service may import it; it imports
#: nothing of ours.
SHARED = "skydeck.service"

#: component source folder -> (its package, the skydeck packages it may import)
ALLOWED = {
    "hub/service/src/skydeck/service": (SHARED, set()),
    "hub/src/skydeck/hub": ("skydeck.hub", {SHARED}),
    "catalog/src/skydeck/catalog": ("skydeck.catalog", {SHARED}),
    "images/src/skydeck/images": ("skydeck.images", {SHARED, "skydeck.catalog"}),
    "kernels/src/skydeck/lab": ("skydeck.lab", {"skydeck.images", "skydeck.catalog"}),
}

#: heavy science libraries a member must not depend on (or import)
FORBIDDEN_DEPENDENCIES = {
    "hub/service": {
        "skydeck-hub",
        "skydeck-lab",
        "skydeck-catalog",
        "skydeck-images",
        "lsdb",
        "hats",
        "duckdb",
        "lsst-daf-butler",
        "galsim",
        "fastapi",
    },
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
    inits = [*ROOT.glob("*/src/skydeck/__init__.py"), *ROOT.glob("*/*/src/skydeck/__init__.py")]
    assert not inits, "skydeck is an implicit namespace package"


@pytest.mark.parametrize("member", sorted(FORBIDDEN_DEPENDENCIES))
def test_member_dependencies_are_honest(member: str) -> None:
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
    names = {
        dep.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for dep in project.get("dependencies", [])
    }
    assert not names & FORBIDDEN_DEPENDENCIES[member]


@pytest.mark.parametrize("member", ["hub", "catalog", "images"])
def test_services_share_one_layer(member: str) -> None:
    """Hub auth, the quota client and the exit-with-parent watcher exist once, in the layer."""
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
    assert "skydeck-service" in project["dependencies"]
    copies = {
        f"{path.relative_to(ROOT)}: {needle}"
        for path in (ROOT / member / "src").rglob("*.py")
        for needle in ("def exit_with_parent", '/user"', "class HubAuth", "class QuotaClient(")
        if needle in path.read_text()
    }
    # TAP's QuotaClient is a thin view (its tap limits) over the shared client
    copies.discard("catalog/src/skydeck/catalog/tap/_quota.py: class QuotaClient(")
    assert not copies, sorted(copies)
