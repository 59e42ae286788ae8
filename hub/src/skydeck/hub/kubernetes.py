"""Skydeck on Kubernetes: KubeSpawner configured the way Skydeck needs it.

The Zero to JupyterHub chart runs the hub (``hub/deploy/helm/skydeck-values.yaml``);
its ``hub.extraConfig`` calls `configure_kubernetes`, which layers Skydeck on the
chart's KubeSpawner:

- a *profile* per named lab size of the quota policy (`profile_list`), with CPU
  and memory requests and limits (the seam with ``skydeck.hub.quota``: any objects
  with ``name``, ``description``, ``cpu`` and ``memory_gib``);
- the discovery environment (kernels/README.md) pointing at in-cluster URLs;
- the data release mounted read-only from a shared claim (or named by URL, e.g. S3);
- the lab command and arguments of the local spawner (JupyterLab, Skydeck kernel only);
- the spawner class `skydeck.hub.kube_spawner.SkydeckKubeSpawner`: KubeSpawner with the
  local spawner's resource variables (``CPU_LIMIT`` & co. as integer strings);
- the user's home volume claim sized by the storage quota.

Everything here is plain KubeSpawner configuration: an operator can set the same
traits in ``hub.config`` instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from skydeck.hub.spawner import LAB_ARGS

#: Where the release claim is mounted in each lab (and what SKYDECK_RELEASE then says).
RELEASE_MOUNT = "/skydeck/release"

#: Discovery variable of each platform service (same names as the local hub's).
SERVICE_VARIABLES = {
    "tap": "SKYDECK_TAP_URL",
    "cutouts": "SKYDECK_CUTOUT_URL",
    "dask-gateway": "SKYDECK_GATEWAY_URL",
    "quota": "SKYDECK_QUOTA_URL",
}


class SizeLike(Protocol):
    """A named lab size (``skydeck.hub.quota.model.Size`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def cpu(self) -> float: ...
    @property
    def memory_gib(self) -> float: ...


class KubernetesConfigError(ValueError):
    """The Kubernetes settings cannot work; the message says what to change."""


def _gib(value: float) -> str:
    """A memory amount KubeSpawner understands (``G`` = GiB, as JupyterHub's ByteSpecification)."""
    if float(value).is_integer():
        return f"{int(value)}G"
    return f"{round(value * 1024)}M"


def profile_list(
    sizes: Iterable[SizeLike],
    default: str | None = None,
    cpu_overcommit: float = 4.0,
    memory_overcommit: float = 1.0,
) -> list[dict[str, Any]]:
    """KubeSpawner profiles, one per named size, in the given order.

    A size's ``cpu`` and ``memory_gib`` are the container *limits*; the *requests*
    (what the scheduler reserves) are the limits divided by the overcommit factors:
    labs idle most of the time, so CPU is shared 4:1 by default, while memory is
    reserved in full (an overcommitted lab would be killed, losing the user's work).
    ``default`` names the preselected size (the first one when None).
    """
    if cpu_overcommit < 1 or memory_overcommit < 1:
        raise KubernetesConfigError("overcommit factors must be >= 1 (requests <= limits)")
    sizes = list(sizes)
    if not sizes:
        raise KubernetesConfigError("no lab sizes: the quota policy must name at least one size")
    names = [s.name for s in sizes]
    if default is not None and default not in names:
        raise KubernetesConfigError(f"default size {default!r} is not one of {names}")
    chosen = default or names[0]
    profiles = []
    for size in sizes:
        description = size.description or f"{size.cpu:g} CPU, {size.memory_gib:g} GiB"
        profiles.append(
            {
                "display_name": size.name.replace("-", " ").replace("_", " ").title(),
                "slug": size.name,
                "description": description,
                "default": size.name == chosen,
                "kubespawner_override": {
                    "cpu_limit": float(size.cpu),
                    "cpu_guarantee": round(size.cpu / cpu_overcommit, 3),
                    "mem_limit": _gib(size.memory_gib),
                    "mem_guarantee": _gib(size.memory_gib / memory_overcommit),
                },
            }
        )
    return profiles


@dataclass(frozen=True)
class KubernetesSettings:
    """How the labs of one Skydeck deployment on Kubernetes find the platform.

    ``services_url``: where the labs reach ``/services/<name>/`` (through the chart's
    ``proxy-public`` service by default); ``hub_url``: the hub's public URL (shown to
    users); ``release``: the release's location in the lab, a path where
    ``release_claim`` is mounted, or a URL (``s3://bucket/release``) with no claim.
    """

    hub_url: str
    services_url: str = "http://proxy-public/services"
    services: Sequence[str] = ("tap", "cutouts", "dask-gateway", "quota")
    release: str = RELEASE_MOUNT
    release_claim: str = "skydeck-release"
    #: Size of each user's home claim; None: the storage quota's default hard limit.
    home_gib: float | None = None
    extra_environment: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        if "://" in self.release and self.release_claim:
            raise KubernetesConfigError(
                f"release {self.release!r} is a URL, so no release claim is mounted: "
                "set release_claim='' (or release to the mount path)"
            )
        if "://" not in self.release and not self.release.startswith("/"):
            raise KubernetesConfigError(
                f"release must be an absolute path in the lab or a URL, not {self.release!r}"
            )
        unknown = sorted(set(self.services) - set(SERVICE_VARIABLES))
        if unknown:
            raise KubernetesConfigError(
                f"unknown services {unknown}: Skydeck's services are {sorted(SERVICE_VARIABLES)}"
            )


def discovery_environment(settings: KubernetesSettings) -> dict[str, str]:
    """The discovery contract (kernels/README.md) with in-cluster service URLs."""
    env = {
        "SKYDECK_RELEASE": settings.release,
        "SKYDECK_HUB_URL": settings.hub_url.rstrip("/") + "/hub/",
    }
    base = settings.services_url.rstrip("/")
    for name in settings.services:
        env[SERVICE_VARIABLES[name]] = f"{base}/{name}/"
    env.update(settings.extra_environment)
    return env


#: Which sizes one user is offered: ``async (spawner) -> sizes`` (the quota's answer).
SizesForUser = Callable[[Any], Awaitable[Iterable[SizeLike]]]


def user_profile_list(sizes_for_user: SizesForUser, **options: Any) -> Callable[[Any], Any]:
    """A KubeSpawner ``profile_list`` callable: each user sees only the sizes offered to them.

    KubeSpawner calls it for the spawn page and again when it checks the chosen
    profile, so a size outside the user's quota can be neither shown nor chosen.
    """

    async def _profiles(spawner: Any) -> list[dict[str, Any]]:
        sizes = list(await sizes_for_user(spawner))
        if not sizes:
            raise KubernetesConfigError(
                f"no lab size is offered to {spawner.user.name}: ask the platform's "
                "administrators for a lab quota"
            )
        return profile_list(sizes, **options)

    return _profiles


async def _profile_form(spawner: Any) -> str:
    """KubeSpawner's profile page for a callable ``profile_list``."""
    form: str = await spawner._render_options_form_dynamically(spawner)
    return form


def _profile_from_form(form_data: dict[str, list[str]], spawner: Any) -> dict[str, Any]:
    """KubeSpawner's reading of its profile page (``profile`` and profile options)."""
    options: dict[str, Any] = spawner._options_from_form(form_data)
    return options


def configure_kubernetes(
    c: Any,
    settings: KubernetesSettings,
    sizes: Iterable[SizeLike] | None = None,
    default_size: str | None = None,
    sizes_for_user: SizesForUser | None = None,
) -> None:
    """Layer Skydeck on the chart's KubeSpawner configuration ``c``.

    Profiles come from ``sizes`` (default: the quota policy's default sizes), or,
    with ``sizes_for_user``, from the sizes each user's quota offers (the seam
    with ``skydeck.hub.quota``).  Volumes and the environment are *added* to
    what the chart set (user storage, extraEnv).
    """
    settings.check()
    if sizes is None:
        from skydeck.hub.quota.model import DEFAULT_SIZES

        sizes = DEFAULT_SIZES
    # KubeSpawner with the lab environment every Skydeck spawner gives (c.KubeSpawner
    # settings apply to it); JupyterHub's own CPU_LIMIT="2.0" breaks Butler reads.
    c.JupyterHub.spawner_class = "skydeck.hub.kube_spawner.SkydeckKubeSpawner"
    spawner = c.KubeSpawner
    # Checked here even with sizes_for_user, so a wrong default fails at hub start.
    spawner.profile_list = profile_list(sizes, default=default_size)
    if sizes_for_user is not None:
        spawner.profile_list = user_profile_list(sizes_for_user)
        # The quota's own size menu (installed on c.Spawner for local labs) gives way to
        # KubeSpawner's profile page, so the chosen profile is what KubeSpawner applies.
        spawner.options_form = _profile_form
        spawner.options_from_form = _profile_from_form
    spawner.cmd = ["jupyterhub-singleuser"]
    spawner.args = list(LAB_ARGS)
    spawner.default_url = "/lab"
    environment = dict(spawner.environment) if "environment" in spawner else {}
    environment.update(discovery_environment(settings))
    spawner.environment = environment
    home_gib = settings.home_gib
    if home_gib is None:
        from skydeck.hub.quota.model import StorageQuota

        home_gib = StorageQuota().hard_gib
    if home_gib is not None:  # an unlimited quota leaves the chart's capacity
        spawner.storage_capacity = _gib(home_gib)
    if settings.release_claim:
        volume = {
            "name": "skydeck-release",
            "persistentVolumeClaim": {"claimName": settings.release_claim, "readOnly": True},
        }
        mount = {"name": "skydeck-release", "mountPath": settings.release, "readOnly": True}
        spawner.volumes = _added(spawner, "volumes", volume)
        spawner.volume_mounts = _added(spawner, "volume_mounts", mount)


def _added(spawner: Any, trait: str, item: dict[str, Any]) -> list[Any] | dict[str, Any]:
    """``trait`` of the config section with ``item`` added, as a list or as a dict.

    KubeSpawner takes volumes and mounts either as a list or as a dict keyed by name
    (the form the Zero to JupyterHub chart 4 uses, so that values merge).
    """
    current = spawner.get(trait, [])
    if isinstance(current, dict):
        return {**current, f"skydeck-{item['name']}": item}
    return [*current, item]


def service_command(name: str, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run platform service ``name`` in its own pod.

    The service comes from the same ``skydeck.services`` entry point as on one
    machine; the pod's environment gives what the hub would: ``JUPYTERHUB_API_URL``,
    ``JUPYTERHUB_API_TOKEN`` (the chart's generated token for the service),
    ``SKYDECK_PUBLIC_URL``, ``SKYDECK_RELEASE`` and ``SKYDECK_SERVICE_PORT``.
    """
    from pathlib import Path

    from skydeck.hub.services import (
        ServiceContext,
        discover_service_factories,
        release_location,
    )

    factories = discover_service_factories()
    if name not in factories:
        raise KubernetesConfigError(
            f"no Skydeck service {name!r} is installed in this image "
            f"(installed: {sorted(factories)}); build the image from the full lock file"
        )
    missing = [v for v in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN") if not environ.get(v)]
    if missing:
        raise KubernetesConfigError(
            f"set {', '.join(missing)} in the {name} pod (see hub/deploy/kubernetes/)"
        )
    port = int(environ.get("SKYDECK_SERVICE_PORT", "8080"))
    state = Path(environ.get("SKYDECK_STATE_DIR", f"/srv/skydeck/{name}"))
    state.mkdir(parents=True, exist_ok=True)
    context = ServiceContext(
        name=name,
        port=port,
        data_dir=state.parent,
        state_dir=state,
        release_dir=release_location(environ.get("SKYDECK_RELEASE") or RELEASE_MOUNT),
        public_url=environ.get("SKYDECK_PUBLIC_URL", "http://proxy-public").rstrip("/"),
        hub_api_url=environ["JUPYTERHUB_API_URL"],
        host="0.0.0.0",  # reached through the pod's Service
    )
    spec = factories[name](context)
    env = {
        **environ,
        **spec.get("environment", {}),
        # What JupyterHub tells a managed service, with the pod listening on all interfaces.
        "JUPYTERHUB_SERVICE_NAME": name,
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": f"/services/{name}/",
    }
    return list(spec["command"]), env


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m skydeck.hub.kubernetes serve <name>``: run one service in its pod."""
    import os
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "serve":
        sys.exit("usage: python -m skydeck.hub.kubernetes serve <service-name>")
    try:
        command, env = service_command(args[1], dict(os.environ))
    except KubernetesConfigError as error:
        sys.exit(f"skydeck: error: {error}")
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
