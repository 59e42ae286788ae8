"""The authorization matrix (issue 15): every HTTP route of every service behind the hub
x {anonymous, owner, other user, admin, revoked token}, through ``skydeck up``'s proxy.

The routes come from the applications themselves (FastAPI's OpenAPI paths, tornado's
handler table, aiohttp's route table, the authenticator's handlers), so a new route
fails `test_every_route_is_classified` until it gets a row in `ROUTES`.

Identities: the owner runs a TAP job; "other" is a second user who must never see or
act on it; "admin" is a hub admin (admin routes only: an admin does not read other
users' TAP jobs); "revoked" is a token the hub API deleted.  Every answer is checked
against the row's expected statuses, never a 5xx, and a caller other than the owner
never gets a body that names the owner's job.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from support.hub import RunningHub

pytestmark = pytest.mark.slow

OWNER, OTHER, ADMIN = "amx-owner", "amx-other", "amx-admin"
REVOKED_USER = "amx-revoked"
IDENTITIES = ("anonymous", "owner", "other", "admin", "revoked")
CLUSTER = "amx.0000000000000000000000000000000"  # a dask-gateway cluster nobody has
QUERY = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"
DENIED = frozenset({401, 403})
HIDDEN = frozenset({403, 404})  # someone else's job: refused or not found, never shown

# Kinds of route (who may call it):
PUBLIC = "public"  # anyone, anonymous included
USER = "user"  # any signed-in user, on their own data (the URL names no owner)
JOB = "job"  # the owner's TAP job: only the owner
SELF = "self"  # the URL names the owner (quota): the owner and admins
ADMIN_ONLY = "admin"  # admins only
PAGE_USER = "page-user"  # an HTML page for any user (anonymous: 302 to the login)
PAGE_ADMIN = "page-admin"  # an HTML page for admins (anonymous: 302 to the login)
HUB_ADMIN = "hub-admin"  # a hub REST route needing admin:users (anonymous: 403)
#: a hub HTML page: JupyterHub authenticates pages by its login cookie only, so an API
#: token opens none of them (302 to the login, or 403 from the XSRF check / admin scope)
HUB_PAGE = "hub-page"
CLUSTER_TOKEN = "cluster"  # dask-gateway's scheduler heartbeat: a cluster's own token only


@dataclass(frozen=True)
class Route:
    """One route: ``path`` is the application's template ({job_id}, {user}, ...)."""

    method: str
    path: str
    kind: str
    #: statuses for the callers the kind allows (a bare request may be a 4xx usage error:
    #: it passed authorization, which is what the matrix checks)
    ok: frozenset[int] = frozenset({200})
    data: dict[str, Any] | None = None  # form fields (TAP, cutouts, pages)
    json: dict[str, Any] | None = None
    #: the request destroys the job: the owner's case runs on a job of its own
    destroys: bool = False
    overrides: dict[str, frozenset[int]] = field(default_factory=dict)


WRITE_OK = frozenset({200, 303, 400, 409})
TAP, CUT, QUO, GW = (
    "/services/tap",
    "/services/cutouts",
    "/services/quota",
    "/services/dask-gateway",
)

ROUTES = [
    # --- TAP (catalog/src/skydeck/catalog/tap/app.py) ---------------------------------
    # VOSI and the service description are open by design: availability is what
    # JupyterHub and clients probe before signing in, and capabilities, tables and
    # examples describe the public release schema only (no user data, no auth dependency
    # in the handlers).
    Route("GET", f"{TAP}/", PUBLIC),
    Route("GET", f"{TAP}/availability", PUBLIC),
    Route("GET", f"{TAP}/capabilities", PUBLIC),
    Route("GET", f"{TAP}/tables", PUBLIC),
    Route("GET", f"{TAP}/tables/{{name}}", PUBLIC, ok=frozenset({200, 404})),
    Route("GET", f"{TAP}/examples", PUBLIC),
    Route("GET", f"{TAP}/sync", USER, data={"LANG": "ADQL", "QUERY": QUERY}),
    Route("POST", f"{TAP}/sync", USER, data={"LANG": "ADQL", "QUERY": QUERY}),
    Route("GET", f"{TAP}/async", USER),
    Route("POST", f"{TAP}/async", USER, ok=frozenset({303}), data={"LANG": "ADQL", "QUERY": QUERY}),
    Route("GET", f"{TAP}/async/{{job_id}}", JOB),
    Route("POST", f"{TAP}/async/{{job_id}}", JOB, ok=WRITE_OK, data={"MAXREC": "5"}),
    Route("DELETE", f"{TAP}/async/{{job_id}}", JOB, ok=frozenset({303}), destroys=True),
    Route("GET", f"{TAP}/async/{{job_id}}/phase", JOB),
    Route(
        "POST",
        f"{TAP}/async/{{job_id}}/phase",
        JOB,
        ok=WRITE_OK,
        data={"PHASE": "ABORT"},
        destroys=True,
    ),
    Route("GET", f"{TAP}/async/{{job_id}}/executionduration", JOB),
    Route(
        "POST",
        f"{TAP}/async/{{job_id}}/executionduration",
        JOB,
        ok=WRITE_OK,
        data={"EXECUTIONDURATION": "60"},
    ),
    Route("GET", f"{TAP}/async/{{job_id}}/destruction", JOB),
    Route(
        "POST",
        f"{TAP}/async/{{job_id}}/destruction",
        JOB,
        ok=WRITE_OK,
        data={"DESTRUCTION": "2099-01-01T00:00:00Z"},
    ),
    Route("GET", f"{TAP}/async/{{job_id}}/quote", JOB),
    Route("GET", f"{TAP}/async/{{job_id}}/owner", JOB),
    Route("GET", f"{TAP}/async/{{job_id}}/parameters", JOB),
    Route("POST", f"{TAP}/async/{{job_id}}/parameters", JOB, ok=WRITE_OK, data={"MAXREC": "5"}),
    Route("GET", f"{TAP}/async/{{job_id}}/error", JOB, ok=frozenset({200, 404})),
    Route("GET", f"{TAP}/async/{{job_id}}/results", JOB),
    Route("GET", f"{TAP}/async/{{job_id}}/results/result", JOB),
    # --- cutouts (images/src/skydeck/images/soda/service.py) --------------------------
    # The index and VOSI availability name no data; a bare sync is a 400 UsageFault
    # once the caller is identified.
    Route("GET", f"{CUT}", PUBLIC),
    Route("GET", f"{CUT}/", PUBLIC),
    Route("GET", f"{CUT}/availability", PUBLIC),
    Route("GET", f"{CUT}/sync", USER, ok=frozenset({400})),
    Route("POST", f"{CUT}/sync", USER, ok=frozenset({400})),
    # --- quota (hub/src/skydeck/hub/quota/handlers.py, pages.py) ----------------------
    Route("GET", f"{QUO}/", PAGE_USER, ok=frozenset({302})),  # to admin or me
    Route("GET", f"{QUO}/me", PAGE_USER),
    Route("GET", f"{QUO}/admin", PAGE_ADMIN),
    # the forms post to admin/groups and admin/overrides; admin itself has no form
    Route("POST", f"{QUO}/admin", PAGE_ADMIN, ok=frozenset({404})),
    Route("GET", f"{QUO}/admin/{{what}}", PAGE_ADMIN),
    Route("POST", f"{QUO}/admin/{{what}}", PAGE_ADMIN, ok=frozenset({302, 400})),
    # OAuth callback: the hub's login hand-off; without the OAuth state it refuses
    # everyone alike (no user data behind it).
    Route("GET", f"{QUO}/oauth_callback", PUBLIC, ok=frozenset({400, 403})),
    Route("GET", f"{QUO}/api/me", USER),
    Route("GET", f"{QUO}/api/status", USER),
    Route("GET", f"{QUO}/api/users/{{user}}/quota", SELF),
    Route("GET", f"{QUO}/api/users/{{user}}/status", SELF),
    Route("POST", f"{QUO}/api/users/{{user}}/rate/{{service}}", SELF),
    Route(
        "POST",
        f"{QUO}/api/users/{{user}}/sessions",
        ADMIN_ONLY,
        json={"source": "dask", "key": "amx", "cpu": 1, "memory_gib": 1, "stopped": True},
    ),
    Route("GET", f"{QUO}/api/users/{{user}}/override", SELF, ok=frozenset({200, 404})),
    Route(
        "PUT",
        f"{QUO}/api/users/{{user}}/override",
        ADMIN_ONLY,
        json={"quota": {"tap": {"concurrent": 3}}, "reason": "authorization matrix"},
    ),
    Route(
        "DELETE",
        f"{QUO}/api/users/{{user}}/override",
        ADMIN_ONLY,
        ok=frozenset({200, 204, 404}),
        data={"reason": "authorization matrix"},
    ),
    Route("GET", f"{QUO}/api/overrides", ADMIN_ONLY),
    Route("GET", f"{QUO}/api/groups", ADMIN_ONLY),
    Route("GET", f"{QUO}/api/groups/{{group}}", ADMIN_ONLY, ok=frozenset({200, 404})),
    Route(
        "PUT",
        f"{QUO}/api/groups/{{group}}",
        ADMIN_ONLY,
        json={"quota": {"tap": {"concurrent": 1}}, "reason": "authorization matrix"},
    ),
    Route(
        "DELETE",
        f"{QUO}/api/groups/{{group}}",
        ADMIN_ONLY,
        ok=frozenset({200, 204, 404}),
        data={"reason": "authorization matrix"},
    ),
    Route("GET", f"{QUO}/api/policy", ADMIN_ONLY),
    # an empty policy change is refused as bad input: authorization passed, nothing changed
    Route("PUT", f"{QUO}/api/policy", ADMIN_ONLY, ok=frozenset({400}), json={}),
    Route("GET", f"{QUO}/api/audit", ADMIN_ONLY),
    Route("GET", f"{QUO}/api/usage", ADMIN_ONLY),
    # --- dask-gateway (stock dask_gateway_server routes, JupyterHub authentication) ----
    # health and version are dask-gateway's public probes (no user data).
    Route("GET", f"{GW}/api/health", PUBLIC),
    Route("GET", f"{GW}/api/version", PUBLIC),
    Route("GET", f"{GW}/api/v1/options", USER),
    Route("GET", f"{GW}/api/v1/clusters/", USER),
    # an unknown cluster option is refused (422) after authentication: no cluster starts
    Route(
        "POST",
        f"{GW}/api/v1/clusters/",
        USER,
        ok=frozenset({422}),
        json={"cluster_options": {"amx_no_such_option": 1}},
    ),
    Route("GET", f"{GW}/api/v1/clusters/{{cluster_name}}", USER, ok=frozenset({404})),
    Route("DELETE", f"{GW}/api/v1/clusters/{{cluster_name}}", USER, ok=frozenset({204, 404})),
    Route(
        "POST",
        f"{GW}/api/v1/clusters/{{cluster_name}}/scale",
        USER,
        ok=frozenset({404}),
        json={"count": 1},
    ),
    Route(
        "POST",
        f"{GW}/api/v1/clusters/{{cluster_name}}/adapt",
        USER,
        ok=frozenset({404}),
        json={"minimum": 0, "maximum": 1},
    ),
    Route("POST", f"{GW}/api/v1/clusters/{{cluster_name}}/heartbeat", CLUSTER_TOKEN, json={}),
    # --- the hub's own routes from Skydeck's authenticator (hub/src/skydeck/hub/auth/) -
    Route("GET", "/hub/login", PUBLIC),
    # a bare login form post is refused with a clear 400/403 for everyone
    Route("POST", "/hub/login", PUBLIC, ok=frozenset({400, 403})),
    Route("GET", "/hub/change-password", HUB_PAGE),
    Route("POST", "/hub/change-password", HUB_PAGE),
    Route("GET", "/hub/change-password/{name}", HUB_PAGE),
    Route("POST", "/hub/change-password/{name}", HUB_PAGE),
    Route(
        "POST", "/hub/api/skydeck/users/{name}/password", HUB_ADMIN, ok=frozenset({201}), json={}
    ),
]


# ------------------------------------------------------------------- route enumeration
def _fastapi_routes(app: Any) -> set[tuple[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate operation ids of GET+POST routes
        paths = app.openapi()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() for m in ops}


def _tornado_template(pattern: str) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).removesuffix("$")
    return path.replace("([^/]+)", "{name}")


def _tornado_methods(handler: type) -> list[str]:
    from tornado.web import RequestHandler

    verbs = ("get", "post", "put", "delete", "patch")
    return [v.upper() for v in verbs if getattr(handler, v) is not getattr(RequestHandler, v)]


def served_routes() -> set[tuple[str, str]]:
    """Every (method, path template) the services behind the hub serve."""
    from dask_gateway_server.routes import default_routes
    from tornado.routing import PathMatches

    from skydeck.catalog.tap.app import create_app as tap_app
    from skydeck.catalog.tap.config import TapSettings
    from skydeck.hub.auth import _native
    from skydeck.hub.quota.app import make_app
    from skydeck.images.soda import service as soda

    routes = _fastapi_routes(tap_app(TapSettings(auth="none", path_prefix=TAP)))
    # TAP's /openapi.json sits outside the service prefix, so the hub's proxy never
    # routes to it (it answers only on the service's own 127.0.0.1 port).
    routes |= _fastapi_routes(soda.create_app(soda.CutoutSettings(prefix=CUT + "/")))
    quota = make_app(SimpleNamespace(hub_prefix="/hub/"), None, None)  # type: ignore[arg-type]
    for rule in quota.wildcard_router.rules:
        assert isinstance(rule.matcher, PathMatches), rule
        for method in _tornado_methods(rule.target):
            routes.add((method, _tornado_template(rule.matcher.regex.pattern)))
    for route in default_routes:
        routes.add((route.method, GW + route.path))
    authenticator = _native.SkydeckNativeAuthenticator.__new__(
        _native.SkydeckNativeAuthenticator
    )  # only its handler table: no database needed
    for pattern, handler in authenticator.get_handlers(None):
        for method in _tornado_methods(handler):
            routes.add((method, "/hub" + _tornado_template(pattern)))
    return routes


def test_every_route_is_classified() -> None:
    table = {(r.method, r.path) for r in ROUTES}
    unclassified = served_routes() - table
    assert not unclassified, f"routes without a row in ROUTES: {sorted(unclassified)}"
    stale = table - served_routes()
    assert not stale, f"rows in ROUTES for routes nobody serves: {sorted(stale)}"


# ------------------------------------------------------------------------ the world
@dataclass
class World:
    hub: RunningHub
    tokens: dict[str, str | None]
    job_id: str
    #: service probe path -> status, for services that did not refuse the revoked token
    still_accepted: dict[str, int]


def _call(
    hub: RunningHub, method: str, path: str, token: str | None, **kwargs: Any
) -> requests.Response:
    # dask-gateway's JupyterHubAuthenticator reads its own scheme ("jupyterhub <token>")
    scheme = "jupyterhub" if path.startswith(GW) else "token"
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    return requests.request(
        method, hub.url + path, headers=headers, allow_redirects=False, timeout=60, **kwargs
    )


def _wait_for(hub: RunningHub, path: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout  # a loaded 2-core machine starts services slowly
    while time.monotonic() < deadline:
        try:
            if _call(hub, "GET", path, None).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{path} did not answer 200; see {hub.log_path}")


def _new_job(hub: RunningHub, token: str, run: bool) -> str:
    data = {"LANG": "ADQL", "QUERY": QUERY, **({"PHASE": "RUN"} if run else {})}
    made = _call(hub, "POST", f"{TAP}/async", token, data=data)
    assert made.status_code == 303, made.text
    job_id = made.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    if run:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            phase = _call(hub, "GET", f"{TAP}/async/{job_id}/phase", token).text
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                assert phase == "COMPLETED", _call(hub, "GET", f"{TAP}/async/{job_id}", token).text
                return job_id
            time.sleep(0.3)
        raise AssertionError(f"TAP job {job_id} did not complete")
    return job_id


#: one request per service that needs a valid token: used to warm the services' token
#: caches with the soon-revoked token, then to see each refuse it.
PROBES = [
    ("GET", f"{TAP}/async"),
    ("GET", f"{CUT}/sync"),
    ("GET", f"{QUO}/api/me"),
    ("GET", f"{GW}/api/v1/clusters/"),
]


def _revoked_token(hub: RunningHub) -> tuple[str, dict[str, int]]:
    """A token every service accepted once, then deleted through the hub API; polls (up to
    10 s; the services promise 5 s) until every service refuses it.  Returns the token
    and the answers of the services that still did not refuse it."""
    hub.ensure_user(REVOKED_USER)
    made = hub.api("POST", f"/users/{REVOKED_USER}/tokens", json={"note": "revoked (matrix)"})
    made.raise_for_status()
    token, token_id = made.json()["token"], made.json()["id"]
    for method, path in PROBES:
        status = _call(hub, method, path, token).status_code
        assert status not in DENIED and status < 500, (path, status)
    assert hub.api("DELETE", f"/users/{REVOKED_USER}/tokens/{token_id}").status_code == 204
    deadline = time.monotonic() + 10
    answers = {path: 0 for _, path in PROBES}
    while time.monotonic() < deadline:
        answers = {
            path: status
            for method, path in PROBES
            if (status := _call(hub, method, path, token).status_code) not in DENIED
        }
        if not answers:
            break
        time.sleep(0.25)
    return token, answers


@pytest.fixture(scope="module")
def world(release_hub: RunningHub) -> World:
    hub = release_hub
    for path in (f"{TAP}/availability", f"{CUT}/availability", f"{GW}/api/health"):
        _wait_for(hub, path)
    hub.create_login(OWNER)
    hub.create_login(OTHER)
    hub.create_login(ADMIN, admin=True)
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "owner": hub.user_token(OWNER),
        "other": hub.user_token(OTHER),
        "admin": hub.user_token(ADMIN),
    }
    deadline = time.monotonic() + 60  # the quota service starts last
    while _call(hub, "GET", f"{QUO}/api/me", tokens["owner"]).status_code != 200:
        assert time.monotonic() < deadline, f"the quota service did not come up: {hub.log_path}"
        time.sleep(0.3)
    tokens["revoked"], still_accepted = _revoked_token(hub)
    return World(hub, tokens, _new_job(hub, str(tokens["owner"]), run=True), still_accepted)


def expected(route: Route, identity: str) -> frozenset[int]:
    """The statuses ``identity`` may get from ``route``."""
    if route.kind == PUBLIC:
        return route.ok
    if route.kind == HUB_PAGE:
        return frozenset({302, 403})
    if route.kind == CLUSTER_TOKEN:
        return DENIED  # no user token is a cluster's token
    if identity in ("anonymous", "revoked"):
        if route.kind in (PAGE_USER, PAGE_ADMIN):
            return frozenset({302})  # to the hub's login
        if route.kind == HUB_ADMIN:
            return frozenset({403})  # JupyterHub's API answers 403 without credentials
        return DENIED
    allowed = {
        USER: ("owner", "other", "admin"),
        PAGE_USER: ("owner", "other", "admin"),
        JOB: ("owner",),
        SELF: ("owner", "admin"),
        ADMIN_ONLY: ("admin",),
        PAGE_ADMIN: ("admin",),
        HUB_ADMIN: ("admin",),
    }[route.kind]
    if identity in allowed:
        return route.overrides.get(identity, route.ok)
    return HIDDEN if route.kind == JOB else frozenset({403})


def _concrete(route: Route, job_id: str) -> str:
    values = {
        "job_id": job_id,
        "name": OWNER,
        "user": OWNER,
        "service": "tap",
        "group": "amx-group",
        "what": "groups",
        "cluster_name": CLUSTER,
    }
    return route.path.format(**values)


CASES = [
    pytest.param(
        route,
        identity,
        id=f"{route.method} {route.path} as {identity}",
    )
    for route in ROUTES
    for identity in IDENTITIES
]


@pytest.mark.parametrize(("route", "identity"), CASES)
def test_matrix(world: World, route: Route, identity: str) -> None:
    hub, token = world.hub, world.tokens[identity]
    job_id = world.job_id
    if route.destroys and identity == "owner":
        job_id = _new_job(hub, str(token), run=False)
    path = _concrete(route, job_id)
    if route.path == f"{TAP}/tables/{{name}}":
        path = f"{TAP}/tables/TAP_SCHEMA.tables"
    kwargs: dict[str, Any] = {}
    if route.json is not None:
        kwargs["json"] = route.json
    if route.data is not None:
        kwargs["params" if route.method in ("GET", "DELETE") else "data"] = route.data
    response = _call(hub, route.method, path, token, **kwargs)
    want = expected(route, identity)
    detail = f"{route.method} {path} as {identity}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, detail
    assert response.status_code in want, f"expected {sorted(want)}; {detail}"
    if identity != "owner" and (route.kind == JOB or route.path == f"{TAP}/async"):
        # a refusal may echo the job id it was given, never the job's owner or query
        assert OWNER not in response.text, f"the owner's job leaked: {detail}"
        assert QUERY not in response.text, f"the owner's query leaked: {detail}"
    if route.kind == JOB and identity != "owner":
        # whatever the answer, the owner's job is untouched and still theirs
        owner = _call(hub, "GET", f"{TAP}/async/{world.job_id}/phase", world.tokens["owner"])
        assert owner.status_code == 200 and owner.text == "COMPLETED", owner.text


@pytest.mark.parametrize("path", [path for _, path in PROBES])
def test_revoked_token_is_refused_within_seconds(world: World, path: str) -> None:
    assert path not in world.still_accepted, (
        f"GET {path} with a token deleted 10 s ago: {world.still_accepted[path]}"
    )
