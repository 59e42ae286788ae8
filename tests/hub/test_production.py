"""Production backends through ``skydeck up --config hub/deploy/production.py``.

The hub database and the quota store on a real PostgreSQL server, GitHub login
against the local stand-in, in a real browser.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import make_url
from traitlets.config import Config

from skydeck.hub.production import (
    ProductionConfigError,
    ProductionSettings,
    configure_production,
    database_url,
)
from support.github import FakeGitHub
from support.hub import RunningHub, free_port
from support.mini_release import build_mini_release
from support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = REPO / "hub" / "deploy" / "production.py"


def test_database_url_gets_the_installed_driver() -> None:
    assert database_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert database_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    with pytest.raises(ProductionConfigError, match="is PostgreSQL"):
        database_url("mysql://u@h/db")
    with pytest.raises(ProductionConfigError, match="not a database URL"):
        database_url("not a url")


def test_unknown_auth_is_refused() -> None:
    with pytest.raises(ProductionConfigError, match="SKYDECK_AUTH='ldap' is not one of"):
        configure_production(Config(), ProductionSettings(auth="ldap"))


def test_unreachable_database_is_reported_before_the_hub_starts() -> None:
    url = f"postgresql://skydeck@127.0.0.1:{free_port()}/skydeck_hub"
    with pytest.raises(ProductionConfigError) as error:
        configure_production(Config(), ProductionSettings(hub_db_url=url), check=True)
    message = str(error.value)
    assert "cannot reach the hub database postgresql+psycopg://skydeck@127.0.0.1" in message
    assert "Check SKYDECK_HUB_DB_URL" in message


@pytest.mark.postgres
def test_configure_production_sets_the_postgres_hub_db(postgres_url: str) -> None:
    c = Config()
    configure_production(c, ProductionSettings(hub_db_url=postgres_url))
    assert c.JupyterHub.db_url == postgres_url
    assert c.JupyterHub.db_kwargs == {"pool_pre_ping": True}


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as conn:
        return list(conn.execute(query).fetchall())


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
def test_hub_on_postgres_with_github_login(
    hub_factory: Callable[..., RunningHub],
    fake_github: FakeGitHub,
    postgres_server: PostgresServer,
    postgres_url: str,
    page: Page,
    tmp_path: Path,
) -> None:
    fake_github.add_account("vera", teams={("rubin-sci", "galaxies")})
    # The platform's services (TAP) start only with a published release: a small one.
    release = build_mini_release(tmp_path / "release")
    quota_url = postgres_server.url(postgres_server.create_database())
    env = {
        "SKYDECK_HUB_DB_URL": postgres_url,
        "SKYDECK_QUOTA_DB_URL": quota_url,
        "SKYDECK_AUTH": "github",
        "SKYDECK_GITHUB_URL": fake_github.url,
        "SKYDECK_GITHUB_CLIENT_ID": fake_github.client_id,
        "SKYDECK_GITHUB_CLIENT_SECRET": fake_github.client_secret,
        "SKYDECK_GITHUB_ALLOWED": "rubin-sci",
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
    }
    first = hub_factory(release=release, extra_config=[PRODUCTION_CONFIG], env=env)
    page.goto(f"{first.url}/hub/home")
    page.get_by_text("Sign in with GitHub").click()
    page.select_option("#login", "vera")
    page.click("#authorize")
    page.wait_for_url(f"{first.url}/hub/home")
    expect(page.locator("body")).to_contain_text("vera")

    # Users, groups and memberships are in PostgreSQL, and no SQLite file was made.
    assert ("vera",) in _rows(postgres_url, "SELECT name FROM users")
    assert _rows(
        postgres_url,
        "SELECT g.name FROM groups g JOIN user_group_map m ON m.group_id = g.id "
        "JOIN users u ON u.id = m.user_id WHERE u.name = 'vera'",
    ) == [("rubin-sci:galaxies",)]
    assert not list((first.data_dir / "hub").glob("*.sqlite"))
    # The quota service keeps its store in PostgreSQL as well.
    tables = {
        name
        for (name,) in _rows(
            quota_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert {"quota_policy", "quota_audit"} <= tables
    assert not list(first.data_dir.glob("services/quota/*.sqlite"))
    token = first.user_token("vera")
    first.stop()

    # A second hub with a fresh data directory on the same database knows vera and her token.
    second = hub_factory(release=release, extra_config=[PRODUCTION_CONFIG], env=env)
    me = second.api("GET", "/user", token=token)
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "vera"
    assert me.json()["groups"] == ["rubin-sci:galaxies"]
    second.stop()
