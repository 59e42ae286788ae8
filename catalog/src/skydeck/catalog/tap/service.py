"""The JupyterHub managed-service definition (entry point ``skydeck.services: tap``)."""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol

from skydeck.service import OBJECT_STORE_ENV

#: Hub environment variables handed on to the TAP service when set: the job database (e.g.
#: PostgreSQL in production) and the S3 endpoint/credentials of an object-store release.
FORWARDED_ENV = ("SKYDECK_TAP_DATABASE_URL", *OBJECT_STORE_ENV)


class _Context(Protocol):  # skydeck.hub.services.ServiceContext, without importing the hub
    name: str
    port: int
    state_dir: Any
    release_dir: Any
    hub_api_url: str
    public_url: str


def hub_service(context: _Context) -> dict[str, Any]:
    """Run ``python -m skydeck.catalog.tap`` behind the hub at ``/services/<name>/``."""
    # ServiceContext.host: loopback under ``skydeck up``, all interfaces in a Kubernetes pod.
    host = getattr(context, "host", "127.0.0.1")
    arguments = ["--host", host, "--port", str(context.port)]
    arguments += ["--release", str(context.release_dir), "--data-dir", str(context.state_dir)]
    # a hub killed outright cannot stop its services: this one then stops itself
    arguments += ["--auth", "hub", "--exit-with-parent"]
    environment = {
        "SKYDECK_TAP_RELEASE": str(context.release_dir),
        "SKYDECK_TAP_DATA_DIR": str(context.state_dir),
        # per-user limits come from the quota service when the hub runs one
        "SKYDECK_TAP_QUOTA_URL": f"{context.public_url.rstrip('/')}/services/quota/",
    }
    # JupyterHub starts managed services with a minimal environment: hand these on explicitly
    environment |= {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    return {
        "name": context.name,
        "command": [sys.executable, "-m", "skydeck.catalog.tap", *arguments],
        "environment": environment,
    }
