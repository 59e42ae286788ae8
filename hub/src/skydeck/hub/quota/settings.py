"""Settings of the quota service and of the hub's spawn hooks (``SKYDECK_QUOTA_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from skydeck.service import ServiceSettings

SERVICE_NAME = "quota"
ENV_PREFIX = "SKYDECK_QUOTA_"

#: Custom JupyterHub scopes (defined by `skydeck.hub.quota.spawn.configure_quota`).
SCOPE_ADMIN = "custom:quota:admin"
SCOPE_READ = "custom:quota:read"
SCOPE_ACCOUNT = "custom:quota:account"


def default_db_url(data_dir: Path) -> str:
    """SQLite in the data directory: ``<data>/services/quota/quota.sqlite``."""
    return f"sqlite:///{data_dir / 'services' / SERVICE_NAME / 'quota.sqlite'}"


class QuotaSettings(ServiceSettings):
    """One settings object, from ``SKYDECK_QUOTA_*`` environment variables.

    ``SKYDECK_QUOTA_DB_URL`` selects the database (a SQLAlchemy URL, e.g.
    ``postgresql+psycopg://quota@db/quota`` in production); without it SQLite in
    the data directory is used. The hub fields come from `ServiceSettings`.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    data_dir: Path = Path("skydeck-data")
    db_url: str = ""
    home_template: str = ""
    port: int = 0
    hub_prefix: str = "/hub/"
    user_cache_seconds: float = 5.0
    #: Where request-rate counts live (a ``limits`` storage URI): memory:// for one
    #: replica, redis://host:6379 when several quota service replicas share the counts.
    rate_storage: str = "memory://"

    @property
    def database_url(self) -> str:
        return self.db_url or default_db_url(self.data_dir.resolve())
