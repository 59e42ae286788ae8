"""The quota store and service on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skydeck.hub.quota.model import Policy, QuotaError
from skydeck.hub.quota.service import QuotaService, RateLimiter
from skydeck.hub.quota.store import QuotaStore

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'quota.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = QuotaStore(url)
    yield store
    store.close()


def test_changes_are_stored_audited_and_expire(store, tmp_path):
    clock = Clock(T0)
    service = QuotaService(store, clock=clock)
    assert service.effective("ann", ["astro"]).quota.lab.memory_gib == 4

    service.set_group("astro", {"lab": {"memory_gib": 4}}, "root", "survey team needs more")
    assert service.effective("ann", ["astro"]).quota.lab.memory_gib == 8
    assert service.effective("bob", []).quota.lab.memory_gib == 4

    service.set_override(
        "ann", {"lab": {"memory_gib": 16}}, "root", "deadline", expires_at=T0 + timedelta(hours=2)
    )
    eff = service.effective("ann", ["astro"])
    assert (
        eff.quota.lab.memory_gib == 16
        and eff.override
        and eff.override.expires_at == T0 + timedelta(hours=2)
    )
    clock.now = T0 + timedelta(hours=3)
    assert service.effective("ann", ["astro"]).quota.lab.memory_gib == 8
    assert store.overrides(active_at=clock.now) == [] and len(store.overrides()) == 1

    assert service.remove_group("astro", "root", "team disbanded")
    assert service.effective("ann", ["astro"]).quota.lab.memory_gib == 4

    log = service.audit_log()
    assert [(e.action, e.target, e.actor) for e in log] == [
        ("remove-group", "group:astro", "root"),
        ("set-override", "user:ann", "root"),
        ("set-group", "group:astro", "root"),
    ]
    assert log[2].reason == "survey team needs more" and log[2].detail["quota"] == {
        "lab": {"memory_gib": 4.0}
    }
    assert log[0].at.tzinfo is not None

    # A second store on the same database sees the same rows (hub process + quota service).
    other = QuotaStore(store.url)
    assert other.audit_log(limit=1)[0].action == "remove-group"
    other.close()


def test_changes_need_a_reason_and_valid_values(store):
    service = QuotaService(store, clock=Clock(T0))
    with pytest.raises(QuotaError, match="needs a reason"):
        service.set_group("astro", {"lab": {"cpu": 1}}, "root", " ")
    with pytest.raises(QuotaError, match="unknown field"):
        service.set_group("astro", {"lab": {"gpus": 1}}, "root", "why")
    with pytest.raises(QuotaError, match="in the past"):
        service.set_override("ann", {"lab": {"cpu": 1}}, "root", "why", T0 - timedelta(seconds=1))
    assert store.audit_log() == [] and store.group_rules() == {}


def test_policy_round_trip(store):
    service = QuotaService(store, clock=Clock(T0))
    policy = Policy(bypass_groups=["staff"], contact="help@example.org")
    policy.defaults.tap.concurrent = 1
    service.set_policy(policy.model_dump(), "root", "initial policy")
    assert store.get_policy() == policy
    eff = service.effective("ann", ["staff"])
    assert eff.unlimited and eff.contact == "help@example.org"
    with pytest.raises(QuotaError, match="invalid policy"):
        service.set_policy(
            {"sizes": [{"name": "Bad Name", "cpu": 1, "memory_gib": 1}]}, "root", "x"
        )


def test_budget_from_sessions_and_spent_budget_refuses(store):
    clock = Clock(T0)
    service = QuotaService(store, clock=clock)
    policy = Policy()
    policy.defaults.budget.cpu_hours = 10
    store.set_policy(policy)
    # 2 CPUs for 3 hours = 6 CPU-hours, 40 days ago (outside the window) 100 hours.
    store.open_session("ann", "lab", "", 1, 2, T0 - timedelta(days=40), size="small")
    store.close_session("ann", "lab", "", T0 - timedelta(days=40) + timedelta(hours=100))
    store.open_session("ann", "lab", "", 2, 4, T0, size="medium")
    clock.now = T0 + timedelta(hours=3)
    status = service.status("ann", [])
    assert status.usage.budget.cpu_hours == pytest.approx(6)
    assert status.usage.budget.memory_gib_hours == pytest.approx(12)
    assert status.spawn.allowed
    assert [r.size for r in status.usage.running] == ["medium"]
    assert status.warnings == []  # 6 of 10 CPU-hours: below the 80% warning
    clock.now = T0 + timedelta(hours=4.5)
    assert [w.kind for w in service.status("ann", []).warnings] == ["budget"]
    clock.now = T0 + timedelta(hours=5)
    status = service.status("ann", [])
    assert not status.spawn.allowed
    assert "compute budget" in (status.spawn.reason or "")
    assert "platform administrators" in (status.spawn.reason or "")
    store.close_session("ann", "lab", "", clock.now)
    assert service.running("ann") == []


def test_storage_soft_warning_and_hard_refusal(store, tmp_path):
    home = tmp_path / "home" / "ann"
    home.mkdir(parents=True)
    (home / "data.bin").write_bytes(b"\1" * (3 * 1024 * 1024))
    service = QuotaService(
        store, home_template=str(tmp_path / "home" / "{username}"), clock=Clock(T0)
    )
    policy = Policy()
    policy.defaults.storage.soft_gib = 0.001
    policy.defaults.storage.hard_gib = 1.0
    store.set_policy(policy)
    status = service.status("ann", [], fresh_storage=True)
    assert status.usage.storage.used_gib == pytest.approx(3 / 1024, rel=0.2)
    assert [w.kind for w in status.warnings] == ["storage"] and status.spawn.allowed
    policy.defaults.storage.hard_gib = 0.002
    store.set_policy(policy)
    status = service.status("ann", [], fresh_storage=True)
    assert not status.spawn.allowed and "hard limit" in (status.spawn.reason or "")
    assert service.status("nobody-home", []).usage.storage.used_gib is None


def test_rate_limiter_window():
    limiter = RateLimiter()  # the limits library's moving window, in memory
    decisions = [limiter.hit("k", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].headers()["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(decisions[3].headers()["Retry-After"]) <= 60
    assert not limiter.hit("k", 3).allowed  # refusals are not counted, but still refused
    assert limiter.hit("other", 3).allowed  # per key
    assert limiter.hit("k", None).headers() == {}
