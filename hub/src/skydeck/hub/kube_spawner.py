"""KubeSpawner with Skydeck's lab environment (`skydeck.hub.spawner.LabResources`).

`skydeck.hub.kubernetes.configure_kubernetes` makes it the hub's spawner class;
every ``c.KubeSpawner`` setting (the chart's and ``hub.config.KubeSpawner``)
applies to it unchanged.  A module of its own: importing KubeSpawner takes over a
second, which the service pods (``python -m skydeck.hub.kubernetes``) need not pay.
"""

from __future__ import annotations

from kubespawner import KubeSpawner

from skydeck.hub.spawner import LabResources


class SkydeckKubeSpawner(LabResources, KubeSpawner):
    """KubeSpawner whose labs get ``CPU_LIMIT`` & co. as integer strings."""
