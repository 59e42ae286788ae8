"""The embedded default's login: one bcrypt-hashed password per user.

`SkydeckNativeAuthenticator` is jupyterhub-nativeauthenticator (which works with
JupyterHub 6; it still uses the hub's shared database session, which JupyterHub
marks deprecated) with Skydeck's user-name rule, failed-login throttling on, clear
4xx answers from the login form, and one admin REST route that gives a user an
approved login (``skydeck users add``, ``skydeck check`` and the tests use it).

Sign-up is closed: an admin gives each user a login (an invitation), because
nativeauthenticator's approval pages change state on GET (``/hub/authorize/<name>``),
which a page on another site could make an admin's browser do.  Operators who
want sign-up anyway set ``enable_signup = True``; its pages are served only then.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import ChangePasswordAdminHandler, ChangePasswordHandler
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from pydantic import BaseModel, ConfigDict, ValidationError
from tornado import web
from traitlets import Unicode, default

from skydeck.hub.auth._logins import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    LoginError,
    has_password,
    password_fits,
    set_login,
    set_password,
)
from skydeck.hub.auth._names import SkydeckUsernames, username_problem

#: The admin route that gives a user an approved login (below the hub's prefix, /hub/).
LOGIN_PASSWORD_ROUTE = r"/api/skydeck/users/([^/]+)/password"


class SkydeckNativeAuthenticator(SkydeckUsernames, NativeAuthenticator):
    """Per-user passwords stored hashed in the hub database, attempts throttled."""

    admin_password = Unicode(
        "",
        config=True,
        help="""
        Password given to each of `admin_users` that has no login yet, when the hub
        starts (``skydeck up`` passes the one generated on first start and kept in
        ``credentials.json``).  An admin's later password change is kept.
        """,
    )

    @default("enable_signup")
    def _enable_signup_default(self) -> bool:
        return False

    @default("allowed_failed_logins")
    def _allowed_failed_logins_default(self) -> int:
        return 5

    @default("seconds_before_next_try")
    def _seconds_before_next_try_default(self) -> int:
        return 300

    @default("minimum_password_length")
    def _minimum_password_length_default(self) -> int:
        return MIN_PASSWORD_LENGTH

    @default("check_common_password")
    def _check_common_password_default(self) -> bool:
        return True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.admin_password:
            for name in self.admin_users:
                admin = self.normalize_username(name)
                if not has_password(self.db, admin):
                    set_password(self.db, admin, self.admin_password)

    def is_password_strong(self, password: str) -> bool:
        """Long enough, not common, and short enough for bcrypt (`MAX_PASSWORD_BYTES`)."""
        strong: bool = password_fits(password) and super().is_password_strong(password)
        return strong

    async def authenticate(self, handler: Any, data: dict[str, Any] | None = None) -> Any:
        """nativeauthenticator's check; a password bcrypt cannot take is a failed attempt."""
        data = data or {}
        if not password_fits(str(data.get("password", ""))):
            name = self.normalize_username(str(data.get("username", "")))
            if self.get_user(name) is not None:
                self.add_login_attempt(name)
            return None
        return await super().authenticate(handler, data)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        own = {"LoginHandler": SkydeckLoginHandler, "ChangePasswordHandler": OwnPasswordHandler}
        handlers: list[tuple[str, Any]] = [
            (route, own.get(handler.__name__, handler))
            for route, handler in super().get_handlers(app)
            if self.enable_signup
            or handler in (NativeLoginHandler, ChangePasswordHandler, ChangePasswordAdminHandler)
        ]
        return [*handlers, (LOGIN_PASSWORD_ROUTE, LoginPasswordAPIHandler)]


class SkydeckLoginHandler(NativeLoginHandler):
    """The login form: 400 for a name that breaks the rule, 429 while throttled, 403 else."""

    async def _refuse(self, status: int, message: str, username: str) -> None:
        self.set_status(status)
        self.finish(await self._render(login_error=message, username=username))

    async def post(self) -> None:
        data = {
            arg: self.get_argument(arg, strip=arg == "username")
            for arg in self.request.body_arguments
            if arg != "_xsrf"
        }
        data.setdefault("password", "")
        authenticator: SkydeckNativeAuthenticator = self.authenticator
        name = authenticator.normalize_username(data.setdefault("username", ""))
        problem = username_problem(name)
        if problem:
            await self._refuse(400, problem, "")
            return
        if authenticator.is_blocked(name):
            wait = authenticator.seconds_before_next_try
            self.set_header("Retry-After", str(wait))
            await self._refuse(
                429,
                f"Too many failed logins for {name}: wait {max(1, wait // 60)} minutes and "
                "try again, or ask an administrator to set a new password.",
                name,
            )
            return
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        info = authenticator.get_user(name)
        if (
            info is not None
            and not info.is_authorized
            and password_fits(data["password"])
            and info.is_valid_password(data["password"])
        ):
            message = f"User {name} has not been approved by an administrator yet."
        else:
            message = "Invalid username or password."
        await self._refuse(403, message, name)


class OwnPasswordHandler(ChangePasswordHandler):
    """A user changes their own password (a user without a password login gets a 400)."""

    async def post(self) -> None:
        user = await self.get_current_user()
        if user is not None and self.authenticator.get_user(user.name) is None:
            raise web.HTTPError(
                400, f"{user.name} has no password login here; ask an administrator for one"
            )
        for field in ("old_password", "new_password"):
            if not password_fits(self.get_body_argument(field, "", strip=False)):
                raise web.HTTPError(
                    400, f"passwords are at most {MAX_PASSWORD_BYTES} bytes long; try again"
                )
        await super().post()


class LoginPasswordRequest(BaseModel):
    """Body of ``POST /hub/api/skydeck/users/{name}/password`` (all optional)."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = None
    admin: bool | None = None


class LoginPasswordAPIHandler(APIHandler):
    """Create user ``name`` if missing with an approved login; answer its password once."""

    @needs_scope("admin:users")
    async def post(self, user_name: str) -> None:
        try:
            body = LoginPasswordRequest.model_validate(json.loads(self.request.body or b"{}"))
        except (ValueError, ValidationError) as error:
            raise web.HTTPError(
                400, 'the body must be JSON like {"password": "...", "admin": false}, or empty'
            ) from error
        name = self.authenticator.normalize_username(user_name)
        try:
            login = set_login(self.db, name, body.password, body.admin)
        except LoginError as error:
            raise web.HTTPError(400, str(error)) from error
        self.set_status(201)
        self.finish(json.dumps({"name": login.name, "password": login.password}))
