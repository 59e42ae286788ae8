"""A whole GitHub login in a real browser, through a real hub (``skydeck up``).

The hub is configured only with ``hub/deploy/github_login.py`` and
``SKYDECK_GITHUB_*`` variables, as an operator would, and GitHub is the local
stand-in from ``tests/support/github.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from support.github import FakeGitHub
from support.hub import RunningHub
from support.mini_release import build_mini_release

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
GITHUB_CONFIG = REPO / "hub" / "deploy" / "github_login.py"


@pytest.fixture(scope="module")
def github_hub(
    hub_factory: Callable[..., RunningHub],
    module_github: FakeGitHub,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningHub:
    # The platform's services (TAP) start only with a published release: a small one.
    release = build_mini_release(tmp_path_factory.mktemp("mini") / "release")
    secret_file = tmp_path_factory.mktemp("secrets") / "github-client-secret"
    secret_file.write_text(module_github.client_secret + "\n")
    env = {
        "SKYDECK_GITHUB_URL": module_github.url,
        "SKYDECK_GITHUB_CLIENT_ID": module_github.client_id,
        "SKYDECK_GITHUB_CLIENT_SECRET_FILE": str(secret_file),
        "SKYDECK_GITHUB_ALLOWED": "rubin-sci,partner:astro",
        "SKYDECK_GITHUB_ADMIN_TEAMS": "rubin-sci:platform",
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
    }
    return hub_factory(release=release, extra_config=[GITHUB_CONFIG], env=env)


def _sign_in(page: Page, hub: RunningHub, login: str) -> None:
    """Open the hub home, choose GitHub, pick ``login`` on GitHub's page and authorize."""
    page.goto(f"{hub.url}/hub/home")
    page.get_by_text("Sign in with GitHub").click()
    expect(page).to_have_title("Sign in to GitHub (stand-in)")
    page.select_option("#login", login)
    page.click("#authorize")


def _user(hub: RunningHub, name: str) -> dict[str, Any]:
    response = hub.api("GET", f"/users/{name}")
    response.raise_for_status()
    model: dict[str, Any] = response.json()
    return model


def test_member_logs_in_and_teams_become_groups(
    github_hub: RunningHub, module_github: FakeGitHub, page: Page
) -> None:
    module_github.add_account("vera", teams={("rubin-sci", "galaxies"), ("partner", "astro")})
    _sign_in(page, github_hub, "vera")
    page.wait_for_url(f"{github_hub.url}/hub/home")
    expect(page.locator("body")).to_contain_text("vera")

    user = _user(github_hub, "vera")
    assert sorted(user["groups"]) == ["partner:astro", "rubin-sci:galaxies"]
    assert user["admin"] is False
    teams = user["auth_state"]["teams"]  # kept (encrypted) for the hub and its services
    assert sorted(t["slug"] for t in teams) == ["astro", "galaxies"]
    # The hub really exchanged a code with the GitHub stand-in.
    assert "POST /login/oauth/access_token" in module_github.requests


def test_outsider_is_refused_with_a_clear_page(
    github_hub: RunningHub, module_github: FakeGitHub, page: Page
) -> None:
    module_github.add_account("mallory", orgs={"elsewhere"}, teams={("partner", "optical")})
    _sign_in(page, github_hub, "mallory")
    page.wait_for_url("**/hub/oauth_callback**")
    body = page.locator("body")
    expect(page.locator("h1")).to_contain_text("403 : Not allowed on this Skydeck")
    expect(body).to_contain_text(
        "not a member of any GitHub organization or team allowed on this Skydeck"
    )
    expect(body).to_contain_text("partner:astro, rubin-sci")
    assert github_hub.api("GET", "/users/mallory").status_code == 404


def test_teams_are_synced_again_at_each_login(
    github_hub: RunningHub, module_github: FakeGitHub, page: Page
) -> None:
    account = module_github.add_account("ada", teams={("rubin-sci", "stars")})
    _sign_in(page, github_hub, "ada")
    page.wait_for_url(f"{github_hub.url}/hub/home")
    assert _user(github_hub, "ada")["groups"] == ["rubin-sci:stars"]
    assert _user(github_hub, "ada")["admin"] is False

    # On GitHub, ada leaves "stars" and joins the platform team (an admin team).
    account.teams = {("rubin-sci", "platform")}
    page.context.clear_cookies()
    _sign_in(page, github_hub, "ada")
    page.wait_for_url(f"{github_hub.url}/hub/**")

    user = _user(github_hub, "ada")
    assert user["groups"] == ["rubin-sci:platform"]
    assert user["admin"] is True
    stars = github_hub.api("GET", "/groups/rubin-sci:stars").json()
    assert "ada" not in stars["users"]


def test_a_name_that_breaks_the_user_name_rule_is_refused_with_it(
    github_hub: RunningHub, module_github: FakeGitHub, page: Page
) -> None:
    """GitHub allows no "_"; a provider answering one meets Skydeck's one user-name rule."""
    module_github.add_account("odd_name", orgs={"rubin-sci"})
    _sign_in(page, github_hub, "odd_name")
    page.wait_for_url("**/hub/oauth_callback**")
    expect(page.locator("h1")).to_contain_text("403")
    expect(page.locator("body")).to_contain_text("User names are 1 to 39 characters long")
    assert github_hub.api("GET", "/users/odd_name").status_code == 404
