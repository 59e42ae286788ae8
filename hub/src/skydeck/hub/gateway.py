"""The ``dask-gateway`` managed service: per-user Dask clusters for Skydeck labs.

``skydeck up`` finds `dask_gateway_service` through the ``skydeck.services``
entry point and starts ``python -m skydeck.hub.gateway`` as the JupyterHub
managed service ``dask-gateway``.  That process is a stock dask-gateway server
(``dask_gateway_server.app.DaskGateway``) configured here and in
``skydeck.hub._gateway_backend`` (imported only by that process: importing
``dask_gateway_server`` rewrites traitlets' global logging setup, which would
break the hub's own logs):

- authentication through JupyterHub (``JupyterHubAuthenticator``): a lab's hub
  token needs ``access:services!service=dask-gateway``; a user sees and connects
  to their own clusters only;
- clusters as local processes of the user running ``skydeck up``
  (`SkydeckGatewayBackend`, an ``UnsafeLocalBackend``: no setuid, the labs run as
  that user too).  Schedulers and workers start as ``dask scheduler`` /
  ``dask worker``: current ``distributed`` no longer installs the
  ``dask-scheduler`` / ``dask-worker`` scripts dask-gateway 2026.3 launches by
  default;
- per-user limits (`DaskLimits`): clusters per user (checked at cluster
  creation, dask-gateway has no such limit of its own), workers, cores and memory
  per cluster (dask-gateway's ``cluster_max_*``), the idle timeout.  They come
  from ``SKYDECK_GATEWAY_*`` settings now; `QuotaLimits` is the seam for the
  quota service (``GET /services/quota/api/users/{name}/quota``);
- clean-up: idle clusters stop after ``idle_timeout``; clusters whose owner has no
  running lab for ``orphan_grace`` seconds are reaped; all clusters stop with the
  gateway.  Its database lives in the service's state directory.

The HTTP API and dashboards are served under ``/services/dask-gateway/`` through
the hub's proxy; scheduler traffic (TLS) goes to the gateway's own TCP proxy,
whose address labs get as ``SKYDECK_GATEWAY_PROXY_ADDRESS``.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from skydeck.hub.preflight import free_port
from skydeck.hub.services import ServiceContext
from skydeck.service import exit_with_parent

SERVICE_NAME = "dask-gateway"
ENV_PREFIX = "SKYDECK_GATEWAY_"
GIB = 2**30

#: The variable that tells a lab where the gateway's scheduler proxy listens.
PROXY_ADDRESS_ENV = "SKYDECK_GATEWAY_PROXY_ADDRESS"


#: Field names of the quota service's ``dask`` limits, and ours.
QUOTA_FIELDS = {
    "clusters": "max_clusters",
    "workers": "max_workers",
    "cores": "max_cores",
    "memory_gib": "max_memory_gib",
}
_NO_LIMIT = ("", "none", "unlimited")


@dataclass(frozen=True)
class DaskLimits:
    """What one user may run through the gateway (``None``: no limit).

    ``max_cores`` and ``max_memory_gib`` count the workers of one cluster (the
    scheduler comes on top).  Environment names: ``SKYDECK_GATEWAY_MAX_CLUSTERS``,
    ``..._MAX_WORKERS``, ``..._MAX_CORES``, ``..._MAX_MEMORY_GIB`` (``none`` for
    no limit), ``..._WORKER_CORES``, ``..._WORKER_MEMORY_GIB`` (the default
    worker) and ``..._IDLE_TIMEOUT`` (seconds; 0 never stops an idle cluster).
    """

    max_clusters: int | None = 2
    max_workers: int | None = 4
    max_cores: float | None = 4.0
    max_memory_gib: float | None = 8.0
    worker_cores: int = 1
    worker_memory_gib: float = 1.0
    idle_timeout: float = 1800.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: DaskLimits | None = None) -> DaskLimits:
        """Limits from a mapping of field names (fields not in it keep ``base``).

        The quota service's names (``clusters``, ``workers``, ``cores``,
        ``memory_gib``) are understood too; ``None`` there means no limit.
        """
        start = base or cls()
        values = {QUOTA_FIELDS.get(key, key): value for key, value in values.items()}
        changes: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in values:
                continue
            value = values[item.name]
            optional = "None" in str(item.type)
            if value is None or (isinstance(value, str) and value.lower() in _NO_LIMIT):
                if not optional:
                    raise ValueError(f"{item.name} needs a value")
                changes[item.name] = None
                continue
            kind = int if str(item.type).startswith("int") else float
            changes[item.name] = kind(value)
        return replace(start, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DaskLimits:
        env = os.environ if environ is None else environ
        values = {
            item.name: env[ENV_PREFIX + item.name.upper()]
            for item in fields(cls)
            if ENV_PREFIX + item.name.upper() in env
        }
        return cls.from_mapping(values)

    def to_env(self) -> dict[str, str]:
        out = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[ENV_PREFIX + item.name.upper()] = "none" if value is None else str(value)
        return out


@dataclass(frozen=True)
class GatewaySettings:
    """What the hub tells the gateway process (``SKYDECK_GATEWAY_*`` variables)."""

    state_dir: Path
    http_address: str
    tcp_address: str
    api_address: str
    prefix: str = f"/services/{SERVICE_NAME}"
    quota_url: str = ""
    orphan_grace: float = 300.0
    orphan_check_period: float = 60.0
    limits: DaskLimits = DaskLimits()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if environ is None else environ

        def need(key: str) -> str:
            value = env.get(ENV_PREFIX + key)
            if not value:
                raise SystemExit(
                    f"{ENV_PREFIX}{key} is not set: the dask-gateway service is started by "
                    "`skydeck up`, which sets it (see skydeck.hub.gateway)"
                )
            return value

        return cls(
            state_dir=Path(need("STATE_DIR")),
            http_address=need("HTTP_ADDRESS"),
            tcp_address=need("TCP_ADDRESS"),
            api_address=need("API_ADDRESS"),
            prefix=env.get(ENV_PREFIX + "PREFIX", f"/services/{SERVICE_NAME}"),
            quota_url=env.get(ENV_PREFIX + "QUOTA_URL", ""),
            orphan_grace=float(env.get(ENV_PREFIX + "ORPHAN_GRACE", "300")),
            orphan_check_period=float(env.get(ENV_PREFIX + "ORPHAN_CHECK_PERIOD", "60")),
            limits=DaskLimits.from_env(env),
        )

    def to_env(self) -> dict[str, str]:
        return {
            ENV_PREFIX + "STATE_DIR": str(self.state_dir),
            ENV_PREFIX + "HTTP_ADDRESS": self.http_address,
            ENV_PREFIX + "TCP_ADDRESS": self.tcp_address,
            ENV_PREFIX + "API_ADDRESS": self.api_address,
            ENV_PREFIX + "PREFIX": self.prefix,
            ENV_PREFIX + "QUOTA_URL": self.quota_url,
            ENV_PREFIX + "ORPHAN_GRACE": str(self.orphan_grace),
            ENV_PREFIX + "ORPHAN_CHECK_PERIOD": str(self.orphan_check_period),
            **self.limits.to_env(),
        }


def encryption_key(state_dir: Path) -> str:
    """The key that encrypts cluster credentials in the gateway database (made once)."""
    path = state_dir / "db-encrypt-key"
    if not path.exists():
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(key)
    return path.read_text().strip()


def dask_gateway_service(context: ServiceContext) -> dict[str, Any]:
    """The JupyterHub service definition (entry point in ``skydeck.services``)."""
    # A fixed scheduler-proxy port (SKYDECK_GATEWAY_TCP_PORT) where a Service must name it.
    tcp_port = int(os.environ.get(ENV_PREFIX + "TCP_PORT") or free_port())
    services = {e.name for e in entry_points(group="skydeck.services")}
    quota_url = f"{context.public_url}/services/quota/" if "quota" in services else ""
    settings = GatewaySettings(
        state_dir=context.state_dir,
        http_address=f"{context.host}:{context.port}",
        tcp_address=f"{context.host}:{tcp_port}",
        api_address=f"127.0.0.1:{free_port()}",
        prefix=f"/services/{context.name}",
        quota_url=quota_url,
        orphan_grace=float(os.environ.get(ENV_PREFIX + "ORPHAN_GRACE", "300")),
        orphan_check_period=float(os.environ.get(ENV_PREFIX + "ORPHAN_CHECK_PERIOD", "60")),
        limits=DaskLimits.from_env(),
    )
    release = str(context.release_dir)
    # Listening on all interfaces (a pod): labs are told the address by the deployment.
    lab_host = "127.0.0.1" if context.host in ("0.0.0.0", "::", "") else context.host
    return {
        "name": context.name,
        "command": [sys.executable, "-m", "skydeck.hub.gateway"],
        "environment": {**settings.to_env(), "SKYDECK_RELEASE": release},
        "cwd": str(context.state_dir),
        "roles": [
            {
                "name": f"{context.name}-service",
                "description": "Lets the gateway see which users have a running lab.",
                "scopes": ["read:users:name", "read:servers"],
                "services": [context.name],
            }
        ],
        # ``lab_environment`` goes into every lab's discovery environment (hub config).
        "info": {"lab_environment": {PROXY_ADDRESS_ENV: f"gateway://{lab_host}:{tcp_port}"}},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the gateway (the managed service's command)."""
    from dask_gateway_server.app import DaskGateway

    from skydeck.hub._gateway_backend import gateway_config

    settings = GatewaySettings.from_env()
    os.environ.setdefault("JUPYTERHUB_SERVICE_NAME", SERVICE_NAME)
    # An operator's dask_gateway_config.py in the state directory is loaded on top.
    os.chdir(settings.state_dir)
    # a hub killed outright cannot stop its services: the gateway, its proxy and its
    # clusters then stop themselves (a graceful gateway shutdown on SIGTERM)
    exit_with_parent()
    DaskGateway.launch_instance(argv=argv or [], config=gateway_config(settings))


if __name__ == "__main__":
    main()
