"""PipelineTasks of the Skydeck data-release pipeline (``pipelines/drp.yaml``).

==========================  ========================================  =====================
task (label)                quantum dimensions                         output dataset
==========================  ========================================  =====================
measureVisit                instrument, visit, detector                sourceTable
makeCoadd                   skymap, tract, patch, band                 deepCoadd
detectCoadd                 skymap, tract, patch                       deepCoadd_meas
forcedPhotVisit             instrument, visit, detector, skymap, tract forcedSourceTable
writeObjectTable            skymap, tract, patch                       objectTable
matchTruth                  skymap, tract, patch                       MatchesTruth, TruthSummary
==========================  ========================================  =====================
"""

from skydeck.images.release.tasks._coadd import (
    DetectCoaddTask,
    DetectCoaddTaskConfig,
    MakeCoaddTask,
    MakeCoaddTaskConfig,
)
from skydeck.images.release.tasks._forced import (
    ForcedPhotVisitTask,
    ForcedPhotVisitTaskConfig,
    WriteObjectTableTask,
    WriteObjectTableTaskConfig,
)
from skydeck.images.release.tasks._match import MatchTruthTask, MatchTruthTaskConfig
from skydeck.images.release.tasks._visit import MeasureVisitTask, MeasureVisitTaskConfig

__all__ = [
    "DetectCoaddTask",
    "DetectCoaddTaskConfig",
    "ForcedPhotVisitTask",
    "ForcedPhotVisitTaskConfig",
    "MakeCoaddTask",
    "MakeCoaddTaskConfig",
    "MatchTruthTask",
    "MatchTruthTaskConfig",
    "MeasureVisitTask",
    "MeasureVisitTaskConfig",
    "WriteObjectTableTask",
    "WriteObjectTableTaskConfig",
]
