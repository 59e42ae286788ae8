"""Tutorials: wall time of each notebook, top to bottom, on the demo release.

Usage::

    uv run python benchmarks/runner.py notebooks

The demo release is built once into ``$SKYDECK_BENCH_DATA`` (default: a reused
folder in the temporary directory; a published release there is reused). A real
hub (``skydeck up``) serves it; each notebook runs in a fresh Skydeck kernel with
the discovery environment of a real spawned lab, exactly as the tests run them on
the tiny release.  The same-run baseline is a two-cell notebook (kernel start and
``import skydeck.lab``), so each ratio says how much longer than an empty
notebook a tutorial takes.  Targets (issue 8): each notebook at most 60 s, the
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

from support.hub import RunningHub, start_hub
from support.notebooks import (
    RUNNER_USER,
    execute_notebook,
    lab_discovery_environment,
    list_notebooks,
)

BASELINE = "empty notebook (kernel start + import skydeck.lab)"


def demo_release(data_dir: Path) -> Path:
    """Build (or reuse) the demo release in ``data_dir``; returns the release root."""
    from skydeck.images.release.build import BuildOptions, build_release

    started = time.perf_counter()
    layout = build_release(BuildOptions(data_dir=data_dir, size="demo", seed=42))
    print(f"  demo release ready in {time.perf_counter() - started:.0f} s", flush=True)
    return Path(str(layout.root))


def empty_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import skydeck.lab as sl\nsl.where()")]
    )
    nb.metadata["kernelspec"] = {"name": "skydeck", "display_name": "Skydeck (Python 3.12)"}
    path = folder / "00_empty.ipynb"
    nbformat.write(nb, path)
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
            env = lab_discovery_environment(hub)
            baseline = [
                execute_notebook(empty_notebook(scratch), scratch / f"home-empty-{i}", env).seconds
                for i in range(3)
            ]
            report.add(BASELINE, "s", baseline)
            total = 0.0
            failed: list[str] = []
            for notebook in list_notebooks():
                try:
                    result = execute_notebook(notebook, scratch / f"home-{notebook.stem}", env)
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
            hub.stop_server(RUNNER_USER)
        finally:
            hub.stop()
