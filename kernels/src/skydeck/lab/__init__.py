"""skydeck.lab: the data clients every Skydeck kernel preloads.

Everything is found through the lab's discovery environment (kernels/README.md):
no URL, password or path to type.  Importing this package is cheap; the heavy
libraries (the Butler, lsdb, Dask, pyvo) are imported on first use.

>>> import skydeck.lab as sl
>>> sl.list_catalogs()  # doctest: +SKIP
>>> objects = sl.open_catalog("Object")  # doctest: +SKIP
>>> client = sl.get_dask_client(n_workers=2)  # doctest: +SKIP
"""

from skydeck.lab._butler import get_butler
from skydeck.lab._catalogs import list_catalogs, open_catalog
from skydeck.lab._dask import get_dask_client, shutdown_dask_clusters
from skydeck.lab._discovery import Discovery, where
from skydeck.lab._errors import (
    CatalogNotFoundError,
    LimitReachedError,
    LocalClusterWarning,
    ReleaseMissingError,
    ServiceUnavailableError,
    SkydeckError,
)
from skydeck.lab._images import (  # images: cutouts and widgets, bokeh loads on first use
    get_cutout,
    rgb_image,
    show_cutouts,
    show_epochs,
    show_image,
)
from skydeck.lab._tap import get_tap_service

__all__ = [
    "CatalogNotFoundError",
    "Discovery",
    "LimitReachedError",
    "LocalClusterWarning",
    "ReleaseMissingError",
    "ServiceUnavailableError",
    "SkydeckError",
    "get_butler",
    "get_cutout",
    "get_dask_client",
    "get_tap_service",
    "list_catalogs",
    "open_catalog",
    "rgb_image",
    "show_cutouts",
    "show_epochs",
    "show_image",
    "shutdown_dask_clusters",
    "where",
]
