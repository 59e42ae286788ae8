"""Every tutorial runs top to bottom in a real lab, for every lab size a user is offered.

Each lab is spawned through the real hub (``skydeck up`` over the tiny release)
with the spawn form's options, and runs the tutorials its spawner delivered into
the user's home, in its own kernels (`support.notebooks`): the environment, the
working directory and the services are exactly a user's.  Each notebook asserts
its own key results; the first failing cell fails the test with its traceback.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from support.notebooks import TutorialLab, execute_notebook, list_notebooks

pytestmark = pytest.mark.slow

NOTEBOOKS = list_notebooks()


def test_the_spawner_delivered_every_tutorial(tutorial_lab: TutorialLab) -> None:
    assert tutorial_lab.delivered() == [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_tutorial_runs(notebook: Path, tutorial_lab: TutorialLab) -> None:
    run = execute_notebook(tutorial_lab, notebook.name)
    cells = nbformat.read(notebook, as_version=4).cells
    code_cells = [cell for cell in cells if cell.cell_type == "code"]
    assert len(run.cells) == len(code_cells), f"{notebook.name}: not every code cell ran"
