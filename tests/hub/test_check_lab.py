"""The lab client of ``skydeck check`` (`skydeck.hub.check._lab`) against a real spawned lab.

The lab is spawned by a real hub (``skydeck up``) and reached through the hub's
proxy with the user's token, exactly as the command reaches a deployment.
"""

from __future__ import annotations

from collections.abc import Iterator

import nbformat
import pytest

from skydeck.hub.check._lab import CellError, KernelError, LabError, LabKernel, run_notebook
from support.hub import RunningHub

pytestmark = pytest.mark.slow

USER = "lab-client"
FOLDER = "check-client"


@pytest.fixture(scope="module")
def lab(hub: RunningHub) -> Iterator[tuple[str, str]]:
    url = hub.start_server(USER)
    yield url, hub.user_token(USER)
    hub.stop_server(USER)


def _put(lab: tuple[str, str], path: str, model: dict[str, object]) -> None:
    LabKernel(*lab).request("PUT", f"/contents/{path}", json=model).raise_for_status()


def _notebook(lab: tuple[str, str], name: str, *sources: str) -> str:
    cells = [nbformat.v4.new_markdown_cell("# A check")]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "skydeck", "display_name": "Skydeck"}
    _put(lab, FOLDER, {"type": "directory"})
    _put(lab, f"{FOLDER}/{name}", {"type": "notebook", "content": nb})
    return f"{FOLDER}/{name}"


def test_execute_returns_what_the_code_printed_and_returned(lab: tuple[str, str]) -> None:
    with LabKernel(*lab).start() as kernel:
        out = kernel.execute("print('hello'); 6 * 7")
    assert out.stdout == "hello\n"
    assert out.result == "42"


def test_execute_raises_with_the_traceback(lab: tuple[str, str]) -> None:
    with LabKernel(*lab).start() as kernel, pytest.raises(KernelError) as raised:
        kernel.execute("def explode():\n    raise ValueError('boom')\nexplode()")
    assert raised.value.last_line == "ValueError: boom"
    assert "explode()" in raised.value.traceback
    assert "\x1b[" not in raised.value.traceback  # readable in a terminal report


def test_notebook_runs_cell_by_cell_in_its_folder(lab: tuple[str, str]) -> None:
    path = _notebook(
        lab,
        "ok.ipynb",
        "import os\nprint(os.getcwd())",
        "open('beside.txt').read()",
    )
    _put(lab, f"{FOLDER}/beside.txt", {"type": "file", "format": "text", "content": "found"})
    run = run_notebook(*lab, path)
    assert run.path == path
    assert [cell.stdout.strip().endswith(FOLDER) for cell in run.cells] == [True, False]
    assert run.cells[1].result == "'found'"


def test_notebook_stops_at_the_first_failing_cell(lab: tuple[str, str]) -> None:
    path = _notebook(lab, "broken.ipynb", "x = 1", "x / 0", "print('never reached')")
    with pytest.raises(CellError) as raised:
        run_notebook(*lab, path)
    error = raised.value
    assert (error.notebook, error.index, error.source) == (path, 3, "x / 0")
    assert error.last_line == "ZeroDivisionError: division by zero"
    assert "cell 3" in str(error) and "x / 0" in str(error)


def test_kernels_are_stopped_afterwards(lab: tuple[str, str]) -> None:
    path = _notebook(lab, "quick.ipynb", "pass")
    run_notebook(*lab, path)
    client = LabKernel(*lab)
    assert client.request("GET", "/sessions").json() == []
    assert client.request("GET", "/kernels").json() == []


def test_a_lab_stopped_under_a_running_cell_is_a_lab_error(hub: RunningHub) -> None:
    user = "lab-client-stopped"
    kernel = LabKernel(hub.start_server(user), hub.user_token(user)).start()
    kernel.execute("import time")
    hub.api("DELETE", f"/users/{user}/server")  # as the idle culler or an admin would
    with pytest.raises(LabError, match="closed the kernel's connection"):
        kernel.execute("time.sleep(120)", timeout=100)
    kernel.shutdown()  # nothing left to stop, and no error about it
    hub.stop_server(user)
