"""Rate-limit answers: one decision type, and the headers every service sends with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateDecision:
    """Whether one request may go ahead, with the figures the client is told.

    ``limit`` None means no limit. A refusal always has ``retry_after`` (seconds).
    """

    allowed: bool
    limit: int | None
    remaining: int | None
    reset_seconds: int
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-Limit/Remaining/Reset``, and ``Retry-After`` on a refusal."""
        headers: dict[str, str] = {}
        if self.limit is not None:
            headers |= {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_seconds),
            }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after or self.reset_seconds or 1))
        return headers

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset": self.reset_seconds,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], retry_after: str | None = None) -> RateDecision:
        allowed = bool(data.get("allowed", True))
        retry: int | None = None
        if not allowed:
            try:
                retry = max(1, int(float(retry_after or data.get("retry_after") or 0)))
            except (TypeError, ValueError):
                retry = None
            retry = retry or max(1, int(data.get("reset") or 60))
        limit = data.get("limit")
        return cls(
            allowed=allowed,
            limit=None if limit is None else int(limit),
            remaining=None if data.get("remaining") is None else int(data["remaining"]),
            reset_seconds=int(data.get("reset") or 0),
            retry_after=retry,
        )
