"""Enforcing lab quotas in the hub process: spawn menu, spawn checks, limits, accounting.

`configure_quota` (called by ``skydeck.hub.config.configure_hub``) installs, on
``c.Spawner``:

- ``options_form``: the size menu lists only the sizes within the user's quota
  (or says why the user may not start a lab, and whom to ask); with a single
  size and nothing to warn about there is no menu and the lab starts at once;
- ``pre_spawn_hook``: refuses with a 403 page saying why when ``spawn: false``,
  the budget is spent, the home is over its hard limit, or the chosen size is not
  offered; otherwise sets ``mem_limit`` / ``cpu_limit`` from the size (KubeSpawner
  turns them into container resources; JupyterHub passes them to every lab as
  ``MEM_LIMIT`` / ``CPU_LIMIT``) and records the session for the budget;
- ``post_stop_hook``: closes the session;
- for local labs a memory watchdog: every few seconds it sums the resident memory
  of each lab's process tree and stops the lab when it exceeds ``mem_limit``
  (CPU is not limited on one machine; ``CPU_LIMIT`` is advisory there).

It also defines the custom scopes ``custom:quota:admin|read|account`` and gives
every other platform service ``custom:quota:read`` + ``custom:quota:account``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.exc import SQLAlchemyError
from tornado import web
from tornado.ioloop import PeriodicCallback

from skydeck.hub.quota.model import GIB, Size
from skydeck.hub.quota.service import QuotaService, utcnow
from skydeck.hub.quota.settings import (
    ENV_PREFIX,
    SCOPE_ACCOUNT,
    SCOPE_ADMIN,
    SCOPE_READ,
    SERVICE_NAME,
    default_db_url,
)
from skydeck.hub.quota.store import QuotaStore

log = logging.getLogger("skydeck.quota")

CUSTOM_SCOPES = {
    SCOPE_ADMIN: {"description": "Change quotas, overrides and the quota policy."},
    SCOPE_READ: {"description": "Read any user's quota and usage; count their API requests."},
    SCOPE_ACCOUNT: {"description": "Record usage (e.g. Dask clusters) against user budgets."},
}


def _groups(spawner: Any) -> list[str]:
    return sorted(g.name for g in spawner.user.groups)


class QuotaHooks:
    """The spawner hooks, over one quota database (opened on first use)."""

    def __init__(
        self,
        db_url: str,
        home_template: str | None,
        watchdog_seconds: float = 5.0,
        close_stale_labs: bool = False,
    ) -> None:
        self.db_url = db_url
        self.close_stale_labs = close_stale_labs
        self.started = utcnow()
        self.home_template = home_template
        self.watchdog_seconds = watchdog_seconds
        self._service: QuotaService | None = None
        self._watched: dict[tuple[str, str], Any] = {}
        self._watchdog: PeriodicCallback | None = None
        self.chained_pre_spawn: Callable[[Any], Any] | None = None
        self.chained_post_stop: Callable[[Any], Any] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> QuotaHooks:
        # traitlets deep-copies every config value into each new Spawner; the hooks are
        # bound methods of this object, whose open database must be shared, not copied.
        return self

    @property
    def service(self) -> QuotaService:
        if self._service is None:
            store = QuotaStore(self.db_url)
            self._service = QuotaService(store, home_template=self.home_template)
            if self.close_stale_labs:
                # Labs of an earlier hub run (a crash skips post_stop_hook) are gone now
                # (cleanup_servers): they stopped at the latest when this hub started.
                closed = store.close_stale_sessions("lab", self.started, self.started)
                if closed:
                    log.warning("quota: closed %d lab session(s) of an earlier hub run", closed)
        return self._service

    # the size menu -----------------------------------------------------------------
    async def options_form(self, spawner: Any) -> str:
        status = await asyncio.to_thread(self.service.status, spawner.user.name, _groups(spawner))
        if not status.spawn.allowed:
            return (
                '<div class="alert alert-danger" id="quota-refusal">'
                f"{html.escape(status.spawn.reason or '')}</div>"
                # Nothing to start: hide the form's Start button.
                "<style>#spawn_form [type=submit] { display: none; }</style>"
            )
        if len(status.quota.sizes) == 1 and not status.warnings:
            return ""  # nothing to choose: the lab starts right away
        warnings = "".join(
            f'<div class="alert alert-warning">{html.escape(w.message)}</div>'
            for w in status.warnings
        )
        options = "".join(
            f'<option value="{html.escape(s.name)}"{" selected" if i == 0 else ""}>'
            f"{html.escape(s.name)}: {html.escape(s.description or _describe(s))}</option>"
            for i, s in enumerate(status.quota.sizes)
        )
        return (
            f"{warnings}<label for='skydeck-size' class='form-label'>Server size</label>"
            f"<select class='form-select' id='skydeck-size' name='size'>{options}</select>"
            "<p class='form-text'>Only sizes within your quota are offered.</p>"
        )

    async def sizes_for_user(self, spawner: Any) -> list[Size]:
        """The sizes offered to the spawner's user (KubeSpawner's ``profile_list`` seam,
        see ``skydeck.hub.kubernetes.user_profile_list``)."""
        quota = await asyncio.to_thread(self.service.effective, spawner.user.name, _groups(spawner))
        return quota.sizes

    @staticmethod
    def options_from_form(form_data: dict[str, list[str]]) -> dict[str, Any]:
        sizes = form_data.get("size") or []
        return {"size": sizes[0]} if sizes else {}

    # spawn ---------------------------------------------------------------------------
    async def pre_spawn_hook(self, spawner: Any) -> None:
        if self.chained_pre_spawn is not None:
            result = self.chained_pre_spawn(spawner)
            if asyncio.iscoroutine(result):
                await result
        user = spawner.user.name
        try:
            status = await asyncio.to_thread(self.service.status, user, _groups(spawner), True)
        except SQLAlchemyError as error:
            spawner.log.error("quota: the quota database failed: %s", error)
            raise web.HTTPError(
                503,
                "Your quota cannot be checked right now (the quota database is unreachable); "
                "try again in a minute, and tell your platform administrators if it persists.",
            ) from error
        if not status.spawn.allowed:
            raise web.HTTPError(403, status.spawn.reason)
        size = self.choose_size(status.quota.sizes, spawner.user_options or {}, status)
        spawner.mem_limit = int(size.memory_gib * GIB)
        spawner.cpu_limit = float(size.cpu)
        spawner.environment = {**spawner.environment, "SKYDECK_LAB_SIZE": size.name}
        self.service.store.open_session(
            user,
            "lab",
            spawner.name or "",
            size.cpu,
            size.memory_gib,
            self.service.clock(),
            size=size.name,
        )
        spawner.log.info(
            "quota: %s's lab %r gets size %s (%s CPUs, %s GiB)",
            user,
            spawner.name,
            size.name,
            size.cpu,
            size.memory_gib,
        )
        if hasattr(spawner, "pid"):
            self._watch(spawner)

    @staticmethod
    def choose_size(sizes: list[Size], options: dict[str, Any], status: Any) -> Size:
        """The requested size if offered; the first (smallest) offered one by default."""
        requested = options.get("size") or options.get("profile")  # KubeSpawner: profile slug
        if isinstance(requested, list):
            requested = requested[0] if requested else None
        if not requested:
            return sizes[0]
        for size in sizes:
            if size.name == requested:
                return size
        offered = ", ".join(s.name for s in sizes)
        raise web.HTTPError(
            403,
            f"The size {requested!r} is not within your quota; choose one of: {offered}. "
            f"Ask {status.quota.contact} if you need a bigger one.",
        )

    async def post_stop_hook(self, spawner: Any) -> None:
        try:
            self.service.store.close_session(
                spawner.user.name, "lab", spawner.name or "", self.service.clock()
            )
        finally:
            self._watched.pop((spawner.user.name, spawner.name or ""), None)
            if self.chained_post_stop is not None:
                result = self.chained_post_stop(spawner)
                if asyncio.iscoroutine(result):
                    await result

    # the local memory watchdog -----------------------------------------------------------
    def _watch(self, spawner: Any) -> None:
        self._watched[(spawner.user.name, spawner.name or "")] = spawner
        if self._watchdog is None:
            self._watchdog = PeriodicCallback(self._check, self.watchdog_seconds * 1000)
            self._watchdog.start()

    def _check(self) -> None:
        self.check_memory()

    def check_memory(self) -> list[str]:
        """Stop every local lab whose process tree uses more than its mem_limit."""
        stopped = []
        for key, spawner in list(self._watched.items()):
            pid, limit = getattr(spawner, "pid", 0), spawner.mem_limit
            if not pid or not limit:
                continue
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                continue
            if rss <= limit:
                continue
            spawner.log.warning(
                "quota: %s's lab uses %.2f GiB, over its limit of %.2f GiB: stopping it",
                key[0],
                rss / GIB,
                limit / GIB,
            )
            for proc in reversed(procs):
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
            self._watched.pop(key, None)
            stopped.append(key[0])
        return stopped


def configure_quota(c: Any, data_dir: Path, menu: bool = True) -> QuotaHooks | None:
    """Install quota enforcement in the JupyterHub config ``c`` (if the service is there).

    ``menu=False`` leaves ``options_form`` alone, for KubeSpawner, whose profile list
    is the menu: pass ``hooks.sizes_for_user`` to ``configure_kubernetes``.
    """
    services = list(c.JupyterHub.services)
    if SERVICE_NAME not in {s.get("name") for s in services}:
        return None
    home_default = str(data_dir / "home" / "{username}")
    hooks = QuotaHooks(
        db_url=os.environ.get(f"{ENV_PREFIX}DB_URL") or default_db_url(data_dir),
        home_template=os.environ.get(f"{ENV_PREFIX}HOME_TEMPLATE", home_default) or None,
        close_stale_labs=bool(c.JupyterHub.get("cleanup_servers", True)),
    )
    c.JupyterHub.custom_scopes = {**CUSTOM_SCOPES, **dict(c.JupyterHub.get("custom_scopes", {}))}
    spawner = c.Spawner
    if "pre_spawn_hook" in spawner:
        hooks.chained_pre_spawn = spawner.pre_spawn_hook
    if "post_stop_hook" in spawner:
        hooks.chained_post_stop = spawner.post_stop_hook
    spawner.pre_spawn_hook = hooks.pre_spawn_hook
    spawner.post_stop_hook = hooks.post_stop_hook
    if menu:
        spawner.options_form = hooks.options_form
        spawner.options_from_form = hooks.options_from_form
    # Other platform services (TAP, cutouts, dask-gateway) read quotas and record usage.
    readers = [s["name"] for s in services if s.get("url") and s["name"] != SERVICE_NAME]
    if readers:
        c.JupyterHub.load_roles = [
            *c.JupyterHub.load_roles,
            {
                "name": "quota-reader",
                "description": "Platform services read user quotas and record usage.",
                "scopes": [f"access:services!service={SERVICE_NAME}", SCOPE_READ, SCOPE_ACCOUNT],
                "services": readers,
            },
        ]
    return hooks


def _describe(size: Size) -> str:
    return f"{size.cpu:g} CPUs, {size.memory_gib:g} GiB"
