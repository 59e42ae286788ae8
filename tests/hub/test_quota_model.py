"""The quota model and the one decision function (pure, no storage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skydeck.hub.quota.model import (
    GroupRule,
    Override,
    Policy,
    QuotaError,
    effective_quota,
    validate_patch,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def rule(group, quota):
    return GroupRule(group, validate_patch(quota, additive=True), "admin", NOW)


def test_defaults_offer_sizes_within_limits():
    eff = effective_quota("ann", [], Policy(), {}, None, NOW)
    assert eff.sources == ["default"]
    assert eff.quota.lab.memory_gib == 4
    assert [s.name for s in eff.sizes] == ["standard"]


def test_group_additions_add_and_spawn_false_wins():
    rules = {
        "astro": rule(
            "astro",
            {"lab": {"memory_gib": 4, "cpu": 2}, "api": {"requests_per_minute": {"tap": 40}}},
        ),
        "blocked": rule("blocked", {"lab": {"spawn": False}}),
        "big": rule("big", {"lab": {"memory_gib": 24, "cpu": 4}}),
    }
    eff = effective_quota("ann", ["astro", "other"], Policy(), rules, None, NOW)
    assert eff.quota.lab.memory_gib == 8 and eff.quota.lab.cpu == 4
    assert eff.quota.api.requests_per_minute["tap"] == 100
    assert [s.name for s in eff.sizes] == ["standard", "large"]
    assert eff.sources == ["default", "group:astro"]
    both = effective_quota("ann", ["astro", "big", "blocked"], Policy(), rules, None, NOW)
    assert both.quota.lab.memory_gib == 32 and both.quota.lab.cpu == 8
    assert both.quota.lab.spawn is False


def test_named_sizes_restrict_menu():
    rules = {"s": rule("s", {"lab": {"memory_gib": 100, "cpu": 100}})}
    policy = Policy()
    policy.defaults.lab.sizes = ["large"]
    eff = effective_quota("ann", ["s"], policy, rules, None, NOW)
    assert [s.name for s in eff.sizes] == ["large"]


def test_bypass_group_is_unlimited():
    policy = Policy(bypass_groups=["staff"])
    rules = {"blocked": rule("blocked", {"lab": {"spawn": False}})}
    eff = effective_quota("ann", ["staff", "blocked"], policy, rules, None, NOW)
    assert eff.unlimited and eff.quota.lab.spawn and eff.quota.lab.memory_gib is None
    assert eff.quota.tap.concurrent is None
    assert set(eff.quota.api.requests_per_minute.values()) == {None}
    assert [s.name for s in eff.sizes] == ["standard", "large", "xlarge"]


def test_override_replaces_and_expires():
    override = Override(
        "ann",
        validate_patch({"lab": {"memory_gib": 32, "cpu": 8}}, additive=False),
        "paper deadline",
        "admin",
        NOW,
        NOW + timedelta(hours=1),
    )
    rules = {"astro": rule("astro", {"lab": {"memory_gib": 4}})}
    eff = effective_quota("ann", ["astro"], Policy(), rules, override, NOW)
    assert (
        eff.quota.lab.memory_gib == 32 and eff.override and eff.override.reason == "paper deadline"
    )
    assert eff.sources[-1] == "override"
    later = effective_quota("ann", ["astro"], Policy(), rules, override, NOW + timedelta(hours=2))
    assert later.quota.lab.memory_gib == 8 and later.override is None


@pytest.mark.parametrize(
    ("raw", "additive", "message"),
    [
        ({"labb": {"cpu": 1}}, True, "unknown quota kind 'labb'"),
        ({"lab": {"ram": 1}}, True, "unknown field lab.ram"),
        ({"lab": {"spawn": True}}, True, "only carry lab.spawn: false"),
        ({"lab": {"cpu": -1}}, False, "lab.cpu"),
        ({"lab": {"cpu": None}}, True, "bypass group"),
        ([1], False, "must be an object"),
    ],
)
def test_bad_patches_say_what_to_fix(raw, additive, message):
    with pytest.raises(QuotaError, match=message.replace(".", r"\.")):
        validate_patch(raw, additive=additive)


def test_override_may_lift_a_limit():
    patch = validate_patch({"tap": {"concurrent": None}}, additive=False)
    override = Override("ann", patch, "r", "admin", NOW, None)
    eff = effective_quota("ann", [], Policy(), {}, override, NOW)
    assert eff.quota.tap.concurrent is None
