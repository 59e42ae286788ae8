"""Per-user limits: the service's configuration, tightened by the Skydeck quota service.

The quota service (``/services/quota/``) answers "what may this user have?" for
every enforcer; TAP reads ``tap.concurrent``, ``tap.maxrec`` and
``tap.execution_seconds`` from ``GET api/users/<user>/quota`` and counts each
query with ``POST api/users/<user>/rate/tap`` (429 when over the rate).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one user may do; the tighter of configuration and quota."""

    concurrent: int
    maxrec: int
    execution_seconds: float


class RateLimited(Exception):
    """The user made too many requests; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: str | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _tighter(configured: float, quota: float | None) -> float:
    return configured if quota is None else min(configured, quota)


class QuotaClient:
    """Reads limits from the quota service with the service's hub token (cached briefly)."""

    def __init__(self, url: str, token: str | None, cache_seconds: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[dict[str, float | None], float]] = {}
        self._lock = threading.Lock()
        headers = {"Authorization": f"token {token}"} if token else {}
        self._client = httpx.Client(timeout=10, headers=headers)

    def tap_quota(self, user: str) -> dict[str, float | None] | None:
        """The user's ``tap`` quota, or None when the quota service cannot be reached."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            response = self._client.get(f"{self.url}/api/users/{user}/quota")
            response.raise_for_status()
            tap: dict[str, float | None] = response.json()["quota"]["tap"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            log.warning(
                "quota service unavailable for %s (%s); using configured limits", user, error
            )
            return None
        with self._lock:
            self._cache[user] = (tap, now + self.cache_seconds)
        return tap

    def count_request(self, user: str) -> None:
        """Count one query against the user's request rate; raises `RateLimited` when over."""
        try:
            response = self._client.post(f"{self.url}/api/users/{user}/rate/tap")
        except httpx.HTTPError as error:
            log.warning("quota service unavailable (%s); request not counted", error)
            return
        if response.status_code == 429:
            message = response.json().get("message", "too many requests to TAP")
            raise RateLimited(message, response.headers.get("Retry-After"))

    def close(self) -> None:
        self._client.close()


def combine(
    concurrent: int, maxrec: int, execution_seconds: float, quota: dict[str, float | None] | None
) -> Limits:
    """The configured limits tightened by a quota (None entries are unlimited)."""
    quota = quota or {}
    return Limits(
        concurrent=int(_tighter(concurrent, quota.get("concurrent"))),
        maxrec=int(_tighter(maxrec, quota.get("maxrec"))),
        execution_seconds=_tighter(execution_seconds, quota.get("execution_seconds")),
    )
