"""Quotas through a real hub (``skydeck up``): REST API, spawn enforcement, CLI, browser.

One hub for the module; each test uses its own users and groups.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import psutil
import pytest
import requests
from click.testing import CliRunner

from skydeck.hub.quota.cli import quota as quota_cli
from support.browser import ARTIFACTS
from support.hub import RunningHub

pytestmark = pytest.mark.slow

GIB = 1024**3


@pytest.fixture(scope="module")
def qhub(hub_factory: Callable[..., RunningHub], tmp_path_factory) -> RunningHub:
    # Quotas need no data: an empty release (a manifest without catalogs) keeps TAP content.
    release = tmp_path_factory.mktemp("empty-release")
    (release / "manifest.json").write_text(json.dumps({"catalogs": {}}))
    hub = hub_factory(release=release)
    wait_for_quota(hub)
    return hub


def wait_for_quota(hub: RunningHub) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = q(hub, "GET", "api/policy", hub.admin_token)
        if response.status_code == 200:
            return
        time.sleep(0.3)
    raise AssertionError(f"the quota service did not come up; see {hub.log_path}")


def q(hub: RunningHub, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(
        method,
        f"{hub.url}/services/quota/{path}",
        headers=headers,
        timeout=60,
        allow_redirects=False,
        **kwargs,
    )


def admin_token(hub: RunningHub) -> str:
    return hub.user_token(hub.credentials["admin_user"])


def join_group(hub: RunningHub, group: str, *users: str) -> None:
    for user in users:
        hub.ensure_user(user)
    if hub.api("GET", f"/groups/{group}").status_code == 404:
        hub.api("POST", f"/groups/{group}").raise_for_status()
    hub.api("POST", f"/groups/{group}/users", json={"users": list(users)}).raise_for_status()


def lab_environ(hub: RunningHub, user: str) -> dict[str, str]:
    """The environment of ``user``'s running lab process."""
    for proc in hub.descendants():
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("JUPYTERHUB_USER") == user and "jupyterhub-singleuser" in " ".join(
            proc.cmdline()
        ):
            return env
    raise AssertionError(f"no lab process of {user}")


def spawn(hub: RunningHub, user: str, **options) -> requests.Response:
    hub.ensure_user(user)
    return hub.api("POST", f"/users/{user}/server", json=options or None)


# ----------------------------------------------------------------- authorization matrix
OK, DENIED, ANON = "ok", "denied", "anonymous"

# (method, path, body, who may: "self" = the user, other users denied; "admin" = admins only)
ENDPOINTS = [
    ("GET", "api/users/mx-ann/quota", None, "self"),
    ("GET", "api/users/mx-ann/status", None, "self"),
    ("POST", "api/users/mx-ann/rate/tap", None, "self"),
    ("GET", "api/users/mx-ann/override", None, "self"),
    (
        "PUT",
        "api/users/mx-ann/override",
        {"quota": {"tap": {"concurrent": 3}}, "reason": "m"},
        "admin",
    ),
    ("DELETE", "api/users/mx-ann/override?reason=m", None, "admin"),
    (
        "POST",
        "api/users/mx-ann/sessions",
        {"source": "dask", "key": "c1", "cpu": 1, "memory_gib": 1},
        "admin",
    ),
    ("GET", "api/overrides", None, "admin"),
    ("GET", "api/groups", None, "admin"),
    ("PUT", "api/groups/mx-group", {"quota": {"tap": {"concurrent": 1}}, "reason": "m"}, "admin"),
    ("DELETE", "api/groups/mx-group?reason=m", None, "admin"),
    ("GET", "api/policy", None, "admin"),
    ("GET", "api/audit", None, "admin"),
    ("GET", "api/usage", None, "admin"),
    ("GET", "admin", None, "admin"),
    ("GET", "me", None, "self"),
    ("GET", "api/me", None, "self"),
    ("GET", "api/status", None, "self"),
]


@pytest.mark.parametrize("caller", ["anonymous", "user", "other", "admin", "service"])
def test_authorization_matrix(qhub: RunningHub, caller: str) -> None:
    tokens = {
        "anonymous": None,
        "user": qhub.user_token("mx-ann"),
        "other": qhub.user_token("mx-bob"),
        "admin": admin_token(qhub),
        "service": qhub.admin_token,  # a service with the hub's admin role
    }
    results = {}
    for method, path, body, rule in ENDPOINTS:
        response = q(qhub, method, path, tokens[caller], json=body)
        status = response.status_code
        if caller == "anonymous":
            expected = {302} if not path.startswith("api/") else {401}
        elif caller in ("admin", "service"):
            expected = {200, 201, 204, 404}
            if path in ("me", "api/me", "api/status") and caller == "service":
                expected = {400}  # a service has no limits of its own
        elif caller == "user" and rule == "self":
            expected = {200, 404}
        elif caller == "other" and path in ("me", "api/me", "api/status"):
            expected = {200}  # their own
        else:
            expected = {403}
        results[f"{method} {path}"] = (status, sorted(expected))
        if status == 404:
            # 404 is allowed only where nothing exists yet (an override not set).
            assert "override" in path or path.startswith("api/groups/"), (path, response.text)
    wrong = {k: v for k, v in results.items() if v[0] not in v[1]}
    assert not wrong, json.dumps(wrong, indent=1)


def test_anonymous_page_goes_to_hub_login(qhub: RunningHub) -> None:
    response = q(qhub, "GET", "admin", None)
    assert response.status_code == 302
    assert "/hub/api/oauth2/authorize" in response.headers["Location"]


# ----------------------------------------------------------------------- spawn enforcement
def test_sizes_filtered_and_group_change_applies_at_next_spawn(qhub: RunningHub) -> None:
    join_group(qhub, "sz-astro", "sz-dora")
    refused = spawn(qhub, "sz-dora", size="large")
    assert refused.status_code == 403, refused.text
    message = refused.json()["message"]
    assert "'large' is not within your quota" in message and "standard" in message

    admin = admin_token(qhub)
    body = {"quota": {"lab": {"memory_gib": 4, "cpu": 2}}, "reason": "survey team"}
    assert q(qhub, "PUT", "api/groups/sz-astro", admin, json=body).status_code == 200
    eff = q(qhub, "GET", "api/users/sz-dora/quota", qhub.user_token("sz-dora")).json()
    assert [s["name"] for s in eff["sizes"]] == ["standard", "large"]
    assert eff["sources"] == ["default", "group:sz-astro"]

    qhub.start_server("sz-dora", size="large")
    try:
        env = lab_environ(qhub, "sz-dora")
        assert env["MEM_LIMIT"] == str(8 * GIB) and float(env["CPU_LIMIT"]) == 4
        assert env["SKYDECK_LAB_SIZE"] == "large"
        status = q(qhub, "GET", "api/users/sz-dora/status", admin).json()
        assert [(r["source"], r["size"]) for r in status["usage"]["running"]] == [("lab", "large")]
        usage = q(qhub, "GET", "api/usage", admin).json()
        row = next(r for r in usage if r["user"] == "sz-dora")
        assert "(default)" in row["servers"]
    finally:
        qhub.stop_server("sz-dora")
    status = q(qhub, "GET", "api/users/sz-dora/status", admin).json()
    assert status["usage"]["running"] == []
    assert status["usage"]["budget"]["cpu_hours"] > 0


def test_spawn_false_refuses_with_reason_and_whom_to_ask(qhub: RunningHub) -> None:
    admin = admin_token(qhub)
    join_group(qhub, "sf-blocked", "sf-erin")
    body = {"quota": {"lab": {"spawn": False}}, "reason": "course over"}
    assert q(qhub, "PUT", "api/groups/sf-blocked", admin, json=body).status_code == 200
    refused = spawn(qhub, "sf-erin")
    assert refused.status_code == 403
    assert "disabled for your account" in refused.json()["message"]
    assert "Ask your platform administrators" in refused.json()["message"]
    page = q(qhub, "GET", "me", qhub.user_token("sf-erin"))
    assert page.status_code == 200 and "disabled for your account" in page.text
    # An admin override lets this one user start again (it replaces the computed value).
    body = {"quota": {"lab": {"spawn": True}}, "reason": "exam retake", "expires_in": 3600}
    assert q(qhub, "PUT", "api/users/sf-erin/override", admin, json=body).status_code == 200
    assert q(qhub, "GET", "api/users/sf-erin/status", admin).json()["spawn"]["allowed"]


def test_overrides_expire(qhub: RunningHub) -> None:
    admin = admin_token(qhub)
    qhub.ensure_user("ov-fay")
    body = {"quota": {"tap": {"maxrec": 5}}, "reason": "short test", "expires_in": 1.5}
    assert q(qhub, "PUT", "api/users/ov-fay/override", admin, json=body).status_code == 200
    assert q(qhub, "GET", "api/users/ov-fay/quota", admin).json()["quota"]["tap"]["maxrec"] == 5
    time.sleep(2)
    eff = q(qhub, "GET", "api/users/ov-fay/quota", admin).json()
    assert eff["quota"]["tap"]["maxrec"] == 100_000 and eff["override"] is None
    assert q(qhub, "GET", "api/overrides", admin).json() == [] or all(
        o["user"] != "ov-fay" for o in q(qhub, "GET", "api/overrides", admin).json()
    )
    assert any(o["user"] == "ov-fay" for o in q(qhub, "GET", "api/overrides?all=1", admin).json())


def test_spent_budget_and_full_home_refuse_spawn(qhub: RunningHub) -> None:
    admin = admin_token(qhub)
    qhub.ensure_user("bg-gus")
    body = {"quota": {"budget": {"cpu_hours": 0}}, "reason": "budget test"}
    q(qhub, "PUT", "api/users/bg-gus/override", admin, json=body).raise_for_status()
    refused = spawn(qhub, "bg-gus")
    assert refused.status_code == 403 and "compute budget" in refused.json()["message"]

    home = qhub.data_dir / "home" / "bg-hal"
    home.mkdir(parents=True, exist_ok=True)
    (home / "big.bin").write_bytes(b"\1" * (2 * 1024 * 1024))
    qhub.ensure_user("bg-hal")
    body = {"quota": {"storage": {"soft_gib": 0.0005, "hard_gib": 0.001}}, "reason": "disk"}
    q(qhub, "PUT", "api/users/bg-hal/override", admin, json=body).raise_for_status()
    status = q(qhub, "GET", "api/users/bg-hal/status", qhub.user_token("bg-hal")).json()
    assert [w["kind"] for w in status["warnings"]] == ["storage"]
    refused = spawn(qhub, "bg-hal")
    assert refused.status_code == 403 and "hard limit" in refused.json()["message"]


def test_rate_limit_answers_429_with_headers(qhub: RunningHub) -> None:
    admin = admin_token(qhub)
    qhub.ensure_user("rt-ivy")
    body = {"quota": {"api": {"requests_per_minute": {"tap": 3}}}, "reason": "rate test"}
    q(qhub, "PUT", "api/users/rt-ivy/override", admin, json=body).raise_for_status()
    token = qhub.user_token("rt-ivy")
    answers = [q(qhub, "POST", "api/users/rt-ivy/rate/tap", token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert "more than 3 requests to tap" in answers[3].json()["message"]
    # Another service keeps its own count.
    assert q(qhub, "POST", "api/users/rt-ivy/rate/cutouts", token).status_code == 200


def test_bad_changes_are_refused_clearly(qhub: RunningHub) -> None:
    admin = admin_token(qhub)
    bad = q(qhub, "PUT", "api/groups/x", admin, json={"quota": {"lab": {"ram": 1}}, "reason": "r"})
    assert bad.status_code == 400 and "unknown field lab.ram" in bad.json()["message"]
    bad = q(qhub, "PUT", "api/groups/x", admin, json={"quota": {"lab": {"cpu": 1}}})
    assert bad.status_code == 400 and "needs a reason" in bad.json()["message"]
    bad = q(qhub, "PUT", "api/users/nobody-here/override", admin, json={"quota": {}, "reason": "r"})
    assert bad.status_code == 404 and "no hub user" in bad.json()["message"]


def test_cli_changes_and_audit(qhub: RunningHub) -> None:
    runner = CliRunner()
    base = ["--url", f"{qhub.url}/services/quota/", "--token", admin_token(qhub)]
    result = runner.invoke(
        quota_cli,
        [
            *base,
            "set-group",
            "cli-team",
            "lab.memory_gib=4",
            "api.requests_per_minute.tap=10",
            "--reason",
            "from the CLI",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["quota"]["api"] == {"requests_per_minute": {"tap": 10}}
    result = runner.invoke(quota_cli, [*base, "audit", "--limit", "1"])
    entry = json.loads(result.output)[0]
    assert (entry["action"], entry["target"], entry["reason"]) == (
        "set-group",
        "group:cli-team",
        "from the CLI",
    )
    result = runner.invoke(
        quota_cli, [*base, "set-group", "cli-team", "lab.gpus=1", "--reason", "x"]
    )
    assert result.exit_code == 1 and "unknown field lab.gpus" in result.output
    user = ["--url", f"{qhub.url}/services/quota/", "--token", qhub.user_token("cli-jo")]
    result = runner.invoke(quota_cli, [*user, "show"])
    assert result.exit_code == 0 and json.loads(result.output)["user"] == "cli-jo"
    result = runner.invoke(quota_cli, [*user, "groups"])
    assert result.exit_code == 1 and "403" in result.output


# ------------------------------------------------------------------------------- browser
@pytest.mark.browser
def test_admin_page_sets_group_memory_applied_at_next_spawn(qhub: RunningHub, browser) -> None:
    from playwright.sync_api import expect

    join_group(qhub, "web-team", "web-kim")
    creds = qhub.credentials
    admin = browser.new_context(viewport={"width": 1400, "height": 900})
    user = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = admin.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{qhub.url}/hub/login?next=/services/quota/admin")
        page.fill("#username_input", creds["admin_user"])
        page.fill("#password_input", creds["admin_password"])
        page.click("#login_submit")
        page.wait_for_url("**/services/quota/admin**")
        # The hub's look: its logo and navigation, with the quota pages linked.
        expect(page.locator("#jupyterhub-logo")).to_be_visible()
        expect(page.locator("#nav-quota-admin")).to_be_visible()
        expect(page.locator("#quota-users tr[data-user='web-kim'] .lab-limit")).to_contain_text(
            "4.0 GiB"
        )

        page.fill("#group-name", "web-team")
        page.fill("#group-memory", "4")
        page.fill("#group-cpu", "2")
        page.fill("#group-reason", "bigger images for the course")
        page.click("#group-save")
        expect(page.locator("#quota-notice")).to_contain_text("Saved the additions of group")
        expect(page.locator("#quota-groups tr[data-group='web-team']")).to_contain_text(
            '"memory_gib": 4.0'
        )
        expect(page.locator("#quota-users tr[data-user='web-kim'] .lab-limit")).to_contain_text(
            "8.0 GiB"
        )
        expect(page.locator("#quota-audit")).to_contain_text("bigger images for the course")

        # A bad value is refused with a message, nothing is saved.
        page.fill("#group-name", "web-team")
        page.fill("#group-memory", "lots")
        page.fill("#group-reason", "oops")
        page.click("#group-save")
        expect(page.locator("#quota-form-error")).to_contain_text("must be a number")

        # The member now gets a size menu with the larger size, and the lab gets its limit.
        kim = user.new_page()
        kim.set_default_timeout(60_000)
        kim.goto(f"{qhub.url}/hub/login?next=/hub/spawn")
        kim.fill("#username_input", "web-kim")
        kim.fill("#password_input", qhub.create_login("web-kim"))
        kim.click("#login_submit")
        menu = kim.locator("#skydeck-size option")
        expect(menu).to_have_count(2)
        assert menu.all_inner_texts()[1].startswith("large")
        kim.select_option("#skydeck-size", "large")
        kim.click("form#spawn_form [type=submit]")
        # Wait for the hub to report the lab ready (not for JupyterLab's page to load).
        deadline = time.monotonic() + 180
        while not (qhub.api("GET", "/users/web-kim").json()["servers"].get("") or {}).get("ready"):
            assert time.monotonic() < deadline, f"web-kim's lab did not start: {qhub.log_path}"
            time.sleep(0.5)
        env = lab_environ(qhub, "web-kim")
        assert env["MEM_LIMIT"] == str(8 * GIB) and env["SKYDECK_LAB_SIZE"] == "large"

        page.goto(f"{qhub.url}/services/quota/admin")
        expect(page.locator("#quota-users tr[data-user='web-kim'] .running")).to_contain_text(
            "lab:large"
        )
        kim.goto(f"{qhub.url}/services/quota/me")
        expect(kim.locator("#quota-limits")).to_contain_text("8.0 GiB")
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        for name, context in (("admin", admin), ("user", user)):
            for i, open_page in enumerate(context.pages):
                open_page.screenshot(path=str(ARTIFACTS / f"quota-browser-{name}-{i}.png"))
        raise
    finally:
        admin.close()
        user.close()
        qhub.stop_server("web-kim")


def test_services_account_dask_sessions_for_budgets(qhub: RunningHub) -> None:
    """A service (here the test service, an admin) records a Dask cluster's run."""
    qhub.ensure_user("ds-uma")
    token = qhub.admin_token
    body = {"source": "dask", "key": "cluster-1", "cpu": 4, "memory_gib": 8, "workers": 2}
    assert q(qhub, "POST", "api/users/ds-uma/sessions", token, json=body).status_code == 201
    status = q(qhub, "GET", "api/users/ds-uma/status", qhub.user_token("ds-uma")).json()
    [running] = status["usage"]["running"]
    assert (running["source"], running["key"], running["workers"]) == ("dask", "cluster-1", 2)
    # Let the session last long enough to register in the rounded CPU-hours on a fast machine.
    time.sleep(1.5)
    body["stopped"] = True
    closed = q(qhub, "POST", "api/users/ds-uma/sessions", token, json=body).json()
    assert closed == {"closed": 1}
    status = q(qhub, "GET", "api/users/ds-uma/status", token).json()
    assert status["usage"]["running"] == [] and status["usage"]["budget"]["cpu_hours"] > 0
    bad = q(
        qhub,
        "POST",
        "api/users/ds-uma/sessions",
        token,
        json={"source": "lab", "key": "x", "cpu": 1, "memory_gib": 1},
    )
    assert bad.status_code == 400 and "recorded by the hub" in bad.json()["message"]


def test_cli_policy_names_whom_to_ask(qhub: RunningHub, tmp_path) -> None:
    runner = CliRunner()
    base = ["--url", f"{qhub.url}/services/quota/", "--token", admin_token(qhub)]
    original = json.loads(runner.invoke(quota_cli, [*base, "policy"]).output)
    changed = {**original, "contact": "help@skydeck.example"}
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(changed))  # JSON is YAML too
    try:
        result = runner.invoke(quota_cli, [*base, "policy", "--file", str(path)])
        assert result.exit_code == 2 and "--reason is needed" in result.output
        result = runner.invoke(
            quota_cli, [*base, "policy", "--file", str(path), "--reason", "new help desk"]
        )
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            quota_cli,
            [*base, "override", "pol-max", "lab.spawn=false", "--expires-in", "1", "--reason", "t"],
        )
        assert result.exit_code == 1 and "no hub user" in result.output
        qhub.ensure_user("pol-max")
        result = runner.invoke(
            quota_cli,
            [*base, "override", "pol-max", "lab.spawn=false", "--expires-in", "1", "--reason", "t"],
        )
        assert result.exit_code == 0 and json.loads(result.output)["expires_at"]
        refused = spawn(qhub, "pol-max")
        assert refused.status_code == 403 and "help@skydeck.example" in refused.json()["message"]
    finally:
        path.write_text(json.dumps(original))
        result = runner.invoke(
            quota_cli, [*base, "policy", "--file", str(path), "--reason", "back"]
        )
        assert result.exit_code == 0, result.output
