"""Per-user limits: the service's configuration, tightened by the Skydeck quota service.

The quota service answers "what may this user have?" for every enforcer, through the
one client of `skydeck.service`; TAP reads ``tap.concurrent``, ``tap.maxrec`` and
``tap.execution_seconds`` and counts each query against the ``tap`` request rate.
When the quota service cannot be asked, queries are refused (`QuotaUnavailable`, 503),
never run under generous defaults; over the rate they get `RateLimited` (429 with
``Retry-After``).
"""

from __future__ import annotations

from dataclasses import dataclass

from skydeck.service import QuotaClient as _Client
from skydeck.service import QuotaUnavailable, RateLimited

__all__ = ["Limits", "QuotaClient", "QuotaUnavailable", "RateLimited", "combine"]


@dataclass(frozen=True)
class Limits:
    """What one user may do; the tighter of configuration and quota."""

    concurrent: int
    maxrec: int
    execution_seconds: float


def _tighter(configured: float, quota: float | None) -> float:
    return configured if quota is None else min(configured, quota)


class QuotaClient:
    """TAP's questions to the quota service (``tap`` limits, the ``tap`` rate)."""

    def __init__(self, client: _Client) -> None:
        self.client = client

    def tap_quota(self, user: str) -> dict[str, float | None]:
        """The user's ``tap`` quota; raises `QuotaUnavailable` when it cannot be asked."""
        return self.client.limits(user, "tap")

    def count_request(self, user: str) -> None:
        """Count one query against the user's ``tap`` rate; raises `RateLimited` when over."""
        self.client.hit_rate(user, "tap")

    def close(self) -> None:
        self.client.close()


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
