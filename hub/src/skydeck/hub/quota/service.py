"""Quota decisions: effective quotas, changes with audit, usage, spawn and rate checks.

Handlers (REST, pages, CLI through REST) and the spawn hooks call this layer;
it reads and writes through `QuotaStore` and holds every rule.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from skydeck.hub.quota.model import (
    BudgetUsage,
    EffectiveQuota,
    Override,
    Policy,
    QuotaError,
    QuotaPatch,
    QuotaStatus,
    RunningSession,
    SpawnDecision,
    StorageUsage,
    Usage,
    Warning_,
    effective_quota,
    validate_patch,
)
from skydeck.hub.quota.store import AuditEntry, QuotaStore
from skydeck.service import RateDecision

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def measure_dir_gib(path: Path) -> float | None:
    """Disk space used below ``path`` in GiB (allocated blocks), None if it does not exist.

    A path the system cannot even look up (e.g. a name too long for the file system,
    from a user record older than the user-name rule) counts as not existing, so one
    odd user never breaks the pages that list everyone.
    """
    try:
        if not path.is_dir():
            return None
    except OSError:
        return None
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return total / 1024**3


class QuotaService:
    """Every quota rule, over one store."""

    def __init__(
        self,
        store: QuotaStore,
        *,
        home_template: str | None = None,
        clock: Clock = utcnow,
        storage_cache_seconds: float = 60.0,
        rate_storage: str = "memory://",
    ) -> None:
        self.store = store
        self.home_template = home_template
        self.clock = clock
        self.storage_cache_seconds = storage_cache_seconds
        self._storage_cache: dict[str, tuple[float, float | None]] = {}
        self.rates = RateLimiter(rate_storage)

    # the one decision ---------------------------------------------------------
    def effective(self, user: str, groups: list[str]) -> EffectiveQuota:
        """What ``user``, member of hub ``groups``, may have right now."""
        return effective_quota(
            user,
            groups,
            self.store.get_policy(),
            self.store.group_rules(),
            self.store.get_override(user),
            self.clock(),
        )

    # changes (each audited) ---------------------------------------------------
    def _require_reason(self, reason: str) -> str:
        reason = (reason or "").strip()
        if not reason:
            raise QuotaError("every quota change needs a reason (it goes into the audit log)")
        return reason

    def set_group(self, group: str, raw: Any, actor: str, reason: str) -> QuotaPatch:
        reason = self._require_reason(reason)
        if not group.strip():
            raise QuotaError("the group name is empty")
        patch = validate_patch(raw, additive=True)
        now = self.clock()
        before = self.store.group_rules().get(group)
        self.store.set_group_rule(group, patch, actor, now)
        detail = {"quota": patch, "before": before.quota if before else None}
        self.store.audit(actor, "set-group", f"group:{group}", detail, reason, now)
        return patch

    def remove_group(self, group: str, actor: str, reason: str) -> bool:
        reason = self._require_reason(reason)
        before = self.store.group_rules().get(group)
        removed = self.store.delete_group_rule(group)
        if removed:
            detail = {"before": before.quota if before else None}
            self.store.audit(actor, "remove-group", f"group:{group}", detail, reason, self.clock())
        return removed

    def set_override(
        self,
        user: str,
        raw: Any,
        actor: str,
        reason: str,
        expires_at: datetime | None = None,
    ) -> Override:
        reason = self._require_reason(reason)
        patch = validate_patch(raw, additive=False)
        now = self.clock()
        if expires_at is not None:
            expires_at = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at
            if expires_at <= now:
                raise QuotaError(f"the expiry {expires_at.isoformat()} is in the past")
        override = Override(user, patch, reason, actor, now, expires_at)
        self.store.set_override(override)
        detail = {"quota": patch, "expires_at": expires_at.isoformat() if expires_at else None}
        self.store.audit(actor, "set-override", f"user:{user}", detail, reason, now)
        return override

    def remove_override(self, user: str, actor: str, reason: str) -> bool:
        reason = self._require_reason(reason)
        before = self.store.get_override(user)
        removed = self.store.delete_override(user)
        if removed and before is not None:
            detail = {"before": before.quota}
            self.store.audit(actor, "remove-override", f"user:{user}", detail, reason, self.clock())
        return removed

    def set_policy(self, raw: Any, actor: str, reason: str) -> Policy:
        reason = self._require_reason(reason)
        try:
            policy = Policy.model_validate(raw)
        except ValueError as error:
            raise QuotaError(f"invalid policy: {error}") from None
        self.store.set_policy(policy)
        detail = {"policy": policy.model_dump(mode="json")}
        self.store.audit(actor, "set-policy", "policy", detail, reason, self.clock())
        return policy

    def audit_log(self, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return self.store.audit_log(limit, target)

    # usage ------------------------------------------------------------------------
    def budget_usage(self, user: str, quota: EffectiveQuota) -> BudgetUsage:
        budget = quota.quota.budget
        now = self.clock()
        since = now - timedelta(days=budget.window_days)
        cpu_hours = mem_hours = 0.0
        for session in self.store.sessions(user, since):
            start = max(session.started_at, since)
            stop = session.stopped_at or now
            hours = max((stop - start).total_seconds(), 0.0) / 3600
            cpu_hours += hours * session.cpu
            mem_hours += hours * session.memory_gib
        return BudgetUsage(
            window_days=budget.window_days,
            cpu_hours=round(cpu_hours, 4),
            memory_gib_hours=round(mem_hours, 4),
            cpu_hours_limit=budget.cpu_hours,
            memory_gib_hours_limit=budget.memory_gib_hours,
        )

    def home_dir(self, user: str) -> Path | None:
        if not self.home_template:
            return None
        return Path(self.home_template.format(username=user))

    def storage_used_gib(self, user: str, fresh: bool = False) -> float | None:
        home = self.home_dir(user)
        if home is None:
            return None
        cached = self._storage_cache.get(user)
        if not fresh and cached and time.monotonic() - cached[0] < self.storage_cache_seconds:
            return cached[1]
        used = measure_dir_gib(home)
        self._storage_cache[user] = (time.monotonic(), used)
        return used

    def running(self, user: str | None = None) -> list[tuple[str, RunningSession]]:
        """Open sessions (``user`` or everyone's), as (user, session)."""
        return [
            (
                s.user,
                RunningSession(
                    source=s.source,
                    key=s.key,
                    cpu=s.cpu,
                    memory_gib=s.memory_gib,
                    size=s.size,
                    started_at=s.started_at,
                    workers=s.workers,
                ),
            )
            for s in self.store.sessions(user, self.clock())
            if s.stopped_at is None
        ]

    def spawn_decision(
        self, quota: EffectiveQuota, budget: BudgetUsage, storage: StorageUsage
    ) -> SpawnDecision:
        """May this user start a lab now?  If not, why and whom to ask."""
        ask = f"Ask {quota.contact} if you need more."
        if not quota.quota.lab.spawn:
            return SpawnDecision(
                allowed=False,
                reason=f"Starting a lab is disabled for your account ({quota.user}). {ask}",
            )
        if budget.spent:
            return SpawnDecision(
                allowed=False,
                reason=(
                    f"Your compute budget for the last {budget.window_days} days is spent "
                    f"({budget.cpu_hours:.1f} of {budget.cpu_hours_limit} CPU-hours, "
                    f"{budget.memory_gib_hours:.1f} of {budget.memory_gib_hours_limit} "
                    f"GiB-hours). It frees up as older usage leaves the window. {ask}"
                ),
            )
        hard = storage.hard_gib
        if hard is not None and storage.used_gib is not None and storage.used_gib >= hard:
            return SpawnDecision(
                allowed=False,
                reason=(
                    f"Your home directory uses {storage.used_gib:.2f} GiB, over its hard limit "
                    f"of {hard} GiB. Delete files (an admin can help) to start a lab again. {ask}"
                ),
            )
        if not quota.sizes:
            return SpawnDecision(
                allowed=False,
                reason=f"No lab size fits within your quota (cpu {quota.quota.lab.cpu}, "
                f"memory {quota.quota.lab.memory_gib} GiB). {ask}",
            )
        return SpawnDecision(allowed=True)

    def status(self, user: str, groups: list[str], fresh_storage: bool = False) -> QuotaStatus:
        """Limits, usage, the spawn decision and warnings of one user."""
        quota = self.effective(user, groups)
        budget = self.budget_usage(user, quota)
        storage_quota = quota.quota.storage
        storage = StorageUsage(
            used_gib=self.storage_used_gib(user, fresh=fresh_storage),
            soft_gib=storage_quota.soft_gib,
            hard_gib=storage_quota.hard_gib,
        )
        warnings: list[Warning_] = []
        used = storage.used_gib
        if used is not None and storage.soft_gib is not None and used >= storage.soft_gib:
            warnings.append(
                Warning_(
                    kind="storage",
                    message=f"Your home directory uses {used:.2f} GiB, over the soft limit of "
                    f"{storage.soft_gib} GiB (hard limit {storage.hard_gib} GiB).",
                )
            )
        for label, value, limit in (
            ("CPU-hours", budget.cpu_hours, budget.cpu_hours_limit),
            ("memory GiB-hours", budget.memory_gib_hours, budget.memory_gib_hours_limit),
        ):
            if limit and value >= 0.8 * limit:
                warnings.append(
                    Warning_(
                        kind="budget",
                        message=f"You used {value:.1f} of {limit} {label} "
                        f"in the last {budget.window_days} days.",
                    )
                )
        decision = self.spawn_decision(quota, budget, storage)
        running = [s for _, s in self.running(user)]
        return QuotaStatus(
            user=user,
            quota=quota,
            usage=Usage(running=running, budget=budget, storage=storage),
            spawn=decision,
            warnings=warnings,
        )

    # rates ------------------------------------------------------------------------
    def hit_rate(self, user: str, groups: list[str], service: str) -> RateDecision:
        """Count one request of ``user`` to ``service`` against its per-minute limit."""
        rpm = self.effective(user, groups).quota.api.requests_per_minute
        limit = rpm.get(service, rpm.get("*"))
        return self.rates.hit(f"{user}\0{service}", limit)


class RateLimiter:
    """Requests per minute per key, a moving window kept by the ``limits`` library.

    ``storage`` is a ``limits`` storage URI: ``memory://`` (one quota service
    replica) or a shared store such as ``redis://host:6379`` (several replicas; needs
    ``limits[redis]``).
    """

    def __init__(self, storage: str = "memory://") -> None:
        self._storage = storage_from_string(storage)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def hit(self, key: str, limit: int | None) -> RateDecision:
        """Count one request under ``key`` if ``limit`` (per minute) allows it."""
        if limit is None:
            return RateDecision(True, None, None, 0, None)
        item = RateLimitItemPerMinute(limit)
        allowed = self._limiter.hit(item, key)
        stats = self._limiter.get_window_stats(item, key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            retry = max(1, reset)
            return RateDecision(False, limit, 0, retry, retry)
        return RateDecision(True, limit, stats.remaining, reset, None)
