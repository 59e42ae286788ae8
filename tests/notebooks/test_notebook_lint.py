"""Lint of the committed tutorials: clean, self-describing, portable, self-contained.

Fast (no kernel): every rule reads the committed JSON.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from support.notebooks import KERNEL_NAME, NOTEBOOKS_DIR, list_notebooks

NOTEBOOKS = list_notebooks()
IDS = [path.stem for path in NOTEBOOKS]

#: The lab sizes a user can choose (the quota model's default sizes).
LAB_SIZES = ("small", "medium", "large", "xlarge")

#: Header fields every tutorial states in its first cell.
HEADER_FIELDS = ("Learning goals", "Skills", "Run time", "Lab size")

#: A quoted absolute path: "/home/...", '~/...', "C:\\...".  URLs ("https://...") do not match.
ABSOLUTE_PATH = re.compile(r"""(?<![A-Za-z0-9+.-])["'](?:/[A-Za-z_.~]|~/|[A-Za-z]:\\)""")

#: Machine-specific places that must never appear, quoted or not.
MACHINE_PATHS = re.compile(r"/(?:work|home|Users|tmp|root)/[A-Za-z]")

#: Ways to lean on another notebook's state.
OTHER_NOTEBOOK = re.compile(
    r"%store\s+-r|%run\s+\S+\.ipynb|\bimport_ipynb\b|\b\d{2}[a-z]?_\w+\.ipynb\b"
)

NAME = re.compile(r"^\d{2}[a-z]?_[a-z0-9_]+\.ipynb$")


def source(cell: nbformat.NotebookNode) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else str(text)


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOKS) >= 1, f"no tutorials in {NOTEBOOKS_DIR}"


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def notebook(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    path: Path = request.param
    return path, nbformat.read(path, as_version=4)


def test_valid_and_named(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    nbformat.validate(nb)
    assert NAME.match(path.name), f"{path.name}: name tutorials NN[a-z]_snake_case.ipynb"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME, (
        f"{path.name}: set the kernel to '{KERNEL_NAME}' (Skydeck (Python 3.12))"
    )


def test_no_outputs_committed(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs"), f"{path.name} cell {index}: clear outputs before committing"
        assert cell.get("execution_count") is None, (
            f"{path.name} cell {index}: clear execution counts before committing"
        )
    assert "widgets" not in nb.metadata, f"{path.name}: drop saved widget state"


def test_header(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: start with a Markdown header cell"
    text = source(first)
    assert text.startswith("# "), f"{path.name}: the header starts with a '# Title' line"
    for field in HEADER_FIELDS:
        assert f"**{field}" in text, f"{path.name}: the header lacks '**{field}**'"
    run_time = re.search(r"\*\*Run time:?\*\*:?\s*(.+)", text)
    assert run_time and re.search(r"\d+\s*(s|seconds|min|minutes)\b", run_time.group(1)), (
        f"{path.name}: give the run time in seconds or minutes"
    )
    lab_size = re.search(r"\*\*Lab size:?\*\*:?\s*(.+)", text)
    assert lab_size and any(size in lab_size.group(1).lower() for size in LAB_SIZES), (
        f"{path.name}: name the lab size ({', '.join(LAB_SIZES)})"
    )


def test_ends_with_exercises(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    markdown = [source(c) for c in nb.cells if c.cell_type == "markdown"]
    tail = "\n".join(markdown[-2:])
    assert re.search(r"^##\s+Exercises", tail, re.M), f"{path.name}: end with '## Exercises'"


def test_checks_its_own_results(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    code = "\n".join(source(c) for c in nb.cells if c.cell_type == "code")
    assert re.search(r"^\s*assert\b", code, re.M), (
        f"{path.name}: assert the key results in the cells (the tests run them)"
    )


def test_no_absolute_paths(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    for index, cell in enumerate(nb.cells):
        text = source(cell)
        if cell.cell_type == "code":
            match = ABSOLUTE_PATH.search(text)
            near = text[match.start() : match.start() + 40] if match else ""
            assert match is None, (
                f"{path.name} cell {index}: absolute path near {near!r};"
                " find data through skydeck.lab (the discovery environment) instead"
            )
        found = MACHINE_PATHS.search(text)
        assert found is None, f"{path.name} cell {index}: machine-specific path {found.group()!r}"


def test_self_contained(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        found = OTHER_NOTEBOOK.search(source(cell))
        assert found is None, (
            f"{path.name} cell {index}: {found.group()!r} relies on another notebook;"
            " each tutorial must run on its own in a fresh kernel"
        )


def test_readme_lists_every_tutorial() -> None:
    readme = (NOTEBOOKS_DIR / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"notebooks/README.md does not list {path.name}"
