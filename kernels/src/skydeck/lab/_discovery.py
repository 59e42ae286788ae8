"""The discovery contract: how a lab learns where the platform's services are.

The spawner sets these environment variables (documented in kernels/README.md);
they are the only way ``skydeck.lab`` finds anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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
