"""Run the tutorial notebooks the way a user does: in a lab the hub spawned.

The platform is the real hub (`release_hub`, ``skydeck up`` over the tiny
release) with its managed services (TAP, cutouts, dask-gateway).  For each lab
size the default quota offers, one user's lab is spawned with the options the
spawn form sends (``size``, or none when one size is offered); its spawner
delivers the tutorials into the user's home ``tutorials/`` at first start, as for
anyone.  Each notebook then runs there,
cell by cell, in a fresh kernel of that lab (a session of the notebook, so the
kernel's working directory is ``tutorials/``), through the lab's Jupyter server
REST and websocket API behind the hub's proxy, with the user's token: the client
is the product's (`skydeck.hub.check._lab.run_notebook`), as ``skydeck check``
runs them.  The first failing cell fails the test with its traceback.

The benchmark (benchmarks/bench_notebooks.py) reuses `execute_notebook`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skydeck.hub.check._lab import DEFAULT_KERNEL, NotebookRun, run_notebook
from skydeck.hub.tutorials import SUBDIR
from support.hub import RunningHub
from support.lab import DEFAULT_OFFERED_SIZES, LabKernel, sizes_offered, spawn_options

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO / "notebooks"

#: Kernel every tutorial declares and runs in.
KERNEL_NAME = DEFAULT_KERNEL

#: Per-cell timeout: the benchmark target is 60 s per notebook, so 5 min means "broken".
CELL_TIMEOUT = 300

#: The user whose lab runs the tutorials (one per size, so each lab gets a fresh home).
RUNNER_USER = "tutorial-runner"


def list_notebooks() -> list[Path]:
    """The tutorials, in curriculum order."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@dataclass
class TutorialLab:
    """A user's lab spawned through the hub, with the tutorials its spawner delivered."""

    hub: RunningHub
    user: str
    size: str
    server_url: str
    token: str

    def delivered(self) -> list[str]:
        """Names of the notebooks in the user's ``tutorials/`` (contents API)."""
        response = LabKernel(self.server_url, self.token).request("GET", f"/contents/{SUBDIR}")
        response.raise_for_status()
        return sorted(
            item["name"] for item in response.json()["content"] if item["type"] == "notebook"
        )


def spawn_tutorial_lab(hub: RunningHub, size: str, user: str | None = None) -> TutorialLab:
    """Spawn ``user``'s lab of ``size`` with the options the spawn form sends."""
    user = user or f"{RUNNER_USER}-{size}"
    token = hub.user_token(user)
    url = hub.start_server(user, **spawn_options(size, sizes_offered(hub.url, user, token)))
    return TutorialLab(hub, user, size, url, token)


def execute_notebook(lab: TutorialLab, name: str, timeout: float = CELL_TIMEOUT) -> NotebookRun:
    """Run ``tutorials/<name>`` in a fresh kernel of ``lab``, cell by cell.

    Raises `skydeck.hub.check._lab.CellError` (notebook, cell, source and traceback)
    at the first failing cell; the notebooks assert their own results.
    """
    return run_notebook(lab.server_url, lab.token, f"{SUBDIR}/{name}", timeout=timeout)


@pytest.fixture(scope="module", params=DEFAULT_OFFERED_SIZES)
def tutorial_lab(release_hub: RunningHub, request: pytest.FixtureRequest) -> Iterator[TutorialLab]:
    """One lab per size the default quota offers, on the hub serving the tiny release."""
    lab = spawn_tutorial_lab(release_hub, request.param)
    yield lab
    release_hub.stop_server(lab.user)
