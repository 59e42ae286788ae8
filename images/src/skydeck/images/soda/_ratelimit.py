"""Per-user request rate limits (a sliding window kept in memory)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead, and what the client should be told."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds for each user."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, user: str, limit: int | None = None) -> RateDecision:
        """Record one request of ``user`` if allowed (``limit`` overrides the default)."""
        limit = self.limit if limit is None else limit
        now = self._clock()
        with self._lock:
            events = self._events.setdefault(user, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= limit:
                reset = max(1, math.ceil(events[0] + self.window - now)) if events else 1
                return RateDecision(False, limit, 0, reset)
            events.append(now)
            reset = max(1, math.ceil(events[0] + self.window - now))
            return RateDecision(True, limit, limit - len(events), reset)
