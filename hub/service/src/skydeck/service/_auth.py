"""Who is calling a service: hub tokens checked by JupyterHub's own `HubAuth`.

`HubAuth.user_for_token` asks the hub (``GET /hub/api/user`` with the caller's token)
and keeps the answer in its expiring cache; the cache is at most
`REVOCATION_SECONDS` long, so a token revoked on the hub stops working at every
service within that time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import HubAuth
from tornado.web import HTTPError

log = logging.getLogger(__name__)

#: The longest a service trusts a checked token: a revoked token stops working within this.
REVOCATION_SECONDS = 5


class AuthError(Exception):
    """No usable credentials: ``status`` 401 (none, or not valid), 403 (not allowed here)
    or 503 (the hub could not be asked); the message says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class HubUser:
    """The owner of a token, as the hub describes it."""

    name: str
    kind: str
    scopes: frozenset[str]


def token_from_header(authorization: str | None) -> str | None:
    """The token of an ``Authorization: token ...`` or ``Bearer ...`` header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


class HubTokenAuth:
    """Resolves hub tokens to users for one managed service (``service_name``).

    A token must carry ``access:services!service=<service_name>`` (or the unfiltered
    ``access:services``), which tokens made with default permissions do.
    """

    def __init__(
        self,
        api_url: str,
        service_name: str | None,
        cache_seconds: float = REVOCATION_SECONDS,
        api_token: str | None = None,
        what: str = "This service",
    ) -> None:
        self.what = what
        self.service_name = service_name
        scopes = {f"access:services!service={service_name}"} if service_name else set()
        #: None without a hub API URL: every request is then refused with 503
        self.hub = (
            None
            if not api_url
            else HubAuth(
                api_url=api_url.rstrip("/"),
                api_token=api_token or "",
                cache_max_age=int(min(max(cache_seconds, 0), REVOCATION_SECONDS)),
                access_scopes=scopes,
            )
        )

    async def user(self, token: str | None) -> HubUser:
        """The owner of ``token``; raises `AuthError` saying what to do otherwise."""
        if not token:
            raise AuthError(
                401,
                f"{self.what} needs a hub token: send 'Authorization: Bearer <token>' (in a "
                "Skydeck lab it is $JUPYTERHUB_API_TOKEN; otherwise create a token on the hub's "
                "Token page).",
            )
        if self.hub is None:
            raise AuthError(
                503, f"{self.what} does not know the hub API URL (set JUPYTERHUB_API_URL)."
            )
        try:
            model: dict[str, Any] | None = await self.hub.user_for_token(token, sync=False)
        except HTTPError as error:
            text = error.log_message or ""
            if text.startswith("Failed to check authorization:"):
                model = None  # the hub refused the token itself
            else:
                log.warning("could not check a token with the hub: %s", text)
                raise AuthError(
                    503, "The hub could not be asked about this token; try again in a minute."
                ) from None
        if not model or not model.get("name"):
            raise AuthError(
                401,
                "The hub does not accept this token: it is unknown, expired or revoked. "
                "Create a new one on the hub's Token page.",
            )
        scopes = frozenset(model.get("scopes") or ())
        if self.hub.access_scopes and not self.hub.check_scopes(
            self.hub.access_scopes, {"scopes": scopes}
        ):
            raise AuthError(
                403,
                f"This token may not use the {self.service_name} service: it lacks the "
                f"access:services!service={self.service_name} scope. Create a token with "
                "default permissions on the hub's Token page.",
            )
        return HubUser(name=str(model["name"]), kind=str(model.get("kind", "user")), scopes=scopes)
