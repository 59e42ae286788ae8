"""Logins: the one user-name rule for every authenticator, and the embedded default's
per-user passwords (`SkydeckNativeAuthenticator`, `set_login`)."""

from skydeck.hub.auth._logins import Login, LoginError, generate_password, set_login
from skydeck.hub.auth._names import (
    MAX_USERNAME_LENGTH,
    USERNAME_PATTERN,
    USERNAME_RULE,
    SkydeckUsernames,
    username_problem,
)
from skydeck.hub.auth._native import SkydeckNativeAuthenticator

__all__ = [
    "MAX_USERNAME_LENGTH",
    "USERNAME_PATTERN",
    "USERNAME_RULE",
    "Login",
    "LoginError",
    "SkydeckNativeAuthenticator",
    "SkydeckUsernames",
    "generate_password",
    "set_login",
    "username_problem",
]
