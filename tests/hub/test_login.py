"""Per-user logins of the embedded default, through the real login form of a real hub.

Each user has their own password (``RunningHub.create_login``, i.e. the admin route
``POST /hub/api/skydeck/users/{name}/password``); wrong passwords are throttled;
user names follow one rule at login, and an odd name already in the hub database
breaks no page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests
from jupyterhub import orm, roles

from skydeck.hub.auth.database import hub_session
from support.hub import RunningHub

pytestmark = pytest.mark.slow

#: Names the hostile-user test got accepted before (NUL arrives as a control character).
ODD_NAMES = [
    "a" * 300,
    "b" * 306,
    "two words",
    "<script>alert(1)</script>",
    "nul\x00name",
    "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",  # full-width "fullwidth"
    "what?",
    "hash#tag",
    "-leading-hyphen",
    "under_score",
    "",
]


@pytest.fixture(scope="module")
def login_hub(hub_factory: Callable[..., RunningHub]) -> RunningHub:
    """A hub of its own: these tests leave throttled and odd users behind."""
    return hub_factory()


def form_login(
    hub: RunningHub, name: str, password: str
) -> tuple[requests.Session, requests.Response]:
    """Post the hub's login form as a browser does (the _xsrf cookie and field included)."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=30).raise_for_status()
    response = session.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": password, "_xsrf": session.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=60,
    )
    return session, response


def logged_in_as(hub: RunningHub, session: requests.Session) -> str:
    """The user the hub sees behind ``session``'s cookie."""
    response = session.get(
        f"{hub.url}/hub/api/user",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
        timeout=30,
    )
    response.raise_for_status()
    name: str = response.json()["name"]
    return name


def test_each_user_logs_in_with_their_own_password_only(login_hub: RunningHub) -> None:
    ana = login_hub.create_login("ana")
    ben = login_hub.create_login("ben")
    assert ana != ben

    session, response = form_login(login_hub, "ana", ana)
    assert response.status_code == 302, response.text
    assert logged_in_as(login_hub, session) == "ana"
    # Ana's password does not open Ben's account (the shared password used to).
    _, response = form_login(login_hub, "ben", ana)
    assert response.status_code == 403
    assert "Invalid username or password" in response.text
    # Names are normalised (lowercase) before the check: still Ben's password only.
    _, response = form_login(login_hub, "BEN", ana)
    assert response.status_code == 403
    session, response = form_login(login_hub, " Ben ", ben)
    assert response.status_code == 302
    assert logged_in_as(login_hub, session) == "ben"
    # A name nobody created has no login at all.
    _, response = form_login(login_hub, "nobody", ana)
    assert response.status_code == 403


def test_the_admin_logs_in_with_the_generated_password(login_hub: RunningHub) -> None:
    creds = login_hub.credentials
    assert set(creds) == {"admin_user", "admin_password"}  # no shared user password any more
    assert (login_hub.data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
    session, response = form_login(login_hub, creds["admin_user"], creds["admin_password"])
    assert response.status_code == 302
    assert logged_in_as(login_hub, session) == "admin"
    _, response = form_login(login_hub, "someone", creds["admin_password"])
    assert response.status_code == 403


def test_wrong_passwords_are_throttled(login_hub: RunningHub) -> None:
    password = login_hub.create_login("cleo")
    other = login_hub.create_login("dan")
    for _ in range(5):  # allowed_failed_logins
        _, response = form_login(login_hub, "cleo", "not-cleos-password")
        assert response.status_code == 403
    # Now even the right password waits, and the page says why and for how long.
    _, response = form_login(login_hub, "cleo", password)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many failed logins for cleo" in response.text
    # Only cleo's name is throttled.
    _, response = form_login(login_hub, "dan", other)
    assert response.status_code == 302


@pytest.mark.parametrize("name", ODD_NAMES, ids=lambda n: repr(n[:12]) + f"-{len(n)}")
def test_odd_names_are_refused_at_login_with_the_rule(login_hub: RunningHub, name: str) -> None:
    _, response = form_login(login_hub, name, "any-password-at-all")
    assert response.status_code == 400, response.text[:300]
    assert "User names are 1 to 39 characters long" in response.text
    assert "<script>alert" not in response.text
    assert login_hub.api("GET", f"/users/{quote(name, safe='')}").status_code == 404
    response = login_hub.api("POST", f"/skydeck/users/{quote(name, safe='')}/password")
    assert response.status_code in (400, 404)  # 404: an empty name matches no route


def test_an_odd_user_record_breaks_no_quota_page(login_hub: RunningHub) -> None:
    """A user record that predates the rule (or an admin made through the API) harms no one."""
    odd = "c" * 306
    # The REST API refuses the name now (the authenticator's rule)...
    assert login_hub.api("POST", f"/users/{odd}").status_code == 400
    # ...so put it in the hub database as an older Skydeck would have.
    with hub_session(login_hub.data_dir / "hub" / "jupyterhub.sqlite") as db:
        user = orm.User(name=odd)
        db.add(user)
        roles.assign_default_roles(db, entity=user)
        db.commit()
    # Spawning for it fails (its home directory name is too long): what used to
    # leave the quota admin page answering 500 for everyone.
    login_hub.api("POST", f"/users/{odd}/server")

    creds = login_hub.credentials
    admin, response = form_login(login_hub, creds["admin_user"], creds["admin_password"])
    assert response.status_code == 302
    page = admin.get(f"{login_hub.url}/services/quota/admin", timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert odd[:39] in page.text
    usage = requests.get(
        f"{login_hub.url}/services/quota/api/usage",
        headers={"Authorization": f"token {login_hub.admin_token}"},
        timeout=60,
    )
    assert usage.status_code == 200
    # Another user's own quota page works too.
    password = login_hub.create_login("eve")
    eve, response = form_login(login_hub, "eve", password)
    assert response.status_code == 302
    assert eve.get(f"{login_hub.url}/services/quota/me", timeout=60).status_code == 200


def test_the_login_route_is_for_admins_only(login_hub: RunningHub) -> None:
    route = f"{login_hub.url}/hub/api/skydeck/users/fay/password"
    assert requests.post(route, json={}, timeout=30).status_code in (401, 403)
    token = login_hub.user_token("gus")
    response = requests.post(
        route, json={}, headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert response.status_code == 403
    assert login_hub.api("GET", "/users/fay").status_code == 404

    response = login_hub.api(
        "POST", "/skydeck/users/fay/password", json={"password": "fays-own-pw"}
    )
    assert response.status_code == 201
    assert response.json() == {"name": "fay", "password": "fays-own-pw"}
    assert form_login(login_hub, "fay", "fays-own-pw")[1].status_code == 302
    # Bad bodies are 400s that say what to send.
    for body in ('{"password": "short"}', "not json", '{"password": 5}', '{"colour": "red"}'):
        response = login_hub.api("POST", "/skydeck/users/fay/password", data=body)
        assert response.status_code == 400, body
        assert response.json()["message"]


def test_skydeck_users_add_prints_a_password_once(login_hub: RunningHub) -> None:
    def users_add(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "skydeck.hub",
                "users",
                "add",
                *args,
                "--data-dir",
                str(login_hub.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )

    result = users_add("hana")
    assert result.returncode == 0, result.stderr
    password = result.stdout.split("Password (shown only now):")[1].split()[0]
    session, response = form_login(login_hub, "hana", password)
    assert response.status_code == 302
    assert logged_in_as(login_hub, session) == "hana"

    result = users_add("ivo", "--admin", "--password", "ivos-password")
    assert result.returncode == 0, result.stderr
    assert login_hub.api("GET", "/users/ivo").json()["admin"] is True
    assert form_login(login_hub, "ivo", "ivos-password")[1].status_code == 302

    result = users_add("bad name")
    assert result.returncode == 2
    assert "User names are 1 to 39 characters long" in result.stderr


def test_sign_up_is_closed_and_users_change_their_own_password(login_hub: RunningHub) -> None:
    # No self-service accounts, and no approval pages that change state on GET.
    creds = login_hub.credentials
    admin, _ = form_login(login_hub, creds["admin_user"], creds["admin_password"])
    for path in ("signup", "authorize", "authorize/mallory", "discard/mallory"):
        assert admin.get(f"{login_hub.url}/hub/{path}", timeout=30).status_code == 404, path
    assert "signup" not in admin.get(f"{login_hub.url}/hub/login", timeout=30).text

    old = login_hub.create_login("jo")
    session, _ = form_login(login_hub, "jo", old)
    response = session.post(
        f"{login_hub.url}/hub/change-password",
        data={
            "old_password": old,
            "new_password": "jos-new-password",
            "new_password_confirmation": "jos-new-password",
            "_xsrf": session.cookies["_xsrf"],
        },
        timeout=60,
    )
    assert response.status_code == 200
    assert "changed successfully" in response.text
    assert form_login(login_hub, "jo", old)[1].status_code == 403
    assert form_login(login_hub, "jo", "jos-new-password")[1].status_code == 302


def test_passwords_bcrypt_cannot_take_are_refused_not_crashed(login_hub: RunningHub) -> None:
    """bcrypt 5 raises for passwords over 72 bytes: a clear 4xx everywhere, never a 500."""
    password = login_hub.create_login("kai")
    long = "\u00e9" * 40  # 80 bytes in UTF-8
    _, response = form_login(login_hub, "kai", long)
    assert response.status_code == 403
    _, response = form_login(login_hub, "nobody-at-all", "x" * 100_000)
    assert response.status_code == 403
    response = login_hub.api("POST", "/skydeck/users/kai/password", json={"password": long})
    assert response.status_code == 400
    assert "72 bytes" in response.json()["message"]

    session, response = form_login(login_hub, "kai", password)
    assert response.status_code == 302
    response = session.post(
        f"{login_hub.url}/hub/change-password",
        data={
            "old_password": password,
            "new_password": long,
            "new_password_confirmation": long,
            "_xsrf": session.cookies["_xsrf"],
        },
        timeout=60,
    )
    assert response.status_code == 400
    assert "72 bytes" in response.text
    assert form_login(login_hub, "kai", password)[1].status_code == 302
