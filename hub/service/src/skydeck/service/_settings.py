"""The settings every managed service shares, and the environment it needs handed on.

Each service subclasses `ServiceSettings` with its own ``env_prefix``
(``SKYDECK_TAP_``, ``SKYDECK_CUTOUTS_``): one settings object, from environment
variables. The hub's ``JUPYTERHUB_*`` variables fill the hub fields by default.
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._auth import REVOCATION_SECONDS

#: Environment variables a reader of a release on object storage needs when they are set:
#: the endpoint and credentials read by s3fs, boto3 and lsst-resources.
OBJECT_STORE_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "S3_ENDPOINT_URL",
)

#: Environment variables naming the credentials of a Butler registry in PostgreSQL
#: (a read-only account: the labs get it too; never the hub's PGPASSWORD).
BUTLER_REGISTRY_ENV = ("LSST_DB_AUTH", "LSST_DB_AUTH_CREDENTIALS")

#: What the services and the labs need from the hub's environment when set, and that
#: JupyterHub would not pass on (it starts both with a minimal environment).
BACKEND_ENV = (*OBJECT_STORE_ENV, *BUTLER_REGISTRY_ENV)


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


class ServiceSettings(BaseSettings):
    """Fields every Skydeck managed service has; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    hub_api_url: str | None = Field(
        default_factory=lambda: _env("JUPYTERHUB_API_URL"),
        description="The hub REST API, where tokens are checked (default $JUPYTERHUB_API_URL).",
    )
    hub_api_token: str | None = Field(
        default_factory=lambda: _env("JUPYTERHUB_API_TOKEN"),
        description="This service's own hub token, sent to the quota service "
        "(default $JUPYTERHUB_API_TOKEN, which the hub gives a managed service).",
    )
    service_name: str | None = Field(
        default_factory=lambda: _env("JUPYTERHUB_SERVICE_NAME"),
        description="The hub service name; tokens must carry access:services!service=<name>.",
    )
    token_cache_seconds: float = Field(
        default=REVOCATION_SECONDS,
        ge=0,
        le=REVOCATION_SECONDS,
        description="How long a checked token is trusted before the hub is asked again; "
        f"at most {REVOCATION_SECONDS} s, so a revoked token stops working within that.",
    )
    quota_url: str | None = Field(
        default=None,
        description="Base URL of the Skydeck quota service (…/services/quota/): per-user "
        "limits and request rates. When set and unreachable, expensive work is refused.",
    )
    quota_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long a user's quota is cached."
    )
    exit_with_parent: bool = Field(
        default=False,
        description="Stop when the process that started this one (the hub) is gone.",
    )
