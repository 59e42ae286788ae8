"""Authentication: hub tokens checked against the JupyterHub API (cached briefly)."""

from __future__ import annotations

import time

import httpx

ANONYMOUS = "anonymous"


class AuthError(Exception):
    """The request carries no valid credentials; the message says how to get some."""


class HubAuthenticator:
    """Resolves a hub API token to a user name with ``GET {hub_api}/user``."""

    def __init__(
        self,
        api_url: str,
        service_token: str | None,
        cache_seconds: float,
        service_name: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.service_name = service_name
        self.service_token = service_token
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[str, float]] = {}
        self._client = httpx.AsyncClient(timeout=10)

    @staticmethod
    def token_from(authorization: str | None, cookie_token: str | None = None) -> str | None:
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() in {"token", "bearer"} and value.strip():
                return value.strip()
        return cookie_token

    async def user(self, token: str | None) -> str:
        if not token:
            raise AuthError(
                "This TAP service needs a hub token: send 'Authorization: Bearer <token>' "
                "(in a Skydeck lab, skydeck.lab.get_tap_service() does this; otherwise create a "
                "token on the hub's Token page)."
            )
        cached = self._cache.get(token)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            response = await self._client.get(
                f"{self.api_url}/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as error:
            raise AuthError(f"The hub could not be asked about this token: {error}") from None
        if response.status_code in {401, 403}:
            self._cache.pop(token, None)
            raise AuthError("The hub does not accept this token: it is unknown or expired.")
        response.raise_for_status()
        model = response.json()
        name = str(model["name"])
        scopes = model.get("scopes")
        if self.service_name and scopes is not None:
            allowed = {"access:services", f"access:services!service={self.service_name}"}
            if not allowed & set(scopes):
                raise AuthError(
                    f"This token may not use the {self.service_name} service: it lacks the "
                    f"access:services!service={self.service_name} scope. Create a token with "
                    "default permissions on the hub's Token page."
                )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (name, now + self.cache_seconds)
        return name

    async def close(self) -> None:
        await self._client.aclose()
