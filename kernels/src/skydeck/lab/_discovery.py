"""The discovery contract: how a lab learns where the platform's services are.

The spawner sets these environment variables (documented in kernels/README.md);
they are the only way ``skydeck.lab`` finds anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float_env(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Discovery:
    """Service locations as the spawner handed them to this lab."""

    release: str | None
    hub_url: str | None
    hub_api_url: str | None
    tap_url: str | None
    cutout_url: str | None
    gateway_url: str | None
    quota_url: str | None
    user: str | None
    #: ``gateway://host:port`` of dask-gateway's scheduler proxy (TLS, not HTTP).
    gateway_proxy_address: str | None = None
    #: URL prefix of this lab server (``/user/<name>/``), for links to proxied ports.
    service_prefix: str | None = None
    #: The lab's memory limit in bytes (JupyterHub's ``MEM_LIMIT``), if any.
    mem_limit: float | None = None
    #: The lab's CPU limit in cores (JupyterHub's ``CPU_LIMIT``), if any.
    cpu_limit: float | None = None

    @classmethod
    def from_env(cls) -> Discovery:
        env = os.environ
        return cls(
            release=env.get("SKYDECK_RELEASE"),
            hub_url=env.get("SKYDECK_HUB_URL"),
            hub_api_url=env.get("JUPYTERHUB_API_URL"),
            tap_url=env.get("SKYDECK_TAP_URL"),
            cutout_url=env.get("SKYDECK_CUTOUT_URL"),
            gateway_url=env.get("SKYDECK_GATEWAY_URL"),
            quota_url=env.get("SKYDECK_QUOTA_URL"),
            user=env.get("JUPYTERHUB_USER"),
            gateway_proxy_address=env.get("SKYDECK_GATEWAY_PROXY_ADDRESS"),
            service_prefix=env.get("JUPYTERHUB_SERVICE_PREFIX"),
            mem_limit=_float_env("MEM_LIMIT"),
            cpu_limit=_float_env("CPU_LIMIT"),
        )

    @property
    def api_token(self) -> str | None:
        """The user's hub token (never printed by `describe`)."""
        return os.environ.get("JUPYTERHUB_API_TOKEN")


def where() -> dict[str, str | None]:
    """Where this lab's data and services are, as a dictionary.

    >>> from skydeck.lab import where
    >>> where()["release"]  # doctest: +SKIP
    '/home/me/skydeck-data/release'
    """
    found = Discovery.from_env()
    return {
        "user": found.user,
        "release": found.release,
        "hub": found.hub_url,
        "tap": found.tap_url,
        "cutouts": found.cutout_url,
        "dask-gateway": found.gateway_url,
        "quota": found.quota_url,
    }
