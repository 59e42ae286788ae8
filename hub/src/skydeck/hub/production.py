"""Production backends for ``skydeck up``, chosen by configuration only.

`configure_production` layers on Skydeck's embedded configuration (it runs as an
extra config file: ``skydeck up --config hub/deploy/production.py``) and switches,
from ``SKYDECK_*`` environment variables:

- ``SKYDECK_HUB_DB_URL``: the hub database on PostgreSQL instead of SQLite, e.g.
  ``postgresql+psycopg://skydeck@db.example.org:5432/skydeck_hub`` (the password from
  ``PGPASSWORD`` or ``~/.pgpass``, as for any libpq client);
- ``SKYDECK_AUTH=github``: GitHub login (settings in `skydeck.hub.github`).

The same traits are what the Zero to JupyterHub chart sets on Kubernetes
(``hub.db.url``, ``hub.config``), so one machine and a cluster run the same code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

ENV_PREFIX = "SKYDECK_"
AUTH_CHOICES = ("embedded", "github")


class ProductionConfigError(ValueError):
    """A production setting that cannot work; the message says what to change."""


def database_url(url: str) -> str:
    """``url`` with Skydeck's PostgreSQL driver (psycopg 3) made explicit.

    With ``postgresql://`` alone, the driver would depend on the SQLAlchemy version
    (psycopg2 before 2.1), and Skydeck installs only psycopg 3.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ProductionConfigError(
            f"SKYDECK_HUB_DB_URL is not a database URL ({error}); "
            "expected e.g. postgresql+psycopg://user@host:5432/dbname"
        ) from error
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ProductionConfigError(
            f"SKYDECK_HUB_DB_URL names {parsed.get_backend_name()!r}: Skydeck's hub database "
            "is PostgreSQL (postgresql+psycopg://...) or SQLite"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def check_database(url: str, timeout: int = 10) -> None:
    """Connect once, so an unreachable database is reported before the hub starts."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = timeout
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise ProductionConfigError(
            f"cannot reach the hub database {parsed.render_as_string(hide_password=True)}: "
            f"{reason}. Check SKYDECK_HUB_DB_URL (and PGPASSWORD) and that the server runs "
            "and accepts this user; the database must exist (createdb)"
        ) from error
    finally:
        engine.dispose()


@dataclass(frozen=True)
class ProductionSettings:
    """Which production backends to use, from ``SKYDECK_*`` environment variables."""

    hub_db_url: str = ""
    auth: str = "embedded"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProductionSettings:
        env = os.environ if environ is None else environ
        return cls(
            hub_db_url=env.get(ENV_PREFIX + "HUB_DB_URL", "").strip(),
            auth=env.get(ENV_PREFIX + "AUTH", "embedded").strip().lower() or "embedded",
        )


def configure_production(c: Any, settings: ProductionSettings, check: bool = True) -> None:
    """Switch the hub config ``c`` to the backends ``settings`` names.

    With ``check``, the database is contacted once so a wrong URL fails with a
    clear message instead of a hub that never comes up.
    """
    if settings.auth not in AUTH_CHOICES:
        raise ProductionConfigError(
            f"SKYDECK_AUTH={settings.auth!r} is not one of {', '.join(AUTH_CHOICES)}"
        )
    if settings.hub_db_url:
        url = database_url(settings.hub_db_url)
        if check:
            check_database(url)
        c.JupyterHub.db_url = url
        # Pooled connections are checked before use: PostgreSQL may drop idle ones.
        c.JupyterHub.db_kwargs = {"pool_pre_ping": True}
    if settings.auth == "github":
        from skydeck.hub.github import GitHubLogin, configure_github

        configure_github(c, GitHubLogin.from_env())
