"""Every tutorial runs top to bottom in a real Skydeck kernel against the tiny release.

The kernel gets the discovery environment of a real lab spawned by the real hub
(`support.notebooks.notebook_environment`), so TAP, cutouts and dask-gateway are
the hub's managed services.  Each notebook asserts its own key results; a failed
assertion fails the test with the cell's traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.notebooks import execute_notebook, list_notebooks

pytestmark = pytest.mark.slow

NOTEBOOKS = list_notebooks()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_tutorial_runs(
    notebook: Path, notebook_environment: dict[str, str], tmp_path: Path
) -> None:
    result = execute_notebook(notebook, tmp_path / "home", notebook_environment)
    code_cells = [cell for cell in result.notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.execution_count for cell in code_cells), (
        f"{notebook.name}: not every code cell ran"
    )
