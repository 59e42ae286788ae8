"""Settings of the cutout service: environment variables with the ``SKYDECK_CUTOUTS_`` prefix."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from skydeck.service import ServiceSettings

ENV_PREFIX = "SKYDECK_CUTOUTS_"


class CutoutSettings(ServiceSettings):
    """Everything the SODA cutout service needs to know, from its environment.

    The hub, token, quota and lifetime fields come from `ServiceSettings`; per-user
    request rates come from the quota service (``api.requests_per_minute.cutouts``).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    release: str = Field(
        default_factory=lambda: os.environ.get("SKYDECK_RELEASE", "release"),
        description=(
            "The data release: a directory or an object-store URI (s3://bucket/prefix, "
            "endpoint and credentials from AWS_ENDPOINT_URL & co.); its Butler repository "
            "is read. A URI stays a string: Path('s3://b/r') would collapse it to 's3:/b/r'."
        ),
    )
    repo: str = Field(
        default="",
        description="A Butler repository to read instead of the release's (path or URI).",
    )
    collections: list[str] = Field(
        default_factory=list,
        description="Collections searched for coadds; empty means the release default.",
    )
    prefix: str = Field(
        default_factory=lambda: os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/cutouts/"),
        description="URL prefix the hub's proxy forwards to this service.",
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8090, description="Port to listen on.")
    max_pixels: int = Field(
        default=4096, description="Largest cutout side in pixels; larger requests get a 400."
    )

    @property
    def butler_repo(self) -> str:
        if self.repo:
            return self.repo
        from skydeck.catalog.release import ReleaseLayout

        return str(ReleaseLayout.at(self.release).butler_repo)
