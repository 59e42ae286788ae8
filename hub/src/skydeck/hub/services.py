"""Managed services contributed by other Skydeck components.

The hub imports none of the other components, only their shared layer
(``skydeck.service``).  Each component that offers a service (TAP, cutouts, ...)
declares an entry point in the ``skydeck.services`` group, the way JupyterHub finds
authenticators.  The entry point is a callable::

    def tap_service(context: ServiceContext) -> dict[str, Any]

returning a JupyterHub service definition (``name``, ``command``, ``environment``,
...).  The hub adds ``url`` (a free port on 127.0.0.1 given in the context),
starts the command as a managed service, and proxies it at ``/services/<name>/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from skydeck.service import BACKEND_ENV as _BACKEND_ENV

SERVICES_GROUP = "skydeck.services"

#: Variables of the hub's environment that the managed services and the labs need when
#: set, and that JupyterHub would not pass on (it starts both with a minimal environment):
#: the object store's endpoint and credentials of a release on S3 and the credentials of a
#: Butler registry in PostgreSQL. One list, in the services' shared layer.
BACKEND_ENV = _BACKEND_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceContext:
    """What the hub tells a service factory."""

    name: str
    port: int
    data_dir: Path
    state_dir: Path
    #: The data release: a local directory, or an object-store URI string such as
    #: ``s3://bucket/release`` (``skydeck up --release``); services read it through
    #: ``skydeck.catalog.release.ReleaseLayout`` either way, so use ``str(release_dir)``.
    release_dir: Path | str
    public_url: str
    hub_api_url: str
    #: Address to listen on: loopback under ``skydeck up``; all interfaces in a
    #: Kubernetes pod (``python -m skydeck.hub.kubernetes serve <name>``).
    host: str = "127.0.0.1"


ServiceFactory = Callable[[ServiceContext], dict[str, Any]]


def is_remote_release(location: str | Path) -> bool:
    """Whether ``location`` names an object-store release (``s3://...``), not a directory."""
    return "://" in str(location)


def release_location(location: str | Path) -> Path | str:
    """A release location as services get it: an absolute `Path`, or a URI kept as a string.

    ``Path("s3://bucket/release")`` would collapse the URI to ``s3:/bucket/release``.
    Symbolic links are kept, not resolved: an operator may re-point a ``release`` link
    at a new release.
    """
    if is_remote_release(location):
        return str(location).rstrip("/")
    return Path(os.path.abspath(Path(location).expanduser()))


def discover_service_factories() -> dict[str, ServiceFactory]:
    """All installed service factories, by entry-point name."""
    factories: dict[str, ServiceFactory] = {}
    for entry in entry_points(group=SERVICES_GROUP):
        try:
            factories[entry.name] = entry.load()
        except Exception:  # a broken plugin must not take the hub down
            log.exception("could not load Skydeck service %r; it is left out", entry.name)
    return factories
