"""Tutorials: wall time of each notebook, top to bottom, on the demo release.

Usage::

    uv run python benchmarks/runner.py notebooks

The demo release is built once into ``$SKYDECK_BENCH_DATA`` (default: a reused
folder in the temporary directory; a published release there is reused). A real
hub (``skydeck up``) serves it and spawns a lab of the default size; each notebook
runs in a fresh kernel of that lab, from the ``tutorials/`` its spawner delivered,
exactly as the tests run them on the tiny release (`support.notebooks`).  The
same-run baseline is a one-cell notebook (kernel start and ``import skydeck.lab``)
run the same way, so each ratio says how much longer than an empty notebook a
tutorial takes.  Targets (issue 8): each notebook at most 60 s, the
whole set at most 5 minutes on a 2-core machine.  Nothing is asserted; a notebook
that fails is reported with its error and left out of the figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat
from runner import Report

from skydeck.hub.check._lab import LabKernel, run_notebook
from support.hub import RunningHub, start_hub
from support.lab import DEFAULT_OFFERED_SIZES
from support.notebooks import (
    TutorialLab,
    execute_notebook,
    list_notebooks,
    spawn_tutorial_lab,
)

BASELINE = "empty notebook (kernel start + import skydeck.lab)"


def demo_release(data_dir: Path) -> Path:
    """Build (or reuse) the demo release in ``data_dir``; returns the release root."""
    from skydeck.images.release.build import BuildOptions, build_release

    started = time.perf_counter()
    layout = build_release(BuildOptions(data_dir=data_dir, size="demo", seed=42))
    print(f"  demo release ready in {time.perf_counter() - started:.0f} s", flush=True)
    return Path(str(layout.root))


def empty_notebook(lab: TutorialLab) -> str:
    """A one-cell notebook in the lab (``bench/00_empty.ipynb``); returns its path there."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import skydeck.lab as sl\nsl.where()")]
    )
    nb.metadata["kernelspec"] = {"name": "skydeck", "display_name": "Skydeck (Python 3.12)"}
    client = LabKernel(lab.server_url, lab.token)
    client.request("PUT", "/contents/bench", json={"type": "directory"}).raise_for_status()
    path = "bench/00_empty.ipynb"
    client.request(
        "PUT", f"/contents/{path}", json={"type": "notebook", "content": nb}
    ).raise_for_status()
    return path


def run(report: Report) -> None:
    data_dir = Path(
        os.environ.get("SKYDECK_BENCH_DATA", Path(tempfile.gettempdir()) / "skydeck-bench-demo")
    )
    release = demo_release(data_dir)
    with tempfile.TemporaryDirectory(prefix="skydeck-bench-notebooks-") as tmp:
        scratch = Path(tmp)
        hub: RunningHub = start_hub(scratch / "hub", release=release, timeout=240)
        try:
            lab = spawn_tutorial_lab(hub, DEFAULT_OFFERED_SIZES[0])
            empty = empty_notebook(lab)
            baseline = [run_notebook(lab.server_url, lab.token, empty).seconds for _ in range(3)]
            report.add(BASELINE, "s", baseline)
            total = 0.0
            failed: list[str] = []
            for notebook in list_notebooks():
                try:
                    result = execute_notebook(lab, notebook.name)
                except Exception as error:  # a failing tutorial is a finding, not a crash
                    failed.append(notebook.name)
                    print(f"  {notebook.name} FAILED: {str(error)[-600:]}", flush=True)
                    continue
                total += result.seconds
                report.add(
                    notebook.stem,
                    "s",
                    [result.seconds],
                    baseline=BASELINE,
                    target="<= 60 s",
                )
            report.add(
                "all tutorials, one after the other",
                "s",
                [total],
                target="<= 300 s",
                note=f"failed: {', '.join(failed)}" if failed else "",
            )
            hub.stop_server(lab.user)
        finally:
            hub.stop()
