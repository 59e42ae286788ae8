"""SkydeckCam: the pure-Python instrument of the simulated survey."""

from __future__ import annotations

from typing import Any

from lsst.pipe.base import Instrument

from skydeck.images.release._config import BANDS, INSTRUMENT

#: Detectors registered for every release size (the small sizes use the first few).
MAX_DETECTORS = 16


class SkydeckCam(Instrument):
    """A simulated camera: a grid of detectors (0.2"/pixel for tiny, 0.3" for demo), ugrizy."""

    policyName = None
    obsDataPackage = None

    @classmethod
    def getName(cls) -> str:
        return INSTRUMENT

    def register(self, registry: Any, *, update: bool = False) -> None:
        """Insert the instrument, its physical filters and detectors (idempotent)."""
        from skydeck.images.release._geometry import physical_filter

        name = self.getName()
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "visit_max": 2**31 - 1,
                    "visit_system": 0,
                    "exposure_max": 2**31 - 1,
                    "detector_max": MAX_DETECTORS,
                    "class_name": f"{type(self).__module__}.{type(self).__qualname__}",
                },
                update=update,
            )
            for band in BANDS:
                registry.syncDimensionData(
                    "physical_filter",
                    {"instrument": name, "name": physical_filter(band), "band": band},
                    update=update,
                )
            for det in range(MAX_DETECTORS):
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": name,
                        "id": det,
                        "full_name": f"S{det // 4}{det % 4}",
                        "name_in_raft": f"S{det // 4}{det % 4}",
                        "raft": "R00",
                        "purpose": "SCIENCE",
                    },
                    update=update,
                )
            registry.syncDimensionData(
                "visit_system", {"instrument": name, "id": 0, "name": "one-to-one"}, update=update
            )

    def getRawFormatter(self, dataId: Any) -> Any:
        """SkydeckCam has no raw data: images are simulated already calibrated."""
        from lsst.images.formatters import GenericFormatter

        return GenericFormatter
