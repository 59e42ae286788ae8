"""Run the tutorial notebooks the way a user does: a real Skydeck kernel, a real platform.

The platform is the real hub (`release_hub`, ``skydeck up`` over the tiny
release) with its managed services (TAP, cutouts, dask-gateway).  A real lab is
spawned once for the user ``tutorial-runner``; the discovery environment that
the spawner gave that lab (``SKYDECK_*`` and ``JUPYTERHUB_*``, read from inside
its kernel) is the environment every notebook kernel gets.  Each notebook then
runs top to bottom with nbclient in a fresh "skydeck" kernel whose working
directory is a fresh copy of ``tutorials/`` in a scratch home, so no notebook
can lean on another one's state.

The benchmark (benchmarks/bench_notebooks.py) reuses `execute_notebook`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from support.hub import RunningHub
from support.lab import LabSession

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO / "notebooks"

#: Kernel every tutorial declares and runs in.
KERNEL_NAME = "skydeck"

#: The user whose lab provides the discovery environment.
RUNNER_USER = "tutorial-runner"

#: Per-cell timeout: the benchmark target is 60 s per notebook, so 5 min means "broken".
CELL_TIMEOUT = 300

_READ_ENV = (
    "import json, os\n"
    "print(json.dumps({k: v for k, v in os.environ.items()"
    " if k.startswith(('SKYDECK_', 'JUPYTERHUB_', 'DASK_'))}))"
)


def list_notebooks() -> list[Path]:
    """The tutorials, in curriculum order."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@dataclass
class RunResult:
    """One executed notebook."""

    path: Path
    seconds: float
    notebook: nbformat.NotebookNode


def execute_notebook(
    notebook: Path, home: Path, env: dict[str, str], timeout: int = CELL_TIMEOUT
) -> RunResult:
    """Run ``notebook`` in a fresh Skydeck kernel from ``home/tutorials``.

    The copy is executed where a user would open it; the kernel's environment
    is this process's plus ``env`` (the discovery contract) with ``HOME=home``.
    Raises `nbclient.exceptions.CellExecutionError` with the failing cell's
    traceback if any cell fails (the notebooks assert their own results).
    """
    workdir = home / "tutorials"
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / notebook.name
    shutil.copyfile(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    # IPC sockets, not TCP: no port races with the other servers and kernels on the machine.
    ipc = Path(tempfile.mkdtemp(prefix="kernel-")) / "ipc"
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(ipc))
    client = NotebookClient(
        nb,
        km=manager,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(workdir)}},
        allow_errors=False,
    )
    kernel_env = {**os.environ, **env, "HOME": str(home)}
    # Kernels must not inherit the test process's own service settings or venv leaks.
    kernel_env.pop("PYTEST_CURRENT_TEST", None)
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env, cwd=str(workdir))
    finally:
        shutil.rmtree(ipc.parent, ignore_errors=True)
    seconds = time.perf_counter() - start
    return RunResult(copy, seconds, nb)


def lab_discovery_environment(hub: RunningHub, user: str = RUNNER_USER) -> dict[str, str]:
    """Spawn ``user``'s real lab and return the discovery variables its kernel sees.

    The lab stays running so that its ``JUPYTERHUB_API_TOKEN`` stays valid.
    """
    server_url = hub.start_server(user)
    session = LabSession(server_url, hub.user_token(user)).start()
    try:
        found: dict[str, str] = json.loads(session.execute(_READ_ENV)["stdout"])
    finally:
        session.shutdown()
    if "SKYDECK_RELEASE" not in found:
        raise AssertionError(f"the lab of {user} got no SKYDECK_RELEASE: {sorted(found)}")
    return found


@pytest.fixture(scope="session")
def notebook_environment(release_hub: RunningHub) -> Iterator[dict[str, str]]:
    """The discovery environment of a real lab on the hub serving the tiny release."""
    env = lab_discovery_environment(release_hub)
    yield env
    release_hub.stop_server(RUNNER_USER)
