"""Login with GitHub: organizations and teams decide who may enter, teams become hub groups.

`SkydeckGitHubOAuthenticator` is oauthenticator's `GitHubOAuthenticator` with
Skydeck's defaults: GitHub teams are fetched at every login (``read:org``), kept
in the auth state and turned into JupyterHub groups named ``<org>:<team-slug>``
(the spelling ``allowed_organizations`` already uses), so quotas that follow
groups follow team membership.  The client id and secret may come from files
(Kubernetes secrets mounted as files) as well as from the environment.

Switch it on with configuration only, either with traitlets (Zero to JupyterHub's
``hub.config``)::

    c.JupyterHub.authenticator_class = "skydeck.hub.github.SkydeckGitHubOAuthenticator"
    c.SkydeckGitHubOAuthenticator.allowed_organizations = {"my-org", "other-org:astro"}
    c.SkydeckGitHubOAuthenticator.admin_groups = {"my-org:platform-admins"}

or from ``SKYDECK_GITHUB_*`` environment variables with the config file
``hub/deploy/github_login.py`` (``skydeck up --config hub/deploy/github_login.py``),
which calls `configure_github` with `GitHubLogin.from_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oauthenticator.github import GitHubOAuthenticator
from tornado import web
from traitlets import Unicode, default

from skydeck.hub.auth import SkydeckUsernames

ENV_PREFIX = "SKYDECK_GITHUB_"
AUTHENTICATOR_CLASS = "skydeck.hub.github.SkydeckGitHubOAuthenticator"
#: Title of the page a GitHub user who may not log in sees.
REFUSED_REASON = "Not allowed on this Skydeck"


class GitHubLoginError(ValueError):
    """GitHub login is switched on but misconfigured; the message says what to set."""


def team_group_name(team: Mapping[str, Any]) -> str:
    """The hub group of one GitHub team (an item of ``GET /user/teams``): ``org:team-slug``."""
    return f"{team['organization']['login']}:{team['slug']}"


def _read_secret(path: str, what: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as error:
        raise GitHubLoginError(
            f"cannot read the GitHub OAuth {what} from {path!r} ({error.strerror}); "
            "mount the secret there or point the setting at the right file"
        ) from error
    if not value:
        raise GitHubLoginError(f"the GitHub OAuth {what} file {path!r} is empty")
    return value


class SkydeckGitHubOAuthenticator(SkydeckUsernames, GitHubOAuthenticator):
    """GitHub login where GitHub teams become JupyterHub groups at every login.

    User names follow Skydeck's one rule (`skydeck.hub.auth.SkydeckUsernames`),
    which every GitHub login name already satisfies once lowercased.
    """

    client_id_file = Unicode(
        "",
        config=True,
        help="""
        File holding the GitHub OAuth app's client id (e.g. a mounted Kubernetes
        secret).  Used when `client_id` is not set; otherwise `client_id` comes
        from $GITHUB_CLIENT_ID as in oauthenticator.
        """,
    )

    client_secret_file = Unicode(
        "",
        config=True,
        help="""
        File holding the GitHub OAuth app's client secret (e.g. a mounted
        Kubernetes secret).  Used when `client_secret` is not set; otherwise the
        secret comes from $GITHUB_CLIENT_SECRET as in oauthenticator.
        """,
    )

    @default("client_id")
    def _client_id_default(self) -> str:
        if self.client_id_file:
            return _read_secret(self.client_id_file, "client id")
        return os.environ.get(self.client_id_env, "")

    @default("client_secret")
    def _client_secret_default(self) -> str:
        if self.client_secret_file:
            return _read_secret(self.client_secret_file, "client secret")
        return os.environ.get(self.client_secret_env, "")

    @default("scope")
    def _scope_default(self) -> list[str]:
        # read:org lets the hub see private organization and team membership.
        return ["read:org"]

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("populate_teams_in_auth_state")
    def _populate_teams_default(self) -> bool:
        return True

    @default("custom_403_message")
    def _custom_403_message_default(self) -> str:
        allowed = sorted(self.allowed_organizations | self.allowed_groups)
        if not allowed:
            return (
                "Your GitHub account is not allowed on this Skydeck. "
                "Ask the platform's administrators to give you access, then sign in again."
            )
        return (
            "Your GitHub account is not a member of any GitHub organization or team "
            f"allowed on this Skydeck ({', '.join(allowed)}). Ask an owner of one of them "
            "to add you (membership may need to be accepted on GitHub, and the hub's "
            "OAuth app approved for the organization), then sign in again."
        )

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        """Allowed by organization, team, group or name; otherwise a 403 page saying why.

        The page's title is short (`REFUSED_REASON`) and its text is
        `custom_403_message`, which names the allowed organizations and teams.
        """
        allowed: bool = await super().check_allowed(username, auth_model)
        if allowed or auth_model is None:
            return allowed
        self.log.warning("GitHub user %s is not in an allowed organization or team", username)
        raise web.HTTPError(403, self.custom_403_message, reason=REFUSED_REASON)

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """Hub groups from the GitHub teams in the auth state, as ``org:team-slug``.

        An explicitly configured `auth_state_groups_key` still takes precedence.
        """
        if self.auth_state_groups_key:
            groups: set[str] = await super().get_user_groups(auth_state)
            return groups
        teams = auth_state.get("teams")
        if teams is None:
            self.log.error(
                "No GitHub teams in the auth state: team -> group sync needs "
                "populate_teams_in_auth_state and the read:org scope"
            )
            return set()
        return {team_group_name(team) for team in teams}


def _split(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.replace(",", " ").split() if item.strip())


@dataclass(frozen=True)
class GitHubLogin:
    """GitHub login settings, from ``SKYDECK_GITHUB_*`` environment variables.

    ``allowed``: organizations (``org``) and teams (``org:team-slug``) whose members
    may log in; ``admin_teams``: teams (``org:team-slug``) whose members are hub
    admins; ``github_url``: GitHub Enterprise or a test stand-in (the API is then at
    ``<url>/api/v3``); the client id and secret directly or as files.
    """

    allowed: frozenset[str] = frozenset()
    admin_teams: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    github_url: str = ""
    client_id: str = ""
    client_id_file: str = ""
    client_secret: str = field(default="", repr=False)
    client_secret_file: str = ""
    callback_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GitHubLogin:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(ENV_PREFIX + name, "").strip()

        return cls(
            allowed=_split(get("ALLOWED")),
            admin_teams=_split(get("ADMIN_TEAMS")),
            admin_users=_split(get("ADMIN_USERS")),
            github_url=get("URL"),
            client_id=get("CLIENT_ID") or env.get("GITHUB_CLIENT_ID", ""),
            client_id_file=get("CLIENT_ID_FILE"),
            client_secret=get("CLIENT_SECRET") or env.get("GITHUB_CLIENT_SECRET", ""),
            client_secret_file=get("CLIENT_SECRET_FILE"),
            callback_url=get("CALLBACK_URL"),
        )

    def check(self) -> None:
        """Raise `GitHubLoginError` naming what to set when the settings cannot work."""
        if not (self.client_id or self.client_id_file):
            raise GitHubLoginError(
                "GitHub login needs the OAuth app's client id: set SKYDECK_GITHUB_CLIENT_ID "
                "or SKYDECK_GITHUB_CLIENT_ID_FILE (GitHub > Settings > Developer settings > "
                "OAuth Apps)"
            )
        if not (self.client_secret or self.client_secret_file):
            raise GitHubLoginError(
                "GitHub login needs the OAuth app's client secret: set "
                "SKYDECK_GITHUB_CLIENT_SECRET or SKYDECK_GITHUB_CLIENT_SECRET_FILE"
            )
        if not (self.allowed or self.admin_teams or self.admin_users):
            raise GitHubLoginError(
                "GitHub login would let nobody in: set SKYDECK_GITHUB_ALLOWED to the "
                "organizations and teams (org or org:team, comma separated) whose members "
                "may log in"
            )
        bad = sorted(t for t in self.admin_teams if t.count(":") != 1)
        if bad:
            raise GitHubLoginError(
                f"SKYDECK_GITHUB_ADMIN_TEAMS must name teams as org:team-slug, not {bad}"
            )
        for path, what in ((self.client_id_file, "client id"), (self.client_secret_file, "secret")):
            if path:
                _read_secret(path, what)


def configure_github(c: Any, login: GitHubLogin) -> None:
    """Switch the hub config ``c`` to GitHub login as described by ``login``."""
    login.check()
    c.JupyterHub.authenticator_class = AUTHENTICATOR_CLASS
    auth = c.SkydeckGitHubOAuthenticator
    # Skydeck's embedded default lets in anyone with a login; GitHub login does not.
    auth.allow_all = False
    auth.allowed_organizations = set(login.allowed)
    auth.admin_groups = set(login.admin_teams)
    auth.admin_users = set(login.admin_users)
    if login.github_url:
        auth.github_url = login.github_url.rstrip("/")
    if login.client_id:
        auth.client_id = login.client_id
    if login.client_id_file:
        auth.client_id_file = login.client_id_file
    if login.client_secret:
        auth.client_secret = login.client_secret
    if login.client_secret_file:
        auth.client_secret_file = login.client_secret_file
    if login.callback_url:
        auth.oauth_callback_url = login.callback_url
    # Teams are kept in the (encrypted) auth state when the hub has a key for it,
    # and refreshed from GitHub when the hub re-checks a user.
    auth.enable_auth_state = bool(os.environ.get("JUPYTERHUB_CRYPT_KEY"))
