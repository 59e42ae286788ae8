"""The cluster factory of the Dask sidebar (dask-labextension) in a Skydeck lab.

``share/dask/skydeck-lab.yaml`` (installed as ``<prefix>/etc/dask/``) points
``labextension.factory`` here, so the sidebar's NEW button makes the same kind of
cluster as ``get_dask_client``: a dask-gateway cluster when the lab has a gateway,
else a small LocalCluster whose dashboard goes through jupyter-server-proxy.
"""

from __future__ import annotations

from typing import Any

from skydeck.lab._dask import _gateway, _setting, load_config
from skydeck.lab._discovery import Discovery


def SkydeckCluster(*args: Any, asynchronous: bool = True, **kwargs: Any) -> Any:
    """An awaitable cluster for dask-labextension (named like the classes it expects)."""
    if args:
        raise TypeError("SkydeckCluster takes keyword arguments only (labextension.factory.kwargs)")
    load_config()
    found = Discovery.from_env()
    if found.gateway_url and _setting("use-gateway"):
        from dask_gateway import GatewayCluster

        gateway = _gateway(found)
        return GatewayCluster(
            address=gateway.address,
            proxy_address=gateway.proxy_address,
            public_address=gateway._public_address,
            auth=gateway.auth,
            asynchronous=asynchronous,
            shutdown_on_close=True,
            **kwargs,
        )
    import dask.config
    from distributed import LocalCluster

    if found.service_prefix:
        dask.config.set({"distributed.dashboard.link": _setting("dashboard-link")})
    kwargs.setdefault("n_workers", 0)
    kwargs.setdefault("threads_per_worker", int(_setting("local.threads-per-worker")))
    kwargs.setdefault("dashboard_address", "127.0.0.1:0")
    return LocalCluster(asynchronous=asynchronous, **kwargs)
