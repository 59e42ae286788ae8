"""Skydeck on Kubernetes, tested without a cluster.

The Helm values are loaded the way the Zero to JupyterHub chart's
``jupyterhub_config.py`` loads them (the subset Skydeck uses: spawner, image,
dynamic storage, services, roles, the ``hub.config`` pass-through, then every
``hub.extraConfig`` snippet in key order).  KubeSpawner, configured that way,
builds real pod and claim manifests (``get_pod_manifest``, ``get_pvc_manifest``),
which are validated against the Kubernetes schema with kubernetes-validate.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from tornado.web import HTTPError
from traitlets import import_item
from traitlets.config import Config

from skydeck.hub.github import SkydeckGitHubOAuthenticator
from skydeck.hub.kubernetes import (
    KubernetesConfigError,
    KubernetesSettings,
    configure_kubernetes,
    discovery_environment,
    profile_list,
    service_command,
)
from skydeck.hub.quota.model import DEFAULT_SIZES, Size, StorageQuota
from skydeck.hub.spawner import LAB_ARGS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "hub" / "deploy"
K8S_VERSION = "1.33.0"  # a supported Kubernetes release; the schema is bundled offline
GIB = 1024**3


def _values(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "helm" / name).read_text())
    return data


def chart_config(values: dict[str, Any]) -> Config:
    """The hub config the Zero to JupyterHub chart makes of ``values`` (the parts we use)."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    hub, single = values["hub"], values["singleuser"]
    c.JupyterHub.db_url = hub["db"]["url"]
    c.KubeSpawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    c.KubeSpawner.environment = dict(single.get("extraEnv", {}))
    storage = single["storage"]
    assert storage["type"] == "dynamic"
    c.KubeSpawner.pvc_name_template = storage["dynamic"]["pvcNameTemplate"]
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_capacity = storage["capacity"]
    c.KubeSpawner.storage_access_modes = storage["dynamic"]["storageAccessModes"]
    # Volumes and mounts are dicts keyed by name, as the chart (4.x) makes them.
    volume = storage["dynamic"]["volumeNameTemplate"]
    c.KubeSpawner.volumes = {
        volume: {"name": volume, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    }
    c.KubeSpawner.volume_mounts = {
        volume: {"name": volume, "mountPath": storage["homeMountPath"], "subPath": None}
    }
    if single.get("profileList"):
        c.KubeSpawner.profile_list = single["profileList"]
    services = [{"name": name, **spec} for name, spec in hub.get("services", {}).items()]
    if values.get("cull", {}).get("enabled"):
        services.append(
            {
                "name": "jupyterhub-idle-culler",
                "command": ["python3", "-m", "jupyterhub_idle_culler"],
            }
        )
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = [{"name": n, **r} for n, r in hub.get("loadRoles", {}).items()]
    # hub.config: each key is a configurable class, merged over what the chart set.
    for section, traits in hub.get("config", {}).items():
        c[section].update(traits)
    # hub.extraConfig: Python snippets run in key order with ``c`` in scope.
    for _, source in sorted(hub.get("extraConfig", {}).items()):
        exec(compile(source, "hub.extraConfig", "exec"), {"c": c})
    return c


@dataclass
class _User:
    """The attributes of a hub user that KubeSpawner reads when building manifests."""

    name: str
    id: int = 7
    server: Server = field(default_factory=Server)
    groups: list[Any] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.url = f"/user/{self.name}/"

    @property
    def escaped_name(self) -> str:
        return self.name


def _spawner(c: Config, user: str = "vera", **options: Any) -> KubeSpawner:
    """The spawner class the config names (Skydeck's, once ``configure_kubernetes`` ran)."""
    spawner_class = import_item(c.JupyterHub.get("spawner_class", "kubespawner.KubeSpawner"))
    spawner: KubeSpawner = spawner_class(
        _mock=True, config=c, user=_User(user), hub=Hub(), user_options=options
    )
    spawner.api_token = "test-token-not-a-secret"
    return spawner


def _serialize(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = ApiClient().sanitize_for_serialization(obj)
    return data


def _validate(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def _quantity_bytes(value: str | int) -> int:
    text = str(value)
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": GIB, "G": GIB, "M": 1024**2}
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", text)
    assert match, text
    return int(match.group(1)) * units.get(match.group(2), 1)


OFFLINE_KUBECONFIG = """
apiVersion: v1
kind: Config
current-context: offline
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: never-used}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
"""


@pytest.fixture(scope="module", autouse=True)
def offline_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """KubeSpawner loads a client config when created; this one points nowhere (no calls)."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(OFFLINE_KUBECONFIG)
    with pytest.MonkeyPatch.context() as patch:
        # kubernetes_asyncio reads $KUBECONFIG once, at import; its module default is used.
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        yield


@pytest.fixture(scope="module")
def hub_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    """The chart's config of our values, in a hub environment made of ``hub.extraEnv``."""
    values = _values("skydeck-values.yaml")
    quota_db = tmp_path_factory.mktemp("quota") / "quota.sqlite"
    secrets = {"SKYDECK_QUOTA_DB_URL": f"sqlite:///{quota_db}", "PGPASSWORD": "unused"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values["hub"]["extraEnv"].items():
            patch.setenv(name, value if isinstance(value, str) else secrets[name])
        yield chart_config(values)


SIZES = [
    Size(name="small", description="1 CPU, 2 GiB", cpu=1, memory_gib=2),
    Size(name="large", cpu=4, memory_gib=8),
    Size(name="half", cpu=0.5, memory_gib=1.5),
]


def test_profiles_follow_the_quota_sizes() -> None:
    profiles = profile_list(SIZES, default="large")
    assert [p["slug"] for p in profiles] == ["small", "large", "half"]
    assert [p["default"] for p in profiles] == [False, True, False]
    assert profiles[0]["description"] == "1 CPU, 2 GiB"
    assert profiles[1]["description"] == "4 CPU, 8 GiB"
    assert profiles[1]["kubespawner_override"] == {
        "cpu_limit": 4.0,
        "cpu_guarantee": 1.0,
        "mem_limit": "8G",
        "mem_guarantee": "8G",
    }
    assert profiles[2]["kubespawner_override"]["mem_limit"] == "1536M"
    assert profile_list(SIZES)[0]["default"] is True
    with pytest.raises(KubernetesConfigError, match="default size 'huge' is not one of"):
        profile_list(SIZES, default="huge")
    with pytest.raises(KubernetesConfigError, match="at least one size"):
        profile_list([])
    # The quota policy's own sizes are what the chart's values use.
    assert [p["slug"] for p in profile_list(DEFAULT_SIZES)] == [s.name for s in DEFAULT_SIZES]


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(KubernetesConfigError, match="set release_claim=''"):
        configure_kubernetes(Config(), KubernetesSettings(hub_url="https://x", release="s3://b/r"))
    with pytest.raises(KubernetesConfigError, match="unknown services"):
        configure_kubernetes(Config(), KubernetesSettings(hub_url="https://x", services=("tpa",)))
    env = discovery_environment(
        KubernetesSettings(hub_url="https://x/", release="s3://bucket/release", release_claim="")
    )
    assert env["SKYDECK_RELEASE"] == "s3://bucket/release"
    assert env["SKYDECK_HUB_URL"] == "https://x/hub/"


async def test_values_load_through_the_hub_config_pass_through(hub_config: Config) -> None:
    c = hub_config
    assert c.JupyterHub.db_url.startswith("postgresql+psycopg://")
    auth = SkydeckGitHubOAuthenticator(config=c)
    assert auth.allowed_organizations == {"skydeck-example"}
    assert auth.admin_groups == {"skydeck-example:platform"}
    assert auth.manage_groups and auth.populate_teams_in_auth_state
    assert auth.enable_auth_state is True
    assert auth.client_secret_file == "/etc/skydeck/github/client-secret"
    names = {s["name"] for s in c.JupyterHub.services}
    assert {"tap", "cutouts", "dask-gateway", "jupyterhub-idle-culler"} <= names
    spawner = _spawner(c)
    assert spawner.image == "ghcr.io/skydeck/skydeck-lab:0.1.0"
    assert spawner.args == LAB_ARGS
    # Profiles per user, from the quota: a non-empty part of the policy's sizes.
    slugs = [p["slug"] for p in await spawner.profile_list(spawner)]
    assert slugs and set(slugs) <= {s.name for s in DEFAULT_SIZES}


async def test_pod_manifest_has_quota_resources_volumes_and_discovery(hub_config: Config) -> None:
    offered = [p["slug"] for p in await _spawner(hub_config).profile_list(_spawner(hub_config))]
    size = max((s for s in DEFAULT_SIZES if s.name in offered), key=lambda s: s.cpu)
    spawner = _spawner(hub_config, profile=size.name)
    await spawner.load_user_options()
    pod = _serialize(await spawner.get_pod_manifest())
    _validate(pod)

    (lab,) = (ct for ct in pod["spec"]["containers"] if ct["name"] == "notebook")
    assert lab["image"] == "ghcr.io/skydeck/skydeck-lab:0.1.0"
    assert lab["args"] == ["jupyterhub-singleuser", *LAB_ARGS]
    resources = lab["resources"]
    assert float(resources["limits"]["cpu"]) == size.cpu
    assert float(resources["requests"]["cpu"]) == size.cpu / 4  # CPU shared 4:1
    assert _quantity_bytes(resources["limits"]["memory"]) == size.memory_gib * GIB
    assert _quantity_bytes(resources["requests"]["memory"]) == size.memory_gib * GIB

    env = {e["name"]: e.get("value") for e in lab["env"]}
    assert env["SKYDECK_RELEASE"] == "/skydeck/release"
    assert env["SKYDECK_HUB_URL"] == "https://skydeck.example.org/hub/"
    assert env["SKYDECK_TAP_URL"] == "http://proxy-public/services/tap/"
    assert env["SKYDECK_CUTOUT_URL"] == "http://proxy-public/services/cutouts/"
    assert env["SKYDECK_GATEWAY_URL"] == "http://proxy-public/services/dask-gateway/"
    assert env["SKYDECK_QUOTA_URL"] == "http://proxy-public/services/quota/"
    assert env["SKYDECK_GATEWAY_PROXY_ADDRESS"] == "gateway://traefik-skydeck-dask-gateway:80"
    assert env["JUPYTERHUB_USER"] == "vera"
    assert "JUPYTERHUB_API_URL" in env

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "claim-vera"
    assert volumes["skydeck-release"]["persistentVolumeClaim"] == {
        "claimName": "skydeck-release",
        "readOnly": True,
    }
    mounts = {m["name"]: m for m in lab["volumeMounts"]}
    assert mounts["home"]["mountPath"] == "/home/jovyan"
    assert mounts["skydeck-release"]["readOnly"] is True


async def test_each_size_gives_a_valid_pod(hub_config: Config) -> None:
    """Every size of the policy, as offered to a user whose quota allows them all."""
    c = copy.deepcopy(hub_config)
    c.KubeSpawner.profile_list = profile_list(DEFAULT_SIZES)
    for size in DEFAULT_SIZES:
        spawner = _spawner(c, profile=size.name)
        await spawner.load_user_options()
        pod = _serialize(await spawner.get_pod_manifest())
        _validate(pod)
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert float(limits["cpu"]) == size.cpu
        assert _quantity_bytes(limits["memory"]) == size.memory_gib * GIB


async def test_each_size_gives_resource_variables_the_lab_libraries_can_read(
    hub_config: Config,
) -> None:
    """lsst.resources reads CPU_LIMIT with int(): JupyterHub's own "2.0" broke Butler reads."""
    c = copy.deepcopy(hub_config)
    sizes = [*DEFAULT_SIZES, Size(name="half", cpu=0.5, memory_gib=1)]
    c.KubeSpawner.profile_list = profile_list(sizes)
    for size in sizes:
        spawner = _spawner(c, profile=size.name)
        await spawner.load_user_options()
        pod = _serialize(await spawner.get_pod_manifest())
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["CPU_LIMIT"] == str(max(1, math.ceil(size.cpu))), size
        assert int(env["CPU_GUARANTEE"]) >= 1  # a quarter of the limit, rounded up
        assert int(env["MEM_LIMIT"]) == int(env["MEM_GUARANTEE"]) == size.memory_gib * GIB


async def test_each_user_sees_only_the_sizes_of_their_quota() -> None:
    """With ``sizes_for_user`` (the quota's answer) a size outside the quota is refused."""

    async def sizes_for_user(spawner: Any) -> list[Size]:
        return SIZES if spawner.user.name == "ops" else [s for s in SIZES if s.cpu <= 1]

    c = Config()
    configure_kubernetes(
        c, KubernetesSettings(hub_url="https://x"), sizes=SIZES, sizes_for_user=sizes_for_user
    )
    vera = _spawner(c, user="vera", profile="large")
    assert [p["slug"] for p in await vera.profile_list(vera)] == ["small", "half"]
    with pytest.raises(ValueError, match="large"):
        await vera.load_user_options()
    ops = _spawner(c, user="ops", profile="large")
    await ops.load_user_options()
    assert ops.cpu_limit == 4.0

    async def nothing(spawner: Any) -> list[Size]:
        return []

    configure_kubernetes(c, KubernetesSettings(hub_url="https://x"), sizes_for_user=nothing)
    with pytest.raises(KubernetesConfigError, match="no lab size is offered to vera"):
        await _spawner(c, user="vera").load_user_options()


async def test_quota_decides_the_profiles_and_checks_the_spawn(hub_config: Config) -> None:
    """The values' quota hooks and KubeSpawner's profiles agree on one user's sizes."""
    (quota,) = [s for s in hub_config.JupyterHub.services if s["name"] == "quota"]
    assert quota["url"] == "http://skydeck-quota:8080"
    # The profile page is the only size menu: the quota's own menu is switched off.
    assert "options_form" not in hub_config.Spawner
    assert "options_form" in hub_config.KubeSpawner
    hooks = hub_config.Spawner.pre_spawn_hook.__self__  # QuotaHooks from configure_quota
    offered = [s.name for s in await hooks.sizes_for_user(_spawner(hub_config, user="ada"))]
    assert offered  # the default lab quota offers at least one size
    too_big = [s.name for s in DEFAULT_SIZES if s.name not in offered]

    spawner = _spawner(hub_config, user="ada", profile=offered[-1])
    form = await spawner.get_options_form()
    assert all(f'value="{name}"' in form for name in offered)
    assert not any(f'value="{name}"' in form for name in too_big)
    await hub_config.Spawner.pre_spawn_hook(spawner)  # the quota's check passes
    await spawner.load_user_options()
    pod = _serialize(await spawner.get_pod_manifest())
    _validate(pod)
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["SKYDECK_LAB_SIZE"] == offered[-1]

    if too_big:  # a size outside the quota is refused by the quota and by KubeSpawner
        big = _spawner(hub_config, user="ada", profile=too_big[-1])
        with pytest.raises(HTTPError, match="not within your quota"):
            await hub_config.Spawner.pre_spawn_hook(big)
        with pytest.raises(ValueError, match=too_big[-1]):
            await big.load_user_options()
    # The submitted profile page is read the KubeSpawner way (``profile``), as the quota expects.
    chosen = spawner.run_options_from_form({"profile": [offered[0]]})
    assert chosen == {"profile": offered[0]}


def test_release_volume_is_added_to_list_or_dict_volumes() -> None:
    """KubeSpawner takes volumes as a list or (the chart's form) a dict keyed by name."""
    home = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
    for volumes in ([home], {"home": home}):
        c = Config()
        c.KubeSpawner.volumes = volumes
        configure_kubernetes(c, KubernetesSettings(hub_url="https://x"))
        added = c.KubeSpawner.volumes
        items = list(added.values()) if isinstance(added, dict) else added
        assert type(added) is type(volumes)
        assert [v["name"] for v in items] == ["home", "skydeck-release"]
    c = Config()
    configure_kubernetes(
        c, KubernetesSettings(hub_url="https://x", release_claim="", release="s3://b/r")
    )
    assert "volumes" not in c.KubeSpawner


async def test_unknown_profile_is_refused(hub_config: Config) -> None:
    spawner = _spawner(hub_config, profile="enormous")
    with pytest.raises(ValueError, match="enormous"):
        await spawner.load_user_options()


async def test_home_claim_is_sized_by_the_storage_quota(hub_config: Config) -> None:
    pvc = _serialize(_spawner(hub_config, user="ada").get_pvc_manifest())
    _validate(pvc)
    assert pvc["metadata"]["name"] == "claim-ada"
    hard_gib = StorageQuota().hard_gib
    assert hard_gib is not None
    assert _quantity_bytes(pvc["spec"]["resources"]["requests"]["storage"]) == hard_gib * GIB
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


async def test_schema_validation_catches_mistakes(hub_config: Config) -> None:
    """The offline validation really checks: a misspelt field is an error."""
    pvc = _serialize(_spawner(hub_config).get_pvc_manifest())
    pvc["spec"]["accesModes"] = pvc["spec"].pop("accessModes")
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(pvc)


def test_service_manifests_are_valid_and_match_the_hub_services() -> None:
    documents = list(
        yaml.safe_load_all((DEPLOY / "kubernetes" / "skydeck-services.yaml").read_text())
    )
    for document in documents:
        _validate(document)
    hub_services = _values("skydeck-values.yaml")["hub"]["services"]
    k8s_services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    for name in ("tap", "cutouts", "quota"):
        host_port = hub_services[name]["url"].removeprefix("http://")
        host, port = host_port.split(":")
        assert int(port) in [p["port"] for p in k8s_services[host]["spec"]["ports"]]
        deployment = next(
            d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == host
        )
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"][-2:] == ["serve", name]
        token = next(e for e in container["env"] if e["name"] == "JUPYTERHUB_API_TOKEN")
        assert token["valueFrom"]["secretKeyRef"]["key"] == f"hub.services.{name}.apiToken"


def test_dask_gateway_values_agree_with_the_hub() -> None:
    gateway = _values("dask-gateway-values.yaml")["gateway"]
    hub_values = _values("skydeck-values.yaml")
    assert gateway["prefix"] == "/services/dask-gateway"
    assert gateway["auth"]["type"] == "jupyterhub"
    assert gateway["auth"]["jupyterhub"]["apiUrl"] == "http://hub:8081/hub/api"
    lab_image = hub_values["singleuser"]["image"]
    assert gateway["backend"]["image"] == lab_image
    # The chart turns backend requests into KubeClusterConfig traits, then runs extraConfig;
    # the quota's 4 workers must fit in the cluster limits with the scheduler counted.
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig

    backend = gateway["backend"]
    c = Config()
    c.KubeClusterConfig.scheduler_cores = backend["scheduler"]["cores"]["request"]
    c.KubeClusterConfig.scheduler_memory = backend["scheduler"]["memory"]["request"]
    c.KubeClusterConfig.worker_cores = backend["worker"]["cores"]["request"]
    c.KubeClusterConfig.worker_memory = backend["worker"]["memory"]["request"]
    c.KubeClusterConfig.image = f"{lab_image['name']}:{lab_image['tag']}"
    for _, source in sorted(gateway["extraConfig"].items()):
        exec(compile(source, "gateway.extraConfig", "exec"), {"c": c})
    limits = KubeClusterConfig(config=c)
    assert limits.cluster_max_workers == 4
    assert limits.cluster_max_cores - limits.scheduler_cores == 4
    assert limits.cluster_max_memory - limits.scheduler_memory == 16 * GIB


def test_service_command_needs_the_hub_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KubernetesConfigError, match="no Skydeck service 'no-such-service'"):
        service_command("no-such-service", {})
    with pytest.raises(KubernetesConfigError, match="set JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN"):
        service_command("dask-gateway", {})


def test_service_command_runs_the_entry_point_as_the_hub_would(tmp_path: Path) -> None:
    env = {
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_API_TOKEN": "from-the-chart-secret",
        "SKYDECK_STATE_DIR": str(tmp_path / "state" / "dask-gateway"),
        "SKYDECK_RELEASE": "/skydeck/release",
    }
    command, service_env = service_command("dask-gateway", env)
    assert command[1:] == ["-m", "skydeck.hub.gateway"]
    assert service_env["JUPYTERHUB_SERVICE_PREFIX"] == "/services/dask-gateway/"
    assert service_env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8080"
    assert service_env["JUPYTERHUB_API_TOKEN"] == "from-the-chart-secret"
    assert (tmp_path / "state" / "dask-gateway").is_dir()


@pytest.mark.parametrize("name", ["tap", "cutouts"])
def test_service_pods_listen_on_all_interfaces(name: str, tmp_path: Path) -> None:
    """The factories listen on ServiceContext.host, so the pods answer their Services.

    (The quota service listens on the host of JUPYTERHUB_SERVICE_URL, 0.0.0.0 here.)
    """
    env = {
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_API_TOKEN": "from-the-chart-secret",
        "SKYDECK_STATE_DIR": str(tmp_path / name),
    }
    command, service_env = service_command(name, env)
    hosts = [command[i + 1] for i, word in enumerate(command[:-1]) if word == "--host"]
    hosts += [value for key, value in service_env.items() if key.endswith("_HOST")]
    assert hosts and set(hosts) == {"0.0.0.0"}, hosts
