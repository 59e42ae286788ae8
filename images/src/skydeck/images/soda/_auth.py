"""Who is calling: hub tokens checked against the hub API (``GET /user``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx


class AuthError(Exception):
    """No usable token; ``status`` is 401 (no/invalid token) or 403 (not allowed here)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HubUser:
    name: str
    scopes: frozenset[str]


def token_from_header(authorization: str | None) -> str | None:
    """The token of an ``Authorization: token ...`` or ``Bearer ...`` header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


class HubTokenChecker:
    """Asks the hub who owns a token, and remembers the answer for a short while."""

    def __init__(self, hub_api_url: str, service_name: str, cache_seconds: float = 60.0) -> None:
        self.hub_api_url = hub_api_url.rstrip("/")
        self.service_name = service_name
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, HubUser]] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10.0)

    def user(self, token: str | None) -> HubUser:
        if not token:
            raise AuthError(
                401,
                "Authentication required: send your hub token as 'Authorization: token <token>' "
                "(in a Skydeck lab it is $JUPYTERHUB_API_TOKEN).",
            )
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
        if cached and cached[0] > now:
            return cached[1]
        if not self.hub_api_url:
            raise AuthError(503, "The cutout service does not know the hub API URL.")
        try:
            response = self._client.get(
                f"{self.hub_api_url}/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as err:
            raise AuthError(503, f"Could not reach the hub to check the token: {err}") from err
        if response.status_code in (401, 403):
            raise AuthError(401, "The token is not valid (expired or revoked); get a new one.")
        if response.status_code != 200:
            raise AuthError(503, f"The hub answered {response.status_code} checking the token.")
        model = response.json()
        scopes = frozenset(model.get("scopes") or [])
        user = HubUser(name=str(model.get("name", "")), scopes=scopes)
        if model.get("kind", "user") != "user" or not user.name:
            raise AuthError(403, "Cutouts are for users; this token belongs to a service.")
        allowed = {"access:services", f"access:services!service={self.service_name}"}
        if scopes and not scopes & allowed:
            raise AuthError(403, f"This token may not use the {self.service_name} service.")
        with self._lock:
            self._cache[token] = (now + self.cache_seconds, user)
        return user
