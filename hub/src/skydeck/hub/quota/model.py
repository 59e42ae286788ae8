"""The quota model and the one function that answers "what may this user have?".

A user's quota is the policy's defaults plus the *additions* of every hub group
the user belongs to; a group (or an override) carrying ``lab.spawn: false``
forbids spawning; membership of a *bypass* group lifts every limit; an admin's
per-user *override* replaces the computed values it names until it expires.

Every enforcer (spawner, dask-gateway, TAP, cutouts) asks `effective_quota` (in
the hub) or the quota service's REST API (elsewhere); none re-implements it.
A limit of ``None`` means *no limit*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

GIB = 1024**3

Number = float | int


class _Kind(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabQuota(_Kind):
    """JupyterLab servers: may the user spawn, how big, which named sizes."""

    spawn: bool = Field(default=True, description="May the user start a lab at all.")
    cpu: float | None = Field(default=2.0, ge=0, description="Most CPU cores of one lab.")
    memory_gib: float | None = Field(default=4.0, ge=0, description="Most memory of one lab, GiB.")
    sizes: list[str] | None = Field(
        default=None, description="Named sizes offered (None: every size within cpu and memory)."
    )


class DaskQuota(_Kind):
    """Dask clusters through dask-gateway."""

    clusters: int | None = Field(default=1, ge=0, description="Concurrent clusters.")
    workers: int | None = Field(default=4, ge=0, description="Workers per cluster.")
    cores: float | None = Field(default=4.0, ge=0, description="Cores of all workers together.")
    memory_gib: float | None = Field(default=16.0, ge=0, description="Memory of all workers, GiB.")


class TapQuota(_Kind):
    """Queries to the TAP service."""

    concurrent: int | None = Field(default=2, ge=0, description="Queries running at once.")
    maxrec: int | None = Field(
        default=100_000, ge=0, description="Ceiling on MAXREC (rows returned)."
    )
    execution_seconds: int | None = Field(default=600, ge=0, description="Longest execution time.")


class ApiQuota(_Kind):
    """Requests per minute to each service; the key ``*`` covers unnamed services."""

    requests_per_minute: dict[str, int | None] = Field(
        default_factory=lambda: dict[str, int | None]({"tap": 60, "cutouts": 120, "*": 300})
    )


class StorageQuota(_Kind):
    """The home directory."""

    soft_gib: float | None = Field(default=10.0, ge=0, description="Over this the lab warns.")
    hard_gib: float | None = Field(default=20.0, ge=0, description="Over this spawning is refused.")


class BudgetQuota(_Kind):
    """Compute budget over a rolling window."""

    cpu_hours: float | None = Field(default=500.0, ge=0, description="CPU core-hours per window.")
    memory_gib_hours: float | None = Field(default=2000.0, ge=0, description="Memory GiB-hours.")
    window_days: int = Field(default=30, ge=1, description="Length of the rolling window in days.")


class Quota(_Kind):
    """Limits of every kind."""

    lab: LabQuota = Field(default_factory=LabQuota)
    dask: DaskQuota = Field(default_factory=DaskQuota)
    tap: TapQuota = Field(default_factory=TapQuota)
    api: ApiQuota = Field(default_factory=ApiQuota)
    storage: StorageQuota = Field(default_factory=StorageQuota)
    budget: BudgetQuota = Field(default_factory=BudgetQuota)

    def unlimited(self) -> Quota:
        """The same shape with every limit lifted (bypass groups)."""
        data = self.model_dump()
        for kind, fields in data.items():
            for name, value in fields.items():
                if name == "spawn":
                    fields[name] = True
                elif name == "requests_per_minute":
                    fields[name] = dict.fromkeys(value)
                elif name != "window_days":
                    fields[name] = None
            data[kind] = fields
        return Quota.model_validate(data)


KINDS: dict[str, type[_Kind]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Quota.model_fields.items()
}


class Size(BaseModel):
    """A named lab size offered in the spawn menu."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)


#: The default menu.  With the default lab quota (2 CPUs, 4 GiB) only "standard" fits,
#: so users get no menu and their lab starts right away; groups that add more see one.
DEFAULT_SIZES = [
    Size(name="standard", description="2 CPUs, 4 GiB", cpu=2, memory_gib=4),
    Size(name="large", description="4 CPUs, 8 GiB", cpu=4, memory_gib=8),
    Size(name="xlarge", description="8 CPUs, 32 GiB", cpu=8, memory_gib=32),
]


class Policy(BaseModel):
    """Platform-wide settings: defaults, the size menu, bypass groups, whom to ask."""

    model_config = ConfigDict(extra="forbid")

    defaults: Quota = Field(default_factory=Quota)
    sizes: list[Size] = Field(default_factory=lambda: list(DEFAULT_SIZES))
    bypass_groups: list[str] = Field(default_factory=list)
    contact: str = Field(
        default="your platform administrators",
        description="Whom users should ask for more (shown in every refusal).",
    )

    @field_validator("sizes")
    @classmethod
    def _unique_sizes(cls, sizes: list[Size]) -> list[Size]:
        names = [s.name for s in sizes]
        if len(set(names)) != len(names):
            raise ValueError(f"size names must be unique, got {names}")
        return sizes


class QuotaError(ValueError):
    """A quota change that cannot be applied; the message says what to fix."""


#: A partial quota: ``{"lab": {"memory_gib": 4}}``.  Additions for groups, replacements
#: for overrides.
QuotaPatch = dict[str, dict[str, Any]]


def validate_patch(raw: Any, *, additive: bool) -> QuotaPatch:
    """Check a partial quota against the model; raise `QuotaError` saying what is wrong.

    Group additions (``additive``) may only hold numbers to add, ``spawn: false``,
    sizes to offer in addition and per-service request rates; overrides may set
    any field, ``None`` meaning unlimited.
    """
    if not isinstance(raw, dict):
        raise QuotaError('a quota must be an object such as {"lab": {"memory_gib": 8}}')
    patch: QuotaPatch = {}
    for kind, fields in raw.items():
        if kind not in KINDS:
            raise QuotaError(f"unknown quota kind {kind!r}; known kinds: {', '.join(KINDS)}")
        if not isinstance(fields, dict) or not fields:
            raise QuotaError(f"quota kind {kind!r} needs an object of fields")
        model = KINDS[kind]
        for name, value in fields.items():
            if name not in model.model_fields:
                known = ", ".join(model.model_fields)
                raise QuotaError(f"unknown field {kind}.{name}; {kind} has: {known}")
            if additive and name == "spawn" and value is not False:
                raise QuotaError("a group can only carry lab.spawn: false (true is the default)")
            if additive and name == "window_days":
                raise QuotaError("budget.window_days is set in the policy, not per group")
            if additive and value is None:
                raise QuotaError(
                    f"{kind}.{name}: a group adds amounts; use a bypass group for none"
                )
        try:
            checked = model.model_validate({**model().model_dump(), **fields})
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in (kind, *first["loc"]))
            raise QuotaError(f"{where}: {first['msg']}") from None
        patch[kind] = {name: getattr(checked, name) for name in fields}
    return patch


def _add(base: Any, extra: Any) -> Any:
    if base is None:
        return None  # unlimited stays unlimited
    if isinstance(base, bool) or isinstance(extra, bool):
        return base and extra  # spawn: any false wins
    if isinstance(base, list):
        return sorted(set(base) | set(extra))
    if isinstance(base, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _add(out.get(key, base.get("*", 0)), value)
        return out
    result = base + extra
    return int(result) if isinstance(base, int) and isinstance(extra, int) else result


@dataclass(frozen=True)
class GroupRule:
    """The additions a hub group gives its members."""

    group: str
    quota: QuotaPatch
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class Override:
    """An admin's per-user replacement of computed values."""

    user: str
    quota: QuotaPatch
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class OverrideInfo(BaseModel):
    quota: QuotaPatch
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None


class EffectiveQuota(BaseModel):
    """What a user may have right now, and why (the ``/quota`` JSON)."""

    user: str
    groups: list[str]
    unlimited: bool = Field(description="A bypass group lifts every limit.")
    sources: list[str] = Field(description="What was combined: default, group:<g>, override.")
    quota: Quota
    sizes: list[Size] = Field(description="The named lab sizes this user is offered.")
    override: OverrideInfo | None = None
    contact: str


def offered_sizes(policy: Policy, lab: LabQuota) -> list[Size]:
    """The policy's sizes within the lab quota, in the policy's order."""
    return [
        size
        for size in policy.sizes
        if (lab.sizes is None or size.name in lab.sizes)
        and (lab.cpu is None or size.cpu <= lab.cpu)
        and (lab.memory_gib is None or size.memory_gib <= lab.memory_gib)
    ]


def effective_quota(
    user: str,
    groups: list[str],
    policy: Policy,
    rules: dict[str, GroupRule],
    override: Override | None,
    now: datetime,
) -> EffectiveQuota:
    """What ``user`` (member of ``groups``) may have at ``now``: the one decision.

    defaults + each group's additions (``spawn: false`` wins), or no limits for a
    bypass group member; then an unexpired override replaces what it names.
    """
    groups = sorted(groups)
    bypass = [g for g in groups if g in policy.bypass_groups]
    data = policy.defaults.model_dump()
    sources = ["default"]
    if bypass:
        data = policy.defaults.unlimited().model_dump()
        sources = [f"bypass:{g}" for g in bypass]
    else:
        for group in groups:
            rule = rules.get(group)
            if rule is None:
                continue
            sources.append(f"group:{group}")
            for kind, fields in rule.quota.items():
                for name, value in fields.items():
                    data[kind][name] = _add(data[kind][name], value)
    info = None
    if override is not None and override.active(now):
        sources.append("override")
        for kind, fields in override.quota.items():
            for name, value in fields.items():
                data[kind][name] = value
        info = OverrideInfo(
            quota=override.quota,
            reason=override.reason,
            created_by=override.created_by,
            created_at=override.created_at,
            expires_at=override.expires_at,
        )
    quota = Quota.model_validate(data)
    return EffectiveQuota(
        user=user,
        groups=groups,
        unlimited=bool(bypass) and "override" not in sources,
        sources=sources,
        quota=quota,
        sizes=offered_sizes(policy, quota.lab),
        override=info,
        contact=policy.contact,
    )


class BudgetUsage(BaseModel):
    window_days: int
    cpu_hours: float
    memory_gib_hours: float
    cpu_hours_limit: float | None
    memory_gib_hours_limit: float | None

    @property
    def spent(self) -> bool:
        over_cpu = self.cpu_hours_limit is not None and self.cpu_hours >= self.cpu_hours_limit
        over_mem = (
            self.memory_gib_hours_limit is not None
            and self.memory_gib_hours >= self.memory_gib_hours_limit
        )
        return over_cpu or over_mem


class StorageUsage(BaseModel):
    used_gib: float | None = Field(description="None when the home is not measurable here.")
    soft_gib: float | None
    hard_gib: float | None


class RunningSession(BaseModel):
    source: Literal["lab", "dask"] | str
    key: str
    cpu: float
    memory_gib: float
    size: str | None
    started_at: datetime
    workers: int | None = Field(default=None, description="Dask workers, when recorded.")


class Usage(BaseModel):
    running: list[RunningSession]
    budget: BudgetUsage
    storage: StorageUsage


class Warning_(BaseModel):
    kind: str
    message: str


class SpawnDecision(BaseModel):
    allowed: bool
    reason: str | None = Field(default=None, description="Why not, and whom to ask.")


class QuotaStatus(BaseModel):
    """A user's limits and usage (the ``/status`` JSON the lab extension shows)."""

    user: str
    quota: EffectiveQuota
    usage: Usage
    spawn: SpawnDecision
    warnings: list[Warning_]
