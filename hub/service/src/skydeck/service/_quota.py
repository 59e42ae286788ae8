"""The one client of the Skydeck quota service, for every enforcer.

The quota service (``/services/quota/``) answers "what may this user have?"
(``GET api/users/<user>/quota``) and counts requests against per-minute rates
(``POST api/users/<user>/rate/<service>``: 200, or 429 with ``Retry-After``).
When it cannot be asked, expensive work is refused: `QuotaUnavailable` (503), never
a silent fallback to generous defaults.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

from ._rate import RateDecision

log = logging.getLogger(__name__)

UNAVAILABLE = "the quota service is unavailable; try again in a minute"

#: What a client is told to wait when the quota service is unavailable (seconds).
UNAVAILABLE_RETRY_SECONDS = 60


class QuotaUnavailable(Exception):
    """The quota service could not be asked: refuse the work (HTTP 503, ``Retry-After``)."""

    status = 503

    def __init__(self, message: str = UNAVAILABLE) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = UNAVAILABLE_RETRY_SECONDS

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(Exception):
    """The user is over their request rate (HTTP 429); `decision` carries the headers."""

    status = 429

    def __init__(self, message: str, decision: RateDecision) -> None:
        super().__init__(message)
        self.message = message
        self.decision = decision

    @property
    def retry_after(self) -> int:
        return self.decision.retry_after or 1

    def headers(self) -> dict[str, str]:
        return self.decision.headers()


def user_path(user: str) -> str:
    """``user`` as one URL path segment: ``?``, ``#``, ``/`` and ``%`` are encoded."""
    return quote(user, safe="")


class QuotaClient:
    """Asks the quota service with the calling service's hub token; thread-safe.

    Quotas are cached for ``cache_seconds`` per user; rate hits are never cached.
    """

    def __init__(
        self, url: str, token: str | None, cache_seconds: float = 30.0, timeout: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        headers = {"Authorization": f"token {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def quota(self, user: str) -> dict[str, Any]:
        """The user's effective quota (every kind); raises `QuotaUnavailable`."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = self._client.get(f"{self.url}/api/users/{user_path(user)}/quota")
            response.raise_for_status()
            quota = response.json()["quota"]
            if not isinstance(quota, dict):
                raise ValueError("the answer has no quota object")
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as error:
            log.warning("quota service unavailable for %r: %s", user, error)
            raise QuotaUnavailable() from None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[user] = (now + self.cache_seconds, quota)
        return quota

    def limits(self, user: str, kind: str) -> dict[str, Any]:
        """One kind of the user's quota (``tap``, ``dask``, ...); raises `QuotaUnavailable`."""
        section = self.quota(user).get(kind)
        if not isinstance(section, dict):
            log.warning("the quota service gave no %r quota for %r", kind, user)
            raise QuotaUnavailable()
        return section

    def hit_rate(self, user: str, service: str) -> RateDecision:
        """Count one request of ``user`` to ``service``.

        Raises `RateLimited` when over the rate and `QuotaUnavailable` when the quota
        service cannot count it.
        """
        url = f"{self.url}/api/users/{user_path(user)}/rate/{quote(service, safe='')}"
        try:
            response = self._client.post(url)
            body = response.json() if response.content else {}
            if response.status_code == 429:
                decision = RateDecision.from_json(
                    {**body, "allowed": False}, response.headers.get("Retry-After")
                )
                message = str(body.get("message") or f"too many requests to {service}")
                if "retry" not in message.lower():
                    message += f"; retry after {decision.retry_after} s"
                raise RateLimited(message, decision)
            response.raise_for_status()
            return RateDecision.from_json(body)
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as error:
            log.warning(
                "quota service could not count a %s request of %r: %s", service, user, error
            )
            raise QuotaUnavailable() from None

    def close(self) -> None:
        self._client.close()
