"""The few hub REST calls the quota service makes with its own token."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

PAGINATION = "application/jupyterhub-pagination+json"


class HubUnavailable(RuntimeError):
    """The hub did not answer; the message says what to do."""


class HubAPI:
    """Users, groups and running servers from the hub's REST API."""

    def __init__(self, api_url: str, token: str, cache_seconds: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def _get(self, path: str, accept: str = "application/json") -> Any:
        client = AsyncHTTPClient()
        try:
            response = await client.fetch(
                self.api_url + path,
                headers={"Authorization": f"token {self.token}", "Accept": accept},
                request_timeout=30,
            )
        except HTTPClientError as error:
            if error.code == 404:
                return None
            raise HubUnavailable(f"the hub API answered {error.code} for {path}") from error
        except OSError as error:
            raise HubUnavailable(f"the hub API is unreachable ({error}); try again") from error
        return json.loads(response.body)

    async def user(self, name: str) -> dict[str, Any] | None:
        """The hub's model of ``name`` (groups, admin, servers), None if no such user."""
        cached = self._users.get(name)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        model = await self._get(f"/users/{quote(name, safe='')}")
        if model is not None:  # a user added a moment ago must be found at once
            self._users[name] = (time.monotonic(), model)
        return model

    async def _paged(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self._get(f"{path}?{urlencode({'offset': offset})}", accept=PAGINATION)
            if page is None:
                return items
            items.extend(page["items"])
            following = page.get("_pagination", {}).get("next")
            if not following:
                return items
            offset = following["offset"]

    async def users(self) -> list[dict[str, Any]]:
        return await self._paged("/users")

    async def groups(self) -> list[dict[str, Any]]:
        return await self._paged("/groups")
