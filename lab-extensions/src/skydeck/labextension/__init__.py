"""Skydeck's JupyterLab extension: the server half.

The browser half (TypeScript, in ``lab-extensions/ts``) is shipped as the
prebuilt lab extension ``skydeck-labextension``; this package is its Jupyter
server extension, enabled automatically through
``etc/jupyter/jupyter_server_config.d/skydeck-labextension.json``.  It adds
routes under ``<base_url>skydeck/api/`` (documented in lab-extensions/README.md):
tutorials (list and copy into the home), proxies to the TAP and quota services
that add the user's hub token, the status-bar figures and a keep-alive.
"""

from __future__ import annotations

from typing import Any

from skydeck.labextension._app import SkydeckLabConfig, load_extension

__all__ = ["SkydeckLabConfig"]

#: The npm package name, which is also the lab extension's directory name.
LABEXTENSION_NAME = "skydeck-labextension"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt lab extension is (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension this package provides."""
    return [{"module": "skydeck.labextension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add Skydeck's routes to a running Jupyter server."""
    load_extension(serverapp)
