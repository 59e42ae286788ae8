"""``get_dask_client``: a Dask cluster of your own, through dask-gateway when there is one.

Settings come from dask.config (``skydeck.dask.*``), with the defaults shipped in
``skydeck.yaml`` next to this module.
"""

from __future__ import annotations

import atexit
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skydeck.lab._discovery import Discovery
from skydeck.lab._errors import LimitReachedError, LocalClusterWarning, ServiceUnavailableError

if TYPE_CHECKING:
    from distributed import Client

CONFIG_FILE = Path(__file__).with_name("skydeck.yaml")

#: Clusters this kernel started, stopped when it exits.
_clusters: list[Any] = []
_config_loaded = False


def load_config() -> None:
    """Merge the shipped defaults (``skydeck.yaml``) into dask.config, once."""
    global _config_loaded
    if _config_loaded:
        return
    import dask.config
    import yaml

    dask.config.update_defaults(yaml.safe_load(CONFIG_FILE.read_text()))
    _config_loaded = True


def _setting(key: str) -> Any:
    import dask.config

    return dask.config.get(f"skydeck.dask.{key}")


def get_dask_client(
    n_workers: int | None = None,
    *,
    worker_cores: int | None = None,
    worker_memory_gib: float | None = None,
    timeout: float | None = None,
) -> Client:
    """A ``distributed.Client`` on a Dask cluster of your own, with ``n_workers`` workers.

    In a Skydeck lab the cluster runs on the platform through dask-gateway, sized
    within your limits, and stops when this kernel exits (or after sitting idle).
    Without a gateway it is a ``LocalCluster`` inside the lab, sized to the lab.
    The dashboard link is ``client.dashboard_link``.

    >>> from skydeck.lab import get_dask_client, open_catalog
    >>> client = get_dask_client(n_workers=2)  # doctest: +SKIP
    >>> open_catalog("Object").crossmatch(open_catalog("gaia_dr3"), radius_arcsec=1).compute()
    ... # doctest: +SKIP
    """
    load_config()
    n = int(_setting("n-workers") if n_workers is None else n_workers)
    if n < 1:
        raise ValueError(f"n_workers must be at least 1, not {n}")
    wait = float(_setting("wait-timeout") if timeout is None else timeout)
    found = Discovery.from_env()
    if found.gateway_url and _setting("use-gateway"):
        cores = worker_cores if worker_cores is not None else _setting("worker-cores")
        memory = worker_memory_gib if worker_memory_gib is not None else _setting("worker-memory")
        cluster = _gateway_cluster(found, n, cores, memory)
        client = cluster.get_client(set_as_default=True)
    else:
        cluster = _local_cluster(found, n)
        from distributed import Client

        client = Client(cluster, set_as_default=True)
    _clusters.append(cluster)
    try:
        client.wait_for_workers(n, timeout=wait)
    except TimeoutError:
        started = len(client.scheduler_info().get("workers", {}))
        client.close()
        _stop(cluster)
        raise ServiceUnavailableError(
            f"Only {started} of {n} Dask workers started within {wait:g} s, so the cluster was "
            "stopped. The platform may be busy: try again with fewer workers or a longer "
            "timeout=; if it keeps happening, tell your administrator."
        ) from None
    return client


def _gateway_cluster(
    found: Discovery, n: int, worker_cores: int | None, worker_memory_gib: float | None
) -> Any:
    from dask_gateway.client import GatewayWarning

    gateway = _gateway(found)
    address = gateway.address
    try:
        options = gateway.cluster_options()
    except Exception as error:
        raise ServiceUnavailableError(
            f"dask-gateway at {address} does not answer ({error}). It may be restarting: try "
            "again in a minute, or set dask.config 'skydeck.dask.use-gateway' to False to run "
            "Dask inside your lab."
        ) from None
    try:
        if worker_cores is not None:
            options.worker_cores = int(worker_cores)
        if worker_memory_gib is not None:
            options.worker_memory = float(worker_memory_gib)
    except (TypeError, ValueError) as error:
        raise LimitReachedError(
            f"{error}: that worker size is outside what you may ask for. Ask for smaller "
            "workers, or ask your administrator for a larger quota."
        ) from None
    try:
        cluster = gateway.new_cluster(options, shutdown_on_close=_setting("shutdown-on-close"))
    except ValueError as error:
        raise LimitReachedError(str(error)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GatewayWarning)
        cluster.scale(n)
    for warning in caught:
        if issubclass(warning.category, GatewayWarning):
            cluster.shutdown()
            raise LimitReachedError(
                f"{warning.message} The cluster was stopped: ask for fewer workers "
                "(get_dask_client(n_workers=...)), or ask your administrator for more."
            )
    return cluster


def _local_cluster(found: Discovery, n: int) -> Any:
    import dask.config
    from distributed import LocalCluster

    cores = found.cpu_limit if found.cpu_limit else float(os.cpu_count() or 1)
    threads = int(_setting("local.threads-per-worker"))
    most = max(1, math.floor(cores / threads))
    if n > most:
        raise LimitReachedError(
            f"This lab has {cores:g} CPU core(s), enough for {most} local worker(s) of "
            f"{threads} thread(s), not {n}. Ask for fewer workers, or use a platform with "
            "dask-gateway for bigger clusters."
        )
    memory: int | str = "auto"
    if found.mem_limit:
        memory = int(found.mem_limit * float(_setting("local.memory-fraction")) / n)
    reason = (
        "dask.config 'skydeck.dask.use-gateway' is False"
        if found.gateway_url
        else "this lab has no dask-gateway (SKYDECK_GATEWAY_URL is not set)"
    )
    warnings.warn(
        LocalClusterWarning(
            f"Running Dask inside your lab, because {reason}: a LocalCluster of {n} worker(s) "
            f"x {threads} thread(s) sized to the lab, gone when this kernel stops."
        ),
        stacklevel=3,
    )
    if found.service_prefix:
        dask.config.set({"distributed.dashboard.link": _setting("dashboard-link")})
    return LocalCluster(
        n_workers=n,
        threads_per_worker=threads,
        memory_limit=memory,
        dashboard_address="127.0.0.1:0",
        processes=True,
    )


def _stop(cluster: Any) -> None:
    try:
        if hasattr(cluster, "shutdown"):
            cluster.shutdown()
        else:
            cluster.close()
    except Exception:  # best effort at exit: the gateway reaps what is left
        pass
    if cluster in _clusters:
        _clusters.remove(cluster)


def _gateway(found: Discovery) -> Any:
    """A dask-gateway client for this lab's user (closed when dropped: closing it twice
    fails in dask-gateway 2026.3, so nothing here closes it explicitly)."""
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    assert found.gateway_url
    if not found.api_token:
        raise ServiceUnavailableError(
            "This lab has no hub token (JUPYTERHUB_API_TOKEN), so dask-gateway cannot tell "
            "who you are. Start your lab from the hub."
        )
    address = found.gateway_url.rstrip("/")
    return Gateway(
        address=address,
        proxy_address=found.gateway_proxy_address,
        public_address=address,
        auth=JupyterHubAuth(api_token=found.api_token),
    )


def shutdown_dask_clusters(everywhere: bool = False) -> int:
    """Stop the Dask clusters this kernel started; returns how many were stopped.

    With ``everywhere=True`` also your gateway clusters started elsewhere (other
    kernels, notebooks that were closed without stopping theirs).

    >>> from skydeck.lab import shutdown_dask_clusters
    >>> shutdown_dask_clusters(everywhere=True)  # doctest: +SKIP
    1
    """
    count = len(_clusters)
    for cluster in list(_clusters):
        _stop(cluster)
    found = Discovery.from_env()
    if everywhere and found.gateway_url:
        gateway = _gateway(found)
        for report in gateway.list_clusters():
            gateway.stop_cluster(report.name)
            count += 1
    return count


atexit.register(shutdown_dask_clusters)
