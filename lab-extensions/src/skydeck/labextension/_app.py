"""Configuration of the server extension and wiring of its routes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join
from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from skydeck.labextension._status import StatusService
from skydeck.labextension._tutorials import TutorialLibrary
from skydeck.labextension._upstream import Upstream

#: Where a wheel install may carry the tutorials (``share/skydeck/tutorials``).
SHARED_TUTORIALS = Path(sys.prefix) / "share" / "skydeck" / "tutorials"
#: The repository's ``notebooks/`` folder, for a workspace (editable) checkout.
REPO_TUTORIALS = Path(__file__).resolve().parents[4] / "notebooks"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


class SkydeckLabConfig(LoggingConfigurable):
    """Settings of Skydeck's lab server extension (``c.SkydeckLabConfig.<trait>``)."""

    tutorials_dir = Unicode(
        config=True,
        help="""
        Folder holding the tutorial notebooks offered in the Tutorials menu and the
        launcher.  Default: $SKYDECK_TUTORIALS_DIR; else <sys.prefix>/share/skydeck/tutorials
        when it exists; else the repository's notebooks/ folder (workspace checkout).
        An empty or missing folder means no tutorials are offered.
        """,
    )

    @default("tutorials_dir")
    def _default_tutorials_dir(self) -> str:
        from_env = os.environ.get("SKYDECK_TUTORIALS_DIR", "").strip()
        if from_env:
            return from_env
        for candidate in (SHARED_TUTORIALS, REPO_TUTORIALS):
            if candidate.is_dir():
                return str(candidate)
        return ""

    tutorials_subdir = Unicode(
        "tutorials",
        config=True,
        help="Folder, relative to the server's root (the user's home), tutorials are copied to.",
    )

    tap_url = Unicode(
        config=True,
        help="Base URL of the TAP service (ends with '/'). Default: $SKYDECK_TAP_URL.",
    )

    @default("tap_url")
    def _default_tap_url(self) -> str:
        return os.environ.get("SKYDECK_TAP_URL", "")

    quota_url = Unicode(
        config=True,
        help="Base URL of the quota service (ends with '/'). Default: $SKYDECK_QUOTA_URL.",
    )

    @default("quota_url")
    def _default_quota_url(self) -> str:
        return os.environ.get("SKYDECK_QUOTA_URL", "")

    quota_path = Unicode(
        "api/status",
        config=True,
        help="""
        Path under quota_url of the JSON document with the user's own limits and usage
        (shape documented in lab-extensions/README.md).
        """,
    )

    api_token = Unicode(
        config=True,
        help="Token sent to the TAP and quota services. Default: $JUPYTERHUB_API_TOKEN.",
    )

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    idle_timeout = Integer(
        0,
        config=True,
        help="""
        Seconds of inactivity after which the hub's idle culler stops this server
        (0: no culler).  Default: $SKYDECK_IDLE_TIMEOUT, set by the spawner.
        """,
    )

    @default("idle_timeout")
    def _default_idle_timeout(self) -> int:
        return _env_int("SKYDECK_IDLE_TIMEOUT") or 0

    keepalive_warning = Integer(
        900,
        config=True,
        help="Show the keep-alive control this many seconds before the culler would act.",
    )

    memory_limit = Integer(
        0,
        config=True,
        help="""
        Memory limit of this server in bytes, when the quota service does not say
        (0: none).  Default: $MEM_LIMIT, which JupyterHub spawners set.
        """,
    )

    @default("memory_limit")
    def _default_memory_limit(self) -> int:
        return _env_int("MEM_LIMIT") or 0

    upstream_timeout = Float(
        30.0,
        config=True,
        help="Seconds to wait for the TAP or quota service before answering 504.",
    )


def load_extension(serverapp: Any) -> None:
    """Build the services from the configuration and add the handlers."""
    from skydeck.labextension import _handlers

    config = SkydeckLabConfig(parent=serverapp)
    web_app = serverapp.web_app
    root_dir = Path(os.path.expanduser(serverapp.root_dir)).resolve()
    tutorials = TutorialLibrary(
        source=Path(config.tutorials_dir) if config.tutorials_dir else None,
        home=root_dir,
        subdir=config.tutorials_subdir,
    )
    tap = Upstream(
        "TAP", "SKYDECK_TAP_URL", config.tap_url, config.api_token, config.upstream_timeout
    )
    quota = Upstream(
        "quota", "SKYDECK_QUOTA_URL", config.quota_url, config.api_token, config.upstream_timeout
    )
    status = StatusService(
        quota=quota,
        quota_path=config.quota_path,
        home=root_dir,
        idle_timeout=config.idle_timeout,
        keepalive_warning=config.keepalive_warning,
        memory_limit=config.memory_limit or None,
        last_activity=web_app.last_activity,
    )
    base = url_path_join(web_app.settings["base_url"], "skydeck", "api")
    context = {
        "tutorials": tutorials,
        "tap": tap,
        "quota": quota,
        "status": status,
        "quota_path": config.quota_path,
    }
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base, route), handler, context) for route, handler in _handlers.ROUTES],
    )
    serverapp.log.info(
        "Skydeck lab extension: tutorials from %s, TAP %s, quota %s",
        config.tutorials_dir or "(none)",
        config.tap_url or "(none)",
        config.quota_url or "(none)",
    )
