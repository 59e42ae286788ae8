"""Managed services contributed by other Skydeck components.

The hub imports none of the other components.  Each component that offers a
service (TAP, cutouts, ...) declares an entry point in the ``skydeck.services``
group, the way JupyterHub finds authenticators.  The entry point is a callable::

    def tap_service(context: ServiceContext) -> dict[str, Any]

returning a JupyterHub service definition (``name``, ``command``, ``environment``,
...).  The hub adds ``url`` (a free port on 127.0.0.1 given in the context),
starts the command as a managed service, and proxies it at ``/services/<name>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

SERVICES_GROUP = "skydeck.services"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceContext:
    """What the hub tells a service factory."""

    name: str
    port: int
    data_dir: Path
    state_dir: Path
    release_dir: Path
    public_url: str
    hub_api_url: str
    #: Address to listen on: loopback under ``skydeck up``; all interfaces in a
    #: Kubernetes pod (``python -m skydeck.hub.kubernetes serve <name>``).
    host: str = "127.0.0.1"


ServiceFactory = Callable[[ServiceContext], dict[str, Any]]


def discover_service_factories() -> dict[str, ServiceFactory]:
    """All installed service factories, by entry-point name."""
    factories: dict[str, ServiceFactory] = {}
    for entry in entry_points(group=SERVICES_GROUP):
        try:
            factories[entry.name] = entry.load()
        except Exception:  # a broken plugin must not take the hub down
            log.exception("could not load Skydeck service %r; it is left out", entry.name)
    return factories
