"""Spawners: where each user's JupyterLab runs.

The embedded default runs every lab as a local process of the user running
``skydeck up``, each in its own home under the data directory.  In production
KubeSpawner takes its place (see ``skydeck.hub.config``); both hand the lab the
same discovery environment (documented in ``kernels/README.md``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

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


class SkydeckLocalSpawner(SimpleLocalProcessSpawner):
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
