"""Spawners: where each user's JupyterLab runs.

The embedded default runs every lab as a local process of the user running
``skydeck up``, each in its own home under the data directory.  In production
KubeSpawner takes its place (see ``skydeck.hub.config``); both hand the lab the
same discovery environment (documented in ``kernels/README.md``), and the same
resource variables, as whole numbers (`LabResources`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Dict, Unicode, default

from skydeck.hub.tutorials import deliver_for_spawn
from skydeck.hub.tutorials import lab_environment as tutorials_lab_environment

#: Arguments every lab server gets: JupyterLab by default, only the Skydeck kernel.
LAB_ARGS = [
    "--ServerApp.default_url=/lab",
    "--KernelSpecManager.allowed_kernelspecs=skydeck",
    "--MultiKernelManager.default_kernel_name=skydeck",
]


#: JupyterHub's resource variables (``Spawner.get_env``), in cores and bytes.
CPU_VARIABLES = ("CPU_LIMIT", "CPU_GUARANTEE")
MEMORY_VARIABLES = ("MEM_LIMIT", "MEM_GUARANTEE")


def whole_cores(cores: float) -> int:
    """A CPU amount as the whole number of cores a lab may keep busy: rounded up, at least 1.

    ``2.0`` gives 2; a fractional limit gives the cores it touches (``0.5`` -> 1,
    ``1.5`` -> 2): as many threads as that can use; the container's exact quota is
    enforced by Kubernetes, not by this number.
    """
    return max(1, math.ceil(round(cores, 6)))


def resource_environment(env: Mapping[str, Any]) -> dict[str, str]:
    """JupyterHub's ``CPU_*`` and ``MEM_*`` variables of ``env`` as integer strings.

    JupyterHub writes ``str(spawner.cpu_limit)``, a float (``"2.0"``); libraries in
    the lab read these variables with ``int()`` (lsst.resources sizes its thread
    pools from ``CPU_LIMIT``, so every Butler read failed with ``"2.0"``).  Whole
    numbers parse with both ``int()`` and ``float()``.  Empty values are dropped.
    """
    found: dict[str, str] = {}
    for names, whole in ((CPU_VARIABLES, whole_cores), (MEMORY_VARIABLES, math.floor)):
        for name in names:
            value = env.get(name)
            if value not in (None, ""):
                found[name] = str(whole(float(value)))
    return found


if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _MixinBase
else:
    # A plain mixin at run time: JupyterHub refuses Spawner subclasses without start/stop/poll.
    _MixinBase = object


class LabResources(_MixinBase):
    """Mixin for every spawner Skydeck configures: resource variables as whole numbers.

    ``class MySpawner(LabResources, SomeSpawner)``; it rewrites the variables after
    everything else in ``get_env`` (including an operator's ``environment``), so a
    lab always gets ``CPU_LIMIT``, ``CPU_GUARANTEE``, ``MEM_LIMIT`` and
    ``MEM_GUARANTEE`` as integer strings (`resource_environment`).
    """

    def get_env(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_env()
        for name in (*CPU_VARIABLES, *MEMORY_VARIABLES):
            if env.get(name) == "":
                del env[name]
        env.update(resource_environment(env))
        return env


class SkydeckLocalSpawner(LabResources, SimpleLocalProcessSpawner):
    """Run each user's lab as a local process with a home under the data directory.

    There is no isolation between users beyond the hub's authorization: use it
    for one machine you trust, and KubeSpawner for a shared deployment.
    """

    discovery_env = Dict(
        Unicode(),
        config=True,
        help="""
        Environment variables that tell the lab where the platform's services are
        (the discovery contract in kernels/README.md), e.g. SKYDECK_RELEASE and
        SKYDECK_TAP_URL.  Set by Skydeck's hub configuration.
        """,
    )

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]

    @default("args")
    def _default_args(self) -> list[str]:
        args = list(LAB_ARGS)
        if os.geteuid() == 0:
            # Labs run as the user running `skydeck up`; containers and CI are often root.
            args.append("--ServerApp.allow_root=True")
        return args

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    def get_env(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_env()
        env.update(self.discovery_env)
        # Labs find the venv's tools (python, jupyter) first.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + ":" + env.get("PATH", "/usr/bin:/bin")
        env.update(tutorials_lab_environment(self.tutorials_dir))  # issue 8: same tutorials
        return env

    # --- Tutorials at first login (issue 8; the logic lives in skydeck.hub.tutorials) ---
    tutorials_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        Folder of tutorial notebooks delivered into each user's home (``tutorials/``)
        when their lab starts: copied at first login, and a newer release replaces a
        copy only if the user never edited it (else it is written beside it as
        ``*.new.ipynb``).  Default: $SKYDECK_TUTORIALS_DIR, the installed tutorials or
        the source checkout's notebooks/.  An empty string delivers none.
        """,
    )

    async def start(self) -> Any:
        deliver_for_spawn(self.home_dir, self.tutorials_dir)
        return await super().start()
