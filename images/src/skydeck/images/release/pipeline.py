"""Run the release pipeline (``pipelines/drp.yaml``) in-process with the Rubin middleware.

The quantum graph comes from `lsst.pipe.base.simple_pipeline_executor.SimplePipelineExecutor`
(the engine behind ``pipetask run``). With one job, its quanta run one after another in
this process. With more, they run on that many worker processes, started once each, each
with its own Butler and `SingleQuantumExecutor` (what ``pipetask run -j N`` does, without
a new process and Butler per quantum); a `GraphWalker` hands out the quanta whose inputs
are ready, so the result is the same as the serial run.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from importlib.resources import files
from multiprocessing.context import BaseContext
from typing import Any

from skydeck.catalog.release import ReleaseLayout
from skydeck.images.release.butler_repo import INPUT_RUN, OUTPUT_CHAIN, OUTPUT_RUN, SKYMAP_RUN


def pipeline_path() -> str:
    """Filesystem path of the pipeline definition YAML."""
    return str(files("skydeck.images.release") / "pipelines" / "drp.yaml")


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_context() -> BaseContext:
    """How the build starts its worker processes: fresh ("spawn"), never forked.

    Forking a process in which other threads run (a test session, a notebook kernel with a
    Dask client, a web server) copies their locks and half-changed objects into the child,
    which may then hang or crash (a segfault in the child's garbage collector was seen). A
    spawned worker inherits only its arguments and the current environment.
    """
    return multiprocessing.get_context("spawn")


def run_pipeline(layout: ReleaseLayout, reporter: Any, jobs: int = 1) -> None:
    """Build the quantum graph and execute every quantum, on ``jobs`` processes.

    Writes to the RUN ``skydeck/drp/run`` chained under ``skydeck/drp`` together with
    the inputs.
    """
    from lsst.daf.butler import Butler, CollectionType
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    repo = str(layout.butler_repo)
    reporter.start("pipeline", 1)
    butler = Butler.from_config(repo, writeable=True)
    # A resumed build reruns this stage from scratch.
    existing = set(butler.registry.queryCollections())
    if OUTPUT_CHAIN in existing:
        butler.registry.removeCollection(OUTPUT_CHAIN)
    if OUTPUT_RUN in existing:
        butler.removeRuns([OUTPUT_RUN], unstore=True)
    butler.close()
    prepared = SimplePipelineExecutor.prep_butler(
        repo, inputs=[INPUT_RUN, SKYMAP_RUN], output=OUTPUT_CHAIN, output_run=OUTPUT_RUN
    )
    executor = SimplePipelineExecutor.from_pipeline_filename(pipeline_path(), butler=prepared)
    total = len(executor.quantum_graph)
    if total == 0:
        raise RuntimeError("the pipeline's quantum graph is empty: the inputs are missing")
    reporter.start("pipeline", total)
    if jobs <= 1:
        for _ in executor.as_generator(register_dataset_types=True):
            reporter.advance("pipeline")
    else:
        _run_on_workers(executor, repo, jobs, reporter)
        prepared = Butler.from_config(repo, collections=[OUTPUT_CHAIN])
    chain = prepared.registry.getCollectionChain(OUTPUT_CHAIN)
    assert (
        OUTPUT_RUN in chain
        and prepared.registry.getCollectionType(OUTPUT_RUN) == CollectionType.RUN
    )
    prepared.close()


#: A worker's own quantum executor (made by its initializer).
_worker_executor: Any = None


def _init_worker(repo: str) -> None:
    from lsst.daf.butler import Butler
    from lsst.pipe.base.single_quantum_executor import SingleQuantumExecutor
    from lsst.pipe.base.taskFactory import TaskFactory

    global _worker_executor
    butler = Butler.from_config(repo, writeable=True, collections=[OUTPUT_CHAIN], run=OUTPUT_RUN)
    _worker_executor = SingleQuantumExecutor(butler=butler, task_factory=TaskFactory())


def _execute_quantum(task_node: Any, quantum: Any, quantum_id: uuid.UUID) -> None:
    _worker_executor.execute(task_node, quantum, quantum_id)


def _run_on_workers(executor: Any, repo: str, jobs: int, reporter: Any) -> None:
    """Run the graph's quanta on ``jobs`` worker processes, in dependency order."""
    from lsst.pipe.base.graph_walker import GraphWalker

    predicted = executor.predicted
    # The one-time steps `SimplePipelineExecutor.as_generator` does before the quanta.
    predicted.pipeline_graph.register_dataset_types(executor.butler)
    predicted.write_configs(executor.butler, compare_existing=False)
    predicted.write_init_outputs(executor.butler, skip_existing=False)
    predicted.write_packages(executor.butler, compare_existing=False)
    predicted.build_execution_quanta()
    xgraph = predicted.quantum_only_xgraph
    nodes = xgraph.nodes
    # The workers open their own database connections.
    executor.butler.close()
    with ProcessPoolExecutor(
        jobs, mp_context=worker_context(), initializer=_init_worker, initargs=(repo,)
    ) as pool:
        walker: GraphWalker[uuid.UUID] = GraphWalker(xgraph.copy())
        running: dict[Future[None], uuid.UUID] = {}
        for ready in walker:
            for quantum_id in ready:
                node = nodes[quantum_id]
                future = pool.submit(
                    _execute_quantum, node["pipeline_node"], node["quantum"], quantum_id
                )
                running[future] = quantum_id
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                quantum_id = running.pop(future)
                future.result()  # a failed quantum stops the build with its error
                walker.finish(quantum_id)
                reporter.advance("pipeline")
