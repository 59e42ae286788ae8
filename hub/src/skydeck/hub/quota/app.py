"""The managed JupyterHub service ``quota``: REST API and pages under /services/quota/.

``skydeck up`` finds `quota_service` through the ``skydeck.services`` entry point
and runs ``python -m skydeck.hub.quota``.  Routes (below the service prefix)::

    GET    /                                  redirect: admins to admin, users to me
    GET    me | admin                         pages (admin forms POST to admin/groups|overrides)
    GET    api/me, api/status                 the caller's status (limits, usage, warnings)
    GET    api/users/{user}/quota             effective quota
    GET    api/users/{user}/status            limits + usage + spawn decision + warnings
    POST   api/users/{user}/rate/{service}    count one request: 200, or 429 + Retry-After
    POST   api/users/{user}/sessions          record usage (Dask clusters) for budgets
    GET|PUT|DELETE api/users/{user}/override  per-user override (reason, expiry)
    GET    api/overrides                      active overrides (?all=1: expired too)
    GET    api/groups | GET|PUT|DELETE api/groups/{group}   group additions
    GET|PUT api/policy                        defaults, sizes, bypass groups, contact
    GET    api/audit                          who changed what, when, why
    GET    api/usage                          every user: quota, usage, running servers
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado.ioloop import IOLoop
from tornado.web import Application

from skydeck.hub.quota import handlers as h
from skydeck.hub.quota import pages as p
from skydeck.hub.quota._hubapi import HubAPI
from skydeck.hub.quota.service import QuotaService
from skydeck.hub.quota.settings import (
    ENV_PREFIX,
    SCOPE_ACCOUNT,
    SCOPE_ADMIN,
    SCOPE_READ,
    SERVICE_NAME,
    QuotaSettings,
)
from skydeck.hub.quota.store import QuotaStore
from skydeck.hub.services import ServiceContext
from skydeck.service import REVOCATION_SECONDS, exit_with_parent

TEMPLATES = Path(__file__).with_name("templates")
USER = r"(?P<user>[^/]+)"

log = logging.getLogger(__name__)


def make_app(settings: QuotaSettings, service: QuotaService, hub_api: HubAPI) -> Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(str(TEMPLATES)),
                PrefixLoader({"templates": FileSystemLoader(f"{DATA_FILES_PATH}/templates")}),
            ]
        ),
        autoescape=True,
    )
    api = prefix + "api/"
    routes: list[Any] = [
        (prefix, p.RootHandler),
        (prefix + "me", p.MePage),
        (prefix + "admin", p.AdminPage),
        (prefix + r"admin/(?P<what>groups|overrides)", p.AdminPage),
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (api + "me", h.MeHandler),
        (api + "status", h.MeHandler),  # what the lab extension's status bar reads
        (api + f"users/{USER}/quota", h.UserQuotaHandler),
        (api + f"users/{USER}/status", h.UserStatusHandler),
        (api + f"users/{USER}/rate/(?P<service>[^/]+)", h.RateHandler),
        (api + f"users/{USER}/sessions", h.SessionsHandler),
        (api + f"users/{USER}/override", h.OverrideHandler),
        (api + "overrides", h.OverridesHandler),
        (api + "groups", h.GroupsHandler),
        (api + "groups/(?P<group>[^/]+)", h.GroupHandler),
        (api + "policy", h.PolicyHandler),
        (api + "audit", h.AuditHandler),
        (api + "usage", h.UsageHandler),
    ]
    return Application(
        routes,
        quota=service,
        hub_api=hub_api,
        jinja_env=env,
        hub_prefix=settings.hub_prefix,
        service_prefix=prefix,
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
    )


def main() -> None:
    """Run the service (JupyterHub gives it JUPYTERHUB_* variables)."""
    logging.basicConfig(level=logging.INFO, format="[quota %(levelname)s] %(message)s")
    settings = QuotaSettings()
    store = QuotaStore(settings.database_url)
    service = QuotaService(
        store, home_template=settings.home_template or None, rate_storage=settings.rate_storage
    )
    if not (settings.hub_api_url and settings.hub_api_token):
        raise SystemExit("the quota service runs under the hub: JUPYTERHUB_API_URL/TOKEN unset")
    hub_api = HubAPI(
        settings.hub_api_url, settings.hub_api_token, cache_seconds=settings.user_cache_seconds
    )
    # The handlers' one HubOAuth: tokens (and cookies' tokens) re-checked with the hub after
    # REVOCATION_SECONDS, as at TAP and cutouts (its default cache keeps a revoked one 300 s).
    HubOAuth.instance(cache_max_age=REVOCATION_SECONDS)
    app = make_app(settings, service, hub_api)
    url = os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{settings.port}")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    # The host of JUPYTERHUB_SERVICE_URL: loopback under the hub, 0.0.0.0 in a pod.
    host = urlsplit(url).hostname or "127.0.0.1"
    app.listen(port, address=host)
    log.info("quota service on %s:%d, database %s", host, port, store.engine.url.render_as_string())
    # a hub killed outright cannot stop its services: this one then stops itself, as if
    # the hub had stopped it (SIGINT)
    exit_with_parent(signum=signal.SIGINT)
    try:
        IOLoop.current().start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT
        log.info("quota service stopped")
    finally:
        store.close()


def quota_service(context: ServiceContext) -> dict[str, Any]:
    """The ``skydeck.services`` entry point: the managed service definition."""
    settings = QuotaSettings(data_dir=context.data_dir)
    environment = {
        f"{ENV_PREFIX}DATA_DIR": str(context.data_dir),
        f"{ENV_PREFIX}DB_URL": os.environ.get(f"{ENV_PREFIX}DB_URL", settings.database_url),
        f"{ENV_PREFIX}HOME_TEMPLATE": os.environ.get(
            f"{ENV_PREFIX}HOME_TEMPLATE", str(context.data_dir / "home" / "{username}")
        ),
        f"{ENV_PREFIX}PORT": str(context.port),
    }
    return {
        "name": SERVICE_NAME,
        "command": [sys.executable, "-m", "skydeck.hub.quota"],
        "environment": environment,
        "display": True,
        "oauth_client_allowed_scopes": [SCOPE_ADMIN, SCOPE_READ, SCOPE_ACCOUNT],
        "roles": [
            {
                "name": "quota-service",
                "description": "The quota service reads users, groups and servers.",
                "scopes": [
                    "list:users",
                    "read:users",
                    "read:servers",
                    "list:groups",
                    "read:groups",
                ],
                "services": [SERVICE_NAME],
            }
        ],
    }
