"""matchTruth: match Objects to the truth catalog -> MatchesTruth and TruthSummary per patch.

Each truth object inside the patch's inner region is matched to the nearest
primary Object within ``match_radius`` (chi-square on position using the centroid
errors, as DP0.2's ``match_chisq``); TruthSummary carries the truth values with
DP0.2 names (``id_truth_type``, ``flux_<band>`` in nJy, ``is_pointsource``...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lsst.pex.config import Field
from lsst.pipe.base import PipelineTask, PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from skydeck.images.release._config import BANDS
from skydeck.images.release._geometry import SkyMapSpec


class MatchTruthConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    objects = cT.Input(
        doc="Object table of the patch.",
        name="objectTable",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )
    truth = cT.Input(
        doc="The simulation's truth catalog.",
        name="truth_catalog",
        storageClass="DataFrame",
        dimensions=(),
    )
    sky_map = cT.Input(
        doc="Skymap definition.",
        name="skyMap",
        storageClass="StructuredDataDict",
        dimensions=("skymap",),
    )
    matches = cT.Output(
        doc="Truth-to-Object matches (DP0.2 MatchesTruth columns).",
        name="MatchesTruth",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )
    summary = cT.Output(
        doc="Truth values of the objects in the patch (DP0.2 TruthSummary columns).",
        name="TruthSummary",
        storageClass="DataFrame",
        dimensions=("skymap", "tract", "patch"),
    )


class MatchTruthTaskConfig(PipelineTaskConfig, pipelineConnections=MatchTruthConnections):
    match_radius = Field[float](doc="Match radius, arcsec.", default=0.5)


def truth_type_id(ids: np.ndarray, truth_type: np.ndarray) -> np.ndarray:
    """DP0.2's ``id_truth_type``: the id and the truth type joined by an underscore."""
    return np.array([f"{i}_{t}" for i, t in zip(ids, truth_type, strict=True)], dtype=object)


class MatchTruthTask(PipelineTask):
    """Nearest-neighbour match of truth objects to primary Objects."""

    ConfigClass = MatchTruthTaskConfig
    _DefaultName = "matchTruth"
    config: MatchTruthTaskConfig

    def runQuantum(self, butlerQC: Any, inputRefs: Any, outputRefs: Any) -> None:
        inputs = butlerQC.get(inputRefs)
        patch_id = int(outputRefs.matches.dataId["patch"])
        result = self.run(
            inputs["objects"], inputs["truth"], SkyMapSpec.from_dict(inputs["sky_map"]), patch_id
        )
        butlerQC.put(result, outputRefs)

    def run(
        self, objects: pd.DataFrame, truth: pd.DataFrame, sky_map: SkyMapSpec, patch_id: int
    ) -> Struct:
        from scipy.spatial import cKDTree

        patch = sky_map.patch(patch_id)
        wcs = sky_map.tract_wcs()
        tx, ty = wcs.all_world2pix(truth["ra"].to_numpy(), truth["dec"].to_numpy(), 0)
        x0, y0, x1, y1 = patch.inner
        inner = (tx >= x0 - 0.5) & (tx < x1 - 0.5) & (ty >= y0 - 0.5) & (ty < y1 - 0.5)
        t = truth[inner].reset_index(drop=True)
        txi, tyi = tx[inner], ty[inner]

        summary = pd.DataFrame(
            {
                "id_truth_type": truth_type_id(t["id"].to_numpy(), t["truth_type"].to_numpy()),
                "id": t["id"].astype(str).to_numpy(),
                "ra": t["ra"].to_numpy(),
                "dec": t["dec"].to_numpy(),
                "redshift": t["redshift"].to_numpy(),
                "is_variable": t["is_variable"].astype(bool).to_numpy(),
                "is_pointsource": (t["truth_type"] == 1).to_numpy(),
                "truth_type": t["truth_type"].astype("int64").to_numpy(),
                "mag_r": t["mag_r"].to_numpy(),
                "tract": sky_map.tract,
                "patch": patch_id,
            }
        )
        for band in BANDS:
            summary[f"flux_{band}"] = t[f"flux_{band}"].to_numpy()
        summary["period"] = t["period"].to_numpy()
        summary["amplitude"] = t["amplitude"].to_numpy()

        prim = objects[objects["detect_isPrimary"].astype(bool)] if len(objects) else objects
        match_obj = np.zeros(len(t), dtype=np.int64)
        chisq = np.full(len(t), np.nan)
        count = np.zeros(len(t), dtype=np.int64)
        if len(prim) and len(t):
            ox, oy = prim["x"].to_numpy(), prim["y"].to_numpy()
            tree = cKDTree(np.column_stack([ox, oy]))
            r_pix = self.config.match_radius / sky_map.pixel_scale
            dist, idx = tree.query(np.column_stack([txi, tyi]), distance_upper_bound=r_pix)
            found = np.isfinite(dist)
            neighbours = tree.query_ball_point(np.column_stack([txi, tyi]), r_pix)
            count = np.array([len(n) for n in neighbours], dtype=np.int64)
            sel = idx[found]
            match_obj[found] = prim["objectId"].to_numpy()[sel]
            xe = np.nan_to_num(prim["xErr"].to_numpy()[sel], nan=1.0)
            ye = np.nan_to_num(prim["yErr"].to_numpy()[sel], nan=1.0)
            chisq[found] = (ox[sel] - txi[found]) ** 2 / np.maximum(xe, 1e-3) ** 2 + (
                oy[sel] - tyi[found]
            ) ** 2 / np.maximum(ye, 1e-3) ** 2
        matches = pd.DataFrame(
            {
                "id_truth_type": summary["id_truth_type"].to_numpy(),
                "id": summary["id"].to_numpy(),
                "truth_type": summary["truth_type"].to_numpy(),
                "match_objectId": match_obj,
                "match_candidate": match_obj > 0,
                "match_count": count,
                "match_chisq": chisq,
                "match_n_chisq_finite": np.isfinite(chisq).astype(np.int64) * 2,
                "ra": summary["ra"].to_numpy(),
                "dec": summary["dec"].to_numpy(),
            }
        )
        return Struct(matches=matches, summary=summary)
