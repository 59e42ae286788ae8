"""The one rule for user names, applied at login by every authenticator.

A name becomes a home directory, a URL path segment (``/user/<name>/``), a
database key, a Kubernetes label and text on the quota pages, so it is checked
once, at login, and nothing downstream re-checks it.  The rule is the one GitHub
login names already satisfy (letters, digits and hyphens, at most 39
characters), lowercased as JupyterHub does, so the GitHub login and the
embedded default's own logins share it.
"""

from __future__ import annotations

import re
from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import default

#: Longest user name: GitHub's limit for login names.
MAX_USERNAME_LENGTH = 39
#: A lowercase letter or digit, then letters, digits and hyphens (GitHub login names, lowercased).
USERNAME_PATTERN = rf"^[a-z0-9][a-z0-9-]{{0,{MAX_USERNAME_LENGTH - 1}}}$"
_USERNAME = re.compile(USERNAME_PATTERN.removesuffix("$") + r"\Z")
#: What a refused user sees.
USERNAME_RULE = (
    f"User names are 1 to {MAX_USERNAME_LENGTH} characters long and use only the letters "
    "a-z, the digits 0-9 and hyphens (not first), like GitHub user names. "
    "Check the name and try again."
)


def username_problem(name: str) -> str | None:
    """Why ``name`` (already normalised) is not a valid user name, or None when it is."""
    if not isinstance(name, str) or not _USERNAME.match(name):
        return USERNAME_RULE
    return None


def check_username(name: str, status: int = 400) -> None:
    """Raise an HTTP error with the rule when ``name`` breaks it."""
    problem = username_problem(name)
    if problem:
        raise web.HTTPError(status, problem)


class SkydeckUsernames(Authenticator):
    """Mixin for every Skydeck authenticator: names normalised and checked by one rule.

    Put it first among the bases (``class A(SkydeckUsernames, SomeAuthenticator)``).
    A form login with a name that breaks the rule is refused with 400 before any
    password is checked; a name handed back by an identity provider (GitHub) that
    breaks it is refused with 403; either way the user reads the rule.
    """

    @default("username_pattern")
    def _username_pattern_default(self) -> str:
        return USERNAME_PATTERN

    def normalize_username(self, username: str) -> str:
        """Surrounding whitespace dropped, then JupyterHub's (lowercase, `username_map`)."""
        normalized: str = super().normalize_username(username.strip())
        return normalized

    def validate_username(self, username: str) -> bool:
        """The Skydeck rule (`USERNAME_PATTERN`), then the authenticator's own checks."""
        if username_problem(username):
            return False
        valid: bool = super().validate_username(username)
        return valid

    async def authenticate(self, handler: Any, data: dict[str, Any] | None = None) -> Any:
        """Refuse names that break the rule, before and after the real authentication."""
        if data and isinstance(data.get("username"), str):
            check_username(self.normalize_username(data["username"]), 400)
        authenticated = await maybe_future(super().authenticate(handler, data))
        if authenticated is None:
            return None
        name = authenticated["name"] if isinstance(authenticated, dict) else authenticated
        check_username(self.normalize_username(str(name)), 403)
        return authenticated
