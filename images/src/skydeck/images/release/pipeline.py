"""Run the release pipeline (``pipelines/drp.yaml``) in-process with the Rubin middleware."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from skydeck.catalog.release import ReleaseLayout
from skydeck.images.release.butler_repo import INPUT_RUN, OUTPUT_CHAIN, OUTPUT_RUN, SKYMAP_RUN


def pipeline_path() -> str:
    """Filesystem path of the pipeline definition YAML."""
    return str(files("skydeck.images.release") / "pipelines" / "drp.yaml")


def run_pipeline(layout: ReleaseLayout, reporter: Any) -> None:
    """Build the quantum graph and execute every quantum in this process.

    Uses `lsst.ctrl.mpexec.SimplePipelineExecutor` (the in-process engine behind
    ``pipetask run``), writing to the RUN ``skydeck/drp/run`` chained under
    ``skydeck/drp`` together with the inputs.
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
    graph = executor.quantum_graph
    total = len(graph)
    if total == 0:
        raise RuntimeError("the pipeline's quantum graph is empty: the inputs are missing")
    reporter.start("pipeline", total)
    for _ in executor.as_generator(register_dataset_types=True):
        reporter.advance("pipeline")
    chain = prepared.registry.getCollectionChain(OUTPUT_CHAIN)
    assert (
        OUTPUT_RUN in chain
        and prepared.registry.getCollectionType(OUTPUT_RUN) == CollectionType.RUN
    )
    prepared.close()
