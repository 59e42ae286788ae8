"""Cutouts from the Butler: pixels around a position with WCS, variance and mask.

Only the pixels needed are read (``lsst.images`` partial reads through the Butler's
``bbox`` parameter), never the whole image.

>>> from skydeck.images.cutouts import CutoutEngine
>>> engine = CutoutEngine.from_repo("release/butler")  # doctest: +SKIP
>>> engine.coadd_cutout(62.0, -37.0, 100, band="r").image.shape  # doctest: +SKIP
(100, 100)
"""

from skydeck.images.cutouts._engine import CutoutEngine, Geometry, parse_dataset_id, request_box
from skydeck.images.cutouts._model import (
    Cutout,
    CutoutError,
    DatasetNotFoundError,
    OffImageError,
    PixelBox,
)

__all__ = [
    "Cutout",
    "CutoutEngine",
    "CutoutError",
    "DatasetNotFoundError",
    "Geometry",
    "OffImageError",
    "PixelBox",
    "parse_dataset_id",
    "request_box",
]
