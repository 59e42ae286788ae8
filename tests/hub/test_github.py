"""GitHub login configuration and the authenticator against the local GitHub stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oauthenticator.github import GitHubOAuthenticator
from tornado.web import HTTPError
from traitlets.config import Config

from skydeck.hub.auth import USERNAME_RULE
from skydeck.hub.github import (
    AUTHENTICATOR_CLASS,
    REFUSED_REASON,
    GitHubLogin,
    GitHubLoginError,
    SkydeckGitHubOAuthenticator,
    configure_github,
)
from support.github import FakeGitHub


def _authenticator(c: Config) -> SkydeckGitHubOAuthenticator:
    return SkydeckGitHubOAuthenticator(config=c)


def _base_config() -> Config:
    """What Skydeck's embedded default sets that matters for login (anyone may enter)."""
    c = Config()
    c.JupyterHub.authenticator_class = "skydeck.hub.auth.SkydeckNativeAuthenticator"
    c.Authenticator.allow_all = True
    return c


class _User:
    """The two things `Authenticator.refresh_user` reads from a hub user."""

    def __init__(self, name: str, auth_state: dict[str, Any]) -> None:
        self.name = name
        self._auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any]:
        return self._auth_state


def test_from_env_reads_lists_and_falls_back_to_oauthenticator_variables() -> None:
    login = GitHubLogin.from_env(
        {
            "SKYDECK_GITHUB_ALLOWED": "rubin-sci, partner:astro ,",
            "SKYDECK_GITHUB_ADMIN_TEAMS": "rubin-sci:platform",
            "GITHUB_CLIENT_ID": "id-from-oauthenticator-env",
            "SKYDECK_GITHUB_CLIENT_SECRET_FILE": "/run/secrets/github",
        }
    )
    assert login.allowed == {"rubin-sci", "partner:astro"}
    assert login.admin_teams == {"rubin-sci:platform"}
    assert login.client_id == "id-from-oauthenticator-env"
    assert login.client_secret_file == "/run/secrets/github"
    assert "secret" not in repr(GitHubLogin(client_secret="s3cr3t")).replace("secret_file", "")


@pytest.mark.parametrize(
    ("login", "says"),
    [
        (GitHubLogin(client_secret="s", allowed=frozenset({"o"})), "SKYDECK_GITHUB_CLIENT_ID"),
        (GitHubLogin(client_id="i", allowed=frozenset({"o"})), "SKYDECK_GITHUB_CLIENT_SECRET"),
        (GitHubLogin(client_id="i", client_secret="s"), "would let nobody in"),
        (
            GitHubLogin(
                client_id="i",
                client_secret="s",
                allowed=frozenset({"o"}),
                admin_teams=frozenset({"just-an-org"}),
            ),
            "org:team-slug",
        ),
        (
            GitHubLogin(
                client_id="i", client_secret_file="/nonexistent/secret", allowed=frozenset({"o"})
            ),
            "cannot read the GitHub OAuth secret from '/nonexistent/secret'",
        ),
    ],
)
def test_misconfiguration_is_refused_with_what_to_set(login: GitHubLogin, says: str) -> None:
    with pytest.raises(GitHubLoginError, match=says):
        configure_github(Config(), login)


def test_configure_github_overrides_the_embedded_allow_all(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("the-secret\n")
    c = _base_config()
    configure_github(
        c,
        GitHubLogin(
            allowed=frozenset({"rubin-sci", "partner:astro"}),
            admin_teams=frozenset({"rubin-sci:platform"}),
            github_url="http://127.0.0.1:9/",
            client_id="the-id",
            client_secret_file=str(secret),
        ),
    )
    assert c.JupyterHub.authenticator_class == AUTHENTICATOR_CLASS
    auth = _authenticator(c)
    assert auth.allow_all is False  # the subclass section wins over Authenticator.allow_all
    assert auth.client_id == "the-id"
    assert auth.client_secret == "the-secret"
    assert auth.manage_groups is True
    assert auth.populate_teams_in_auth_state is True
    assert "read:org" in auth.scope
    assert auth.admin_groups == {"rubin-sci:platform"}
    assert auth.github_api == "http://127.0.0.1:9/api/v3"
    assert auth.token_url == "http://127.0.0.1:9/login/oauth/access_token"
    message = auth.custom_403_message
    assert "partner:astro, rubin-sci" in message and "sign in again" in message


def test_secret_file_used_only_when_no_secret_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "from-env")
    assert _authenticator(Config()).client_secret == "from-env"
    empty = tmp_path / "empty"
    empty.write_text("")
    c = Config()
    c.SkydeckGitHubOAuthenticator.client_secret_file = str(empty)
    with pytest.raises(GitHubLoginError, match="is empty"):
        _ = _authenticator(c).client_secret


def _stand_in_config(github: FakeGitHub, **traits: Any) -> Config:
    c = _base_config()
    configure_github(
        c,
        GitHubLogin(
            github_url=github.url,
            client_id=github.client_id,
            client_secret=github.client_secret,
            **traits,
        ),
    )
    return c


async def _login(auth: SkydeckGitHubOAuthenticator, github: FakeGitHub, login: str) -> Any:
    """The auth model the hub gets for ``login``, from the stand-in's API."""
    token = {"access_token": github.token_for(login), "token_type": "bearer", "scope": "read:org"}
    return await auth.refresh_user(_User(login, {"token_response": token}))


async def test_teams_become_groups_and_admin_teams_admins(fake_github: FakeGitHub) -> None:
    fake_github.add_account("vera", teams={("rubin-sci", "galaxies"), ("partner", "astro")})
    fake_github.add_account("ops", teams={("rubin-sci", "platform")})
    c = _stand_in_config(
        fake_github,
        allowed=frozenset({"rubin-sci"}),
        admin_teams=frozenset({"rubin-sci:platform"}),
    )
    c.SkydeckGitHubOAuthenticator.enable_auth_state = True  # refresh_user needs it
    auth = _authenticator(c)

    vera = await _login(auth, fake_github, "vera")
    assert vera["name"] == "vera"
    assert vera["groups"] == ["partner:astro", "rubin-sci:galaxies"]
    assert vera["admin"] is False
    assert [t["slug"] for t in vera["auth_state"]["teams"]] == ["astro", "galaxies"]
    assert await auth.check_allowed("vera", vera) is True

    ops = await _login(auth, fake_github, "ops")
    assert ops["groups"] == ["rubin-sci:platform"] and ops["admin"] is True
    assert "GET /api/v3/user/teams" in fake_github.requests


async def test_membership_decides_who_is_allowed(fake_github: FakeGitHub) -> None:
    fake_github.add_account("member", orgs={"rubin-sci"})
    fake_github.add_account("teamless", orgs={"partner"})
    fake_github.add_account("astro", teams={("partner", "astro")})
    fake_github.add_account("outsider", orgs={"elsewhere"})
    c = _stand_in_config(fake_github, allowed=frozenset({"rubin-sci", "partner:astro"}))
    c.SkydeckGitHubOAuthenticator.enable_auth_state = True
    auth = _authenticator(c)
    decisions = {}
    for login in ("member", "teamless", "astro", "outsider"):
        model = await _login(auth, fake_github, login)
        try:
            decisions[login] = await auth.check_allowed(login, model)
        except HTTPError as error:  # refused: a 403 page with a short title and the why
            assert (error.status_code, error.reason) == (403, REFUSED_REASON)
            assert "partner:astro, rubin-sci" in error.log_message
            decisions[login] = False
    assert decisions == {"member": True, "teamless": False, "astro": True, "outsider": False}
    # JupyterHub's own startup check of existing users (no auth model) is not refused.
    assert await auth.check_allowed("outsider", None) is True


def test_github_names_follow_the_one_user_name_rule() -> None:
    """Every GitHub login name passes (lowercased); nothing that could break a path does."""
    auth = _authenticator(_base_config())
    assert auth.normalize_username("Vera-Rubin") == "vera-rubin"
    for name in ("vera-rubin", "a" * 39, "x", "42"):
        assert auth.validate_username(name), name
    for name in ("a" * 40, "c" * 306, "vera_rubin", "vera rubin", "<b>", "-vera", "a?b", ""):
        assert not auth.validate_username(name), name


@pytest.mark.parametrize(("login", "refused"), [("Vera-Rubin", False), ("vera_rubin", True)])
async def test_a_provider_name_that_breaks_the_rule_is_refused_with_it(
    login: str, refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name handed back by the identity provider is checked at login too (403, the rule)."""

    async def github_answers(self: Any, handler: Any, data: Any = None) -> dict[str, Any]:
        return {"name": login, "auth_state": {}}  # what oauthenticator builds from /user

    monkeypatch.setattr(GitHubOAuthenticator, "authenticate", github_answers)
    auth = _authenticator(_base_config())
    if refused:
        with pytest.raises(HTTPError) as error:
            await auth.authenticate(None, None)
        assert (error.value.status_code, error.value.log_message) == (403, USERNAME_RULE)
    else:
        assert (await auth.authenticate(None, None))["name"] == login
