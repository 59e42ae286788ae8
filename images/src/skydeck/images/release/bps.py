"""Run the release pipeline through BPS with the Parsl plugin on this machine.

`LoopbackLocal` is a ctrl_bps_parsl site like its ``Local`` one, but every Parsl
socket (interchange, workers, driver) is bound to 127.0.0.1. Quanta are clustered
one job per task label (``dimension_clustering`` with no dimensions), so the
workflow starts a handful of ``pipetask run-qbb`` processes instead of one per
quantum.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
from lsst.ctrl.bps.parsl.site import SiteConfig

from skydeck.images.release.butler_repo import INPUT_RUN, SKYMAP_RUN
from skydeck.images.release.pipeline import pipeline_path

#: One cluster (job) per task: the dimension every quantum of the task shares.
_CLUSTER_DIMENSION = {
    "measureVisit": "instrument",
    "makeCoadd": "tract",
    "detectCoadd": "tract",
    "forcedPhotVisit": "tract",
    "writeObjectTable": "tract",
    "matchTruth": "tract",
}


class LoopbackLocal(SiteConfig):
    """Local execution with all Parsl communication on the loopback interface."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["resource_list"] = ["priority"]
        super().__init__(*args, **kwargs)

    def get_executors(self) -> list[Any]:
        from parsl.executors import HighThroughputExecutor
        from parsl.providers import LocalProvider

        cores = get_bps_config_value(self.site, "cores", int, required=True)
        return [
            HighThroughputExecutor(
                "local",
                provider=LocalProvider(),
                max_workers_per_node=cores,
                address="127.0.0.1",
                loopback_address="127.0.0.1",
            )
        ]

    def select_executor(self, job: Any) -> str:
        return "local"

    def get_address(self) -> str:
        return "127.0.0.1"


def bps_config(repo: str, output: str, submit_dir: Path, cores: int = 2) -> dict[str, Any]:
    """The BPS submission configuration for the release pipeline."""
    clusters = {
        label: {"pipetasks": label, "dimensions": dim} for label, dim in _CLUSTER_DIMENSION.items()
    }
    return {
        "pipelineYaml": pipeline_path(),
        "wmsServiceClass": "lsst.ctrl.bps.parsl.ParslService",
        "computeSite": "loopback",
        "site": {"loopback": {"class": f"{__name__}.LoopbackLocal", "cores": cores}},
        "operator": "skydeck",
        "project": "skydeck",
        "campaign": "release",
        "submitPath": str(submit_dir),
        "payload": {
            "payloadName": "skydeck-drp",
            "butlerConfig": repo,
            "inCollection": f"{INPUT_RUN},{SKYMAP_RUN}",
            "dataQuery": "",
            "output": output,
            "outputRun": f"{output}/run",
        },
        "clusterAlgorithm": "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering",
        "cluster": clusters,
        "defaultPreCmdOpts": "--log-level=WARNING",
        "pipetaskOutput": "-o {output}",
        "pipetaskDataQuery": "",
    }


def submit(
    repo: str, output: str, work_dir: Path, cores: int = 2
) -> subprocess.CompletedProcess[str]:
    """Run ``bps submit`` (Parsl, loopback site) and wait for the workflow to finish."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "bps.yaml"
    config_path.write_text(yaml.safe_dump(bps_config(repo, output, work_dir / "submit", cores)))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        [str(Path(bindir) / "bps"), "submit", str(config_path)],
        cwd=work_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
