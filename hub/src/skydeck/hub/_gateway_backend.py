"""The dask-gateway server side of ``skydeck.hub.gateway`` (only its process imports this).

`SkydeckGatewayBackend` adds Skydeck's per-user limits and orphan reaping to
dask-gateway's ``UnsafeLocalBackend``; `gateway_config` is the whole server
configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.backends.local import UnsafeLocalBackend
from dask_gateway_server.options import Float, Integer, Options
from traitlets import Float as FloatTrait
from traitlets import Integer as IntegerTrait
from traitlets import Unicode, default
from traitlets.config import Config

from skydeck.hub.gateway import GIB, DaskLimits, GatewaySettings, encryption_key
from skydeck.hub.services import BACKEND_ENV
from skydeck.service import REVOCATION_SECONDS, QuotaClient, QuotaUnavailable


class LimitError(PublicException):
    """A request beyond the user's limits; the message says what to do."""


def _fmt(value: float | None, unit: str = "") -> str:
    return "no limit" if value is None else f"{value:g}{unit}"


def cluster_options(limits: DaskLimits) -> Options:
    """The options a user may choose when creating a cluster, bounded by ``limits``."""

    def handler(options: Any, user: Any) -> dict[str, Any]:
        cores = int(options.worker_cores)
        memory = float(options.worker_memory)
        too_many_cores = limits.max_cores is not None and cores > limits.max_cores
        too_much_memory = limits.max_memory_gib is not None and memory > limits.max_memory_gib
        if too_many_cores or too_much_memory:
            raise LimitError(
                f"one worker of {cores} cores / {memory:g} GiB is larger than your cluster "
                f"limit ({_fmt(limits.max_cores)} cores, {_fmt(limits.max_memory_gib, ' GiB')}); "
                "ask for smaller workers"
            )
        return {
            "worker_cores": cores,
            "worker_threads": cores,
            "worker_memory": int(memory * GIB),
            "scheduler_cores": 1,
            "scheduler_memory": GIB,
            "cluster_max_workers": limits.max_workers,
            # dask-gateway counts the scheduler inside these; our limits count workers.
            "cluster_max_cores": None if limits.max_cores is None else limits.max_cores + 1,
            "cluster_max_memory": (
                None if limits.max_memory_gib is None else int((limits.max_memory_gib + 1) * GIB)
            ),
            "idle_timeout": limits.idle_timeout,
        }

    max_cores = None if limits.max_cores is None else max(1, int(limits.max_cores))
    return Options(
        Integer(
            "worker_cores", default=limits.worker_cores, min=1, max=max_cores, label="Worker cores"
        ),
        Float(
            "worker_memory",
            default=limits.worker_memory_gib,
            min=0.25,
            max=limits.max_memory_gib,
            label="Worker memory (GiB)",
        ),
        handler=handler,
    )


def dask_limits_from_quota(payload: Any, base: DaskLimits) -> DaskLimits:
    """The ``dask`` part of a quota service answer as `DaskLimits` (``base`` fills gaps).

    Accepts the effective quota (``{"quota": {"dask": {...}}}``), a bare quota
    (``{"dask": {...}}``) or the ``dask`` object itself.
    """
    if not isinstance(payload, dict):
        return base
    if isinstance(payload.get("quota"), dict):
        payload = payload["quota"]
    dask = payload.get("dask", payload)
    return DaskLimits.from_mapping(dask if isinstance(dask, dict) else {}, base=base)


class QuotaLimits:
    """Per-user limits from the quota service, on top of the configured ones.

    Asked through the services' one quota client (`skydeck.service.QuotaClient`:
    ``GET <quota_url>api/users/<name>/quota`` with the gateway's hub token, names
    encoded); its ``dask`` limits (``clusters``, ``workers``, ``cores``,
    ``memory_gib``) replace the configured ones. When the quota service cannot be
    asked, no cluster is sized (closed, like every enforcer).
    """

    def __init__(self, client: QuotaClient, base: DaskLimits) -> None:
        self.client = client
        self.base = base

    async def for_user(self, user: str) -> DaskLimits:
        try:
            dask = await asyncio.to_thread(self.client.limits, user, "dask")
        except QuotaUnavailable as error:
            raise PublicException(
                f"{error.message}: no new Dask cluster can be sized right now "
                "(ask your administrator if this persists)"
            ) from None
        return dask_limits_from_quota(dask, self.base)


class SkydeckGatewayBackend(UnsafeLocalBackend):
    """Local-process clusters with Skydeck's per-user limits and orphan reaping."""

    _quota: QuotaClient | None = None  # the quota service's client, made on first use

    max_clusters_per_user = IntegerTrait(
        DaskLimits.max_clusters,
        min=0,
        allow_none=True,
        config=True,
        help="""
        How many clusters one user may have running at once.  dask-gateway has
        no such limit of its own: it is checked when a cluster is created.
        """,
    )

    max_workers_per_cluster = IntegerTrait(
        DaskLimits.max_workers,
        min=0,
        allow_none=True,
        config=True,
        help="Most workers in one cluster (None: no limit).",
    )

    max_cores_per_cluster = FloatTrait(
        DaskLimits.max_cores,
        min=0,
        allow_none=True,
        config=True,
        help="Most CPU cores the workers of one cluster may use together.",
    )

    max_memory_per_cluster_gib = FloatTrait(
        DaskLimits.max_memory_gib,
        min=0,
        allow_none=True,
        config=True,
        help="Most memory (GiB) the workers of one cluster may use together.",
    )

    default_worker_cores = IntegerTrait(
        DaskLimits.worker_cores, min=1, config=True, help="Cores per worker unless asked."
    )

    default_worker_memory_gib = FloatTrait(
        DaskLimits.worker_memory_gib, config=True, help="Memory (GiB) per worker unless asked."
    )

    cluster_idle_timeout = FloatTrait(
        DaskLimits.idle_timeout,
        min=0,
        config=True,
        help="Seconds of inactivity after which a cluster stops itself (0: never).",
    )

    quota_url = Unicode(
        "",
        config=True,
        help="""
        URL of Skydeck's quota service (``.../services/quota/``).  When set, each
        user's limits come from it (the settings above are the defaults for what
        it leaves out); when empty, the settings above apply to everyone.
        """,
    )

    orphan_check_period = FloatTrait(
        60.0,
        min=1,
        config=True,
        help="""
        Seconds between housekeeping rounds: reaping clusters whose owner has no
        running lab, and recording clusters' usage with the quota service.
        """,
    )

    orphan_grace = FloatTrait(
        300.0,
        min=0,
        config=True,
        help="""
        Seconds a user's clusters may outlive the user's lab before they are
        stopped (the lab may just be restarting).
        """,
    )

    hub_api_url = Unicode(
        config=True,
        help="JupyterHub's API URL, to find users without a running lab "
        "(default: JUPYTERHUB_API_URL).",
    )

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    def configured_limits(self) -> DaskLimits:
        """The limits from configuration (everyone's, unless the quota service says more)."""
        return DaskLimits(
            max_clusters=self.max_clusters_per_user,
            max_workers=self.max_workers_per_cluster,
            max_cores=self.max_cores_per_cluster,
            max_memory_gib=self.max_memory_per_cluster_gib,
            worker_cores=self.default_worker_cores,
            worker_memory_gib=self.default_worker_memory_gib,
            idle_timeout=self.cluster_idle_timeout,
        )

    async def limits_for(self, username: str) -> DaskLimits:
        """What ``username`` may run: the one question every check here asks."""
        base = self.configured_limits()
        if not self.quota_url:
            return base
        if self._quota is None:
            token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
            self._quota = QuotaClient(self.quota_url, token)
        return await QuotaLimits(self._quota, base).for_user(username)

    async def get_cluster_options(self, user: Any) -> Options:
        return cluster_options(await self.limits_for(user.name))

    async def start_cluster(self, user: Any, cluster_options: dict[str, Any]) -> str:
        limits = await self.limits_for(user.name)
        options, config = await self.process_cluster_options(user, cluster_options)
        # No await between counting and creating: two requests cannot both slip through.
        active = self.db.list_clusters(username=user.name)
        if limits.max_clusters is not None and len(active) >= limits.max_clusters:
            names = ", ".join(sorted(c.name for c in active))
            raise LimitError(
                f"you already have {len(active)} running Dask cluster(s) ({names}) and your "
                f"limit is {limits.max_clusters}; shut one down first: cluster.shutdown(), or "
                "skydeck.lab.shutdown_dask_clusters(everywhere=True) to stop all of yours"
            )
        cluster = self.db.create_cluster(user.name, options, config.to_dict())
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.queue.put(cluster)
        return str(cluster.name)

    # -- orphan reaping -------------------------------------------------------------

    async def do_setup(self) -> None:
        await super().do_setup()
        self._lab_gone_since: dict[str, float] = {}
        self._accounted: dict[str, tuple[str, float, float, int]] = {}
        self.task_pool.spawn(self._housekeeping_loop())

    async def _has_running_lab(self, username: str) -> bool:
        url = f"{self.hub_api_url.rstrip('/')}/users/{quote(username)}"
        headers = {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"}
        async with self.session.get(url, headers=headers) as response:
            if response.status == 404:
                return False
            response.raise_for_status()
            model = await response.json()
        servers = model.get("servers") or {}
        return any(s.get("ready") or s.get("pending") for s in servers.values())

    async def reap_orphans(self) -> list[str]:
        """Stop the clusters of users whose lab has been gone for ``orphan_grace``."""
        stopped: list[str] = []
        now = time.monotonic()
        owners = {c.username for c in self.db.active_clusters()}
        for name in list(self._lab_gone_since):
            if name not in owners:
                del self._lab_gone_since[name]
        for username in owners:
            try:
                running = await self._has_running_lab(username)
            except Exception as error:  # hub briefly away: decide next round
                self.log.warning("could not ask the hub about %s: %s", username, error)
                continue
            if running:
                self._lab_gone_since.pop(username, None)
                continue
            since = self._lab_gone_since.setdefault(username, now)
            if now - since >= self.orphan_grace:
                for cluster in self.db.list_clusters(username=username):
                    self.log.info(
                        "Reaping cluster %s: %s has no running lab", cluster.name, username
                    )
                    await self.stop_cluster(cluster.name)
                    stopped.append(cluster.name)
                del self._lab_gone_since[username]
        return stopped

    # -- usage accounting (compute budgets in the quota service) --------------------

    def _usage(self, cluster: Any) -> tuple[str, float, float, int]:
        """(user, cores, memory GiB, workers) a running cluster holds now, scheduler included."""
        config = cluster.config
        workers = sum(1 for w in cluster.workers.values() if w.status == JobStatus.RUNNING)
        cores = config.get("scheduler_cores", 1) + workers * config.get("worker_cores", 1)
        memory = config.get("scheduler_memory", GIB) + workers * config.get("worker_memory", GIB)
        return cluster.username, float(cores), round(memory / GIB, 3), workers

    async def _record(self, name: str, usage: tuple[str, float, float, int], stopped: bool) -> None:
        user, cores, memory, workers = usage
        url = f"{self.quota_url.rstrip('/')}/api/users/{quote(user)}/sessions"
        body = {
            "source": "dask",
            "key": name,
            "cpu": cores,
            "memory_gib": memory,
            "workers": workers,
            "stopped": stopped,
        }
        headers = {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with self.session.post(url, json=body, headers=headers, timeout=timeout) as response:
            response.raise_for_status()

    async def account_usage(self) -> None:
        """Tell the quota service what each cluster holds, when it changes (budgets)."""
        if not self.quota_url:
            return
        current = {
            c.name: self._usage(c)
            for c in self.db.active_clusters()
            if c.status == JobStatus.RUNNING
        }
        for name, usage in current.items():
            if self._accounted.get(name) != usage:
                await self._record(name, usage, stopped=False)
                self._accounted[name] = usage
        for name in set(self._accounted) - set(current):
            await self._record(name, self._accounted[name], stopped=True)
            del self._accounted[name]

    async def cleanup(self) -> None:
        if self.stop_clusters_on_shutdown:  # every cluster stops with the gateway
            for name, usage in list(getattr(self, "_accounted", {}).items()):
                with contextlib.suppress(Exception):
                    await self._record(name, usage, stopped=True)
        await super().cleanup()

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.orphan_check_period)
            if self.hub_api_url:
                try:
                    await self.reap_orphans()
                except Exception:
                    self.log.exception("orphan reaping failed; retrying next period")
            try:
                await self.account_usage()
            except Exception as error:  # the quota service may be restarting
                self.log.warning("could not record Dask usage with the quota service: %s", error)


class SkydeckGatewayAuthenticator(JupyterHubAuthenticator):
    """dask-gateway's hub authentication, with a refused token answered 401, not 500.

    The hub answers 403 for a token it does not know (revoked, expired, made up);
    dask-gateway's authenticator turns that into a 500 "Permission failure verifying
    user's JupyterHub API token".  Here it is what it is: no valid credentials.
    """

    async def authenticate(self, request: web.Request) -> Any:
        try:
            return await super().authenticate(request)
        except web.HTTPInternalServerError as error:
            if "Permission failure" not in (error.reason or ""):
                raise
            raise unauthorized("jupyterhub") from None


def gateway_config(settings: GatewaySettings) -> Config:
    """The dask-gateway server configuration for ``settings``."""
    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask")
    clusters_dir = settings.state_dir / "clusters"
    clusters_dir.mkdir(parents=True, exist_ok=True)
    limits = settings.limits
    c = Config()
    c.DaskGateway.address = settings.api_address
    c.DaskGateway.authenticator_class = SkydeckGatewayAuthenticator
    c.SkydeckGatewayAuthenticator.cache_max_age = REVOCATION_SECONDS
    c.DaskGateway.backend_class = SkydeckGatewayBackend
    c.Proxy.address = settings.http_address
    c.Proxy.tcp_address = settings.tcp_address
    c.Proxy.prefix = settings.prefix
    backend = c.SkydeckGatewayBackend
    backend.db_url = f"sqlite:///{settings.state_dir / 'gateway.sqlite'}"
    backend.db_encrypt_keys = [encryption_key(settings.state_dir)]
    backend.clusters_directory = str(clusters_dir)
    backend.stop_clusters_on_shutdown = True
    backend.cluster_status_period = 10.0
    backend.worker_status_period = 10.0
    backend.max_clusters_per_user = limits.max_clusters
    backend.max_workers_per_cluster = limits.max_workers
    backend.max_cores_per_cluster = limits.max_cores
    backend.max_memory_per_cluster_gib = limits.max_memory_gib
    backend.default_worker_cores = limits.worker_cores
    backend.default_worker_memory_gib = limits.worker_memory_gib
    backend.cluster_idle_timeout = limits.idle_timeout
    backend.quota_url = settings.quota_url
    backend.orphan_grace = settings.orphan_grace
    backend.orphan_check_period = settings.orphan_check_period
    backend.inherited_environment = [
        "PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "LANG",
        "LC_ALL",
        "HOME",
        "SKYDECK_RELEASE",
        # a release on S3: workers read its HATS files with the platform's S3 settings
        *BACKEND_ENV,
    ]
    c.ClusterConfig.scheduler_cmd = [dask, "scheduler"]
    c.ClusterConfig.worker_cmd = [dask, "worker"]
    c.ClusterConfig.idle_timeout = limits.idle_timeout
    return c
