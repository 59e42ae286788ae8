"""HTTP handlers of the quota service: a few lines each, decisions in `QuotaService`.

Authentication is the hub's (OAuth cookie for pages, ``Authorization: token``
for the API).  Authorization:

- read a user's quota/status, count a request against a rate: the user themself,
  holders of ``custom:quota:read``, quota admins;
- record usage sessions: ``custom:quota:account`` or quota admins;
- everything else (changes, lists, audit, policy): quota admins, i.e. hub admins
  (the hub says ``admin: true``) or tokens with ``custom:quota:admin`` (or
  ``admin:users``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment
from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from pydantic import BaseModel
from tornado.web import HTTPError, RequestHandler

from skydeck.hub.quota._hubapi import HubAPI, HubUnavailable
from skydeck.hub.quota.model import QuotaError
from skydeck.hub.quota.service import QuotaService
from skydeck.hub.quota.settings import SCOPE_ACCOUNT, SCOPE_ADMIN, SCOPE_READ, SERVICE_NAME


class Problem(Exception):
    """An error answered with a status and a message saying what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Identity:
    """Who is calling, and what the quota service lets them do."""

    name: str
    kind: str
    scopes: set[str] = field(default_factory=set)
    admin: bool = False

    def can_read(self, user: str) -> bool:
        return (
            self.admin or SCOPE_READ in self.scopes or (self.kind == "user" and self.name == user)
        )

    @property
    def can_account(self) -> bool:
        return self.admin or SCOPE_ACCOUNT in self.scopes


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


class BaseHandler(HubOAuthenticated, RequestHandler):
    """Identifies the caller through the hub before every request."""

    identity: Identity | None = None

    @property
    def quota(self) -> QuotaService:
        service: QuotaService = self.settings["quota"]
        return service

    @property
    def hub(self) -> HubAPI:
        hub: HubAPI = self.settings["hub_api"]
        return hub

    @property
    def hub_scopes(self) -> set[str]:
        return {
            f"access:services!service={SERVICE_NAME}",
            SCOPE_READ,
            SCOPE_ADMIN,
            SCOPE_ACCOUNT,
            "admin:users",
        }

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            return
        try:
            model = self.check_hub_user(model)
        except UserNotAllowed:
            return
        scopes = set(model.get("scopes", []))
        admin = SCOPE_ADMIN in scopes or "admin:users" in scopes
        kind = model.get("kind", "user")
        if not admin and kind == "user":
            hub_model = await self.hub.user(model["name"])
            admin = bool(hub_model and hub_model.get("admin"))
        self.identity = Identity(model["name"], kind, scopes, admin)

    def get_current_user(self) -> Identity | None:
        return self.identity

    def check_xsrf_cookie(self) -> None:
        """Forms posted with the hub cookie need the _xsrf token; token requests do not."""
        if "Authorization" in self.request.headers:
            return  # a cross-site form cannot set this header
        if not self.get_cookie(self.hub_auth.cookie_name):
            return  # anonymous: refused with 401 once identified
        self.hub_auth.check_xsrf_cookie(self)

    # checks -------------------------------------------------------------------------
    def need_identity(self) -> Identity:
        if self.identity is None:
            raise Problem(401, "authentication required: send a hub token (Authorization: token)")
        return self.identity

    def need_admin(self) -> Identity:
        who = self.need_identity()
        if not who.admin:
            raise Problem(403, f"{who.name} is not a quota admin (ask a hub admin)")
        return who

    def need_reader(self, user: str) -> Identity:
        who = self.need_identity()
        if not who.can_read(user):
            raise Problem(403, f"{who.name} may not read the quota of {user}")
        return who

    async def groups_of(self, user: str) -> list[str]:
        try:
            model = await self.hub.user(user)
        except HubUnavailable as error:
            raise Problem(503, str(error)) from error
        if model is None:
            raise Problem(404, f"no hub user named {user!r}")
        return list(model.get("groups", []))

    # responses ------------------------------------------------------------------------
    def send_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=_json_default))

    def body_json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError as error:
            raise Problem(400, f"the request body is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise Problem(400, "the request body must be a JSON object")
        return data

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, QuotaError):
            e = Problem(400, str(e))
        if isinstance(e, Problem):
            for key, value in e.headers.items():
                self.set_header(key, value)
            self.render_problem(e.status, e.message)
            return
        super()._handle_request_exception(e)

    def render_problem(self, status: int, message: str) -> None:
        self.send_json({"status": status, "message": message}, status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.render_problem(status_code, message)


class PageHandler(BaseHandler):
    """HTML pages in the hub's look (templates extend JupyterHub's page.html)."""

    def render_problem(self, status: int, message: str) -> None:
        if status == 401:
            self.redirect(self.get_login_url())
            return
        self.set_status(status)
        self.finish(self.render_page("quota_error.html", status=status, message=message))

    def render_page(self, name: str, **context: Any) -> str:
        env: Environment = self.settings["jinja_env"]
        hub_prefix: str = self.settings["hub_prefix"]
        who = self.identity
        user = None
        if who is not None:
            user = {"name": who.name, "json_escaped_name": json.dumps(who.name)[1:-1]}

        def static_url(path: str, include_version: bool = True) -> str:
            return f"{hub_prefix}static/{path}"

        return env.get_template(name).render(
            base_url=hub_prefix,
            prefix="/",
            static_url=static_url,
            user=user,
            admin_access=bool(who and who.admin),
            parsed_scopes={"admin-ui": None} if who and who.admin else {},
            services=[{"name": "Quotas", "href": self.settings["service_prefix"]}],
            logout_url=f"{hub_prefix}logout",
            login_url=f"{hub_prefix}login",
            xsrf_token=self.xsrf_token.decode("ascii"),
            xsrf_form_html=self.xsrf_form_html,
            service_prefix=self.settings["service_prefix"],
            no_spawner_check=True,
            version_hash="",
            announcement=None,
            **context,
        )


# ---------------------------------------------------------------------------- REST API
class MeHandler(BaseHandler):
    async def get(self) -> None:
        who = self.need_identity()
        if who.kind != "user":
            raise Problem(400, "api/me is for users; services ask api/users/<name>/status")
        self.send_json(self.quota.status(who.name, await self.groups_of(who.name)))


class UserQuotaHandler(BaseHandler):
    async def get(self, user: str) -> None:
        self.need_reader(user)
        self.send_json(self.quota.effective(user, await self.groups_of(user)))


class UserStatusHandler(BaseHandler):
    async def get(self, user: str) -> None:
        self.need_reader(user)
        self.send_json(self.quota.status(user, await self.groups_of(user)))


class RateHandler(BaseHandler):
    """Count one request of ``user`` to ``service``: 200, or 429 with Retry-After."""

    async def post(self, user: str, service: str) -> None:
        self.need_reader(user)
        decision = self.quota.hit_rate(user, await self.groups_of(user), service)
        for key, value in decision.headers().items():
            self.set_header(key, value)
        body = decision.to_json()
        if not decision.allowed:
            body["message"] = (
                f"{user} made more than {decision.limit} requests to {service} in a minute; "
                f"retry in {decision.retry_after} s"
            )
        self.send_json(body, 200 if decision.allowed else 429)


class SessionsHandler(BaseHandler):
    """Usage sessions (e.g. Dask clusters) other services account for budgets."""

    async def post(self, user: str) -> None:
        who = self.need_identity()
        if not who.can_account:
            raise Problem(403, f"{who.name} may not record usage ({SCOPE_ACCOUNT} needed)")
        body = self.body_json()
        try:
            source, key = str(body["source"]), str(body["key"])
            cpu, memory = float(body["cpu"]), float(body["memory_gib"])
        except (KeyError, TypeError, ValueError) as error:
            raise Problem(400, f"need source, key, cpu and memory_gib ({error})") from error
        if source == "lab":
            raise Problem(400, "lab sessions are recorded by the hub itself")
        now = self.quota.clock()
        if body.get("stopped"):
            closed = self.quota.store.close_session(user, source, key, now)
            self.send_json({"closed": closed})
            return
        workers = body.get("workers")
        if workers is not None and not isinstance(workers, int):
            raise Problem(400, "workers must be an integer")
        size = body.get("size")
        self.quota.store.open_session(user, source, key, cpu, memory, now, size, workers)
        self.send_json({"opened": key}, 201)


class GroupsHandler(BaseHandler):
    async def get(self) -> None:
        self.need_admin()
        rules = self.quota.store.group_rules()
        try:
            hub_groups = {g["name"]: g for g in await self.hub.groups()}
        except HubUnavailable as error:
            raise Problem(503, str(error)) from error
        names = sorted(set(rules) | set(hub_groups))
        self.send_json(
            [
                {
                    "group": name,
                    "members": hub_groups.get(name, {}).get("users", []),
                    "in_hub": name in hub_groups,
                    "quota": rules[name].quota if name in rules else None,
                    "updated_by": rules[name].updated_by if name in rules else None,
                    "updated_at": rules[name].updated_at if name in rules else None,
                }
                for name in names
            ]
        )


class GroupHandler(BaseHandler):
    async def get(self, group: str) -> None:
        self.need_admin()
        rule = self.quota.store.group_rules().get(group)
        if rule is None:
            raise Problem(404, f"group {group!r} has no quota additions")
        self.send_json({"group": group, "quota": rule.quota, "updated_by": rule.updated_by})

    async def put(self, group: str) -> None:
        who = self.need_admin()
        body = self.body_json()
        patch = self.quota.set_group(group, body.get("quota"), who.name, body.get("reason", ""))
        self.send_json({"group": group, "quota": patch})

    async def delete(self, group: str) -> None:
        who = self.need_admin()
        reason = self.get_argument("reason", "") or self.body_json().get("reason", "")
        if not self.quota.remove_group(group, who.name, reason):
            raise Problem(404, f"group {group!r} has no quota additions")
        self.set_status(204)
        self.finish()


def _parse_expiry(body: dict[str, Any], now: datetime) -> datetime | None:
    if body.get("expires_in") is not None:
        try:
            return now + timedelta(seconds=float(body["expires_in"]))
        except (TypeError, ValueError) as error:
            raise Problem(400, "expires_in must be a number of seconds") from error
    if body.get("expires_at"):
        try:
            value = datetime.fromisoformat(str(body["expires_at"]))
        except ValueError as error:
            raise Problem(400, "expires_at must be an ISO 8601 time") from error
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _override_json(override: Any) -> dict[str, Any]:
    return {
        "user": override.user,
        "quota": override.quota,
        "reason": override.reason,
        "created_by": override.created_by,
        "created_at": override.created_at,
        "expires_at": override.expires_at,
    }


class OverridesHandler(BaseHandler):
    async def get(self) -> None:
        self.need_admin()
        active = self.get_argument("all", "") == ""
        overrides = self.quota.store.overrides(self.quota.clock() if active else None)
        self.send_json([_override_json(o) for o in overrides])


class OverrideHandler(BaseHandler):
    async def get(self, user: str) -> None:
        self.need_reader(user)
        override = self.quota.store.get_override(user)
        if override is None:
            raise Problem(404, f"{user} has no override")
        self.send_json(_override_json(override))

    async def put(self, user: str) -> None:
        who = self.need_admin()
        await self.groups_of(user)  # 404 for users the hub does not know
        body = self.body_json()
        expires = _parse_expiry(body, self.quota.clock())
        override = self.quota.set_override(
            user, body.get("quota"), who.name, body.get("reason", ""), expires
        )
        self.send_json(_override_json(override))

    async def delete(self, user: str) -> None:
        who = self.need_admin()
        reason = self.get_argument("reason", "") or self.body_json().get("reason", "")
        if not self.quota.remove_override(user, who.name, reason):
            raise Problem(404, f"{user} has no override")
        self.set_status(204)
        self.finish()


class PolicyHandler(BaseHandler):
    async def get(self) -> None:
        self.need_admin()
        self.send_json(self.quota.store.get_policy())

    async def put(self, *args: str) -> None:
        who = self.need_admin()
        body = self.body_json()
        policy = self.quota.set_policy(body.get("policy"), who.name, body.get("reason", ""))
        self.send_json(policy)


class AuditHandler(BaseHandler):
    async def get(self) -> None:
        self.need_admin()
        try:
            limit = min(int(self.get_argument("limit", "100")), 10_000)
        except ValueError as error:
            raise Problem(400, "limit must be an integer") from error
        target = self.get_argument("target", None)
        entries = self.quota.audit_log(limit, target)
        self.send_json([e.__dict__ for e in entries])


async def usage_overview(handler: BaseHandler) -> list[dict[str, Any]]:
    """Every hub user with groups, effective quota, usage and running servers."""
    try:
        users = await handler.hub.users()
    except HubUnavailable as error:
        raise Problem(503, str(error)) from error
    rows = []
    for model in sorted(users, key=lambda m: m["name"]):
        status = handler.quota.status(model["name"], list(model.get("groups", [])))
        servers = {
            name or "(default)": {
                "started": server.get("started"),
                "ready": server.get("ready"),
                "last_activity": server.get("last_activity"),
            }
            for name, server in (model.get("servers") or {}).items()
        }
        rows.append(
            {
                "user": model["name"],
                "admin": model.get("admin", False),
                "servers": servers,
                "status": status,
            }
        )
    return rows


class UsageHandler(BaseHandler):
    async def get(self) -> None:
        self.need_admin()
        self.send_json(await usage_overview(self))
