"""Turn what users hold (refs, IDs, cutouts, arrays, tables, catalogs) into widget inputs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ImageData:
    """Pixels with an optional WCS (array pixel (0, 0) = ``pixels[0, 0]``)."""

    pixels: np.ndarray
    wcs: Any = None
    title: str = ""
    dataset: Any = None  # the Butler dataset the pixels come from, for cutouts on click
    origin: tuple[int, int] = (0, 0)  # parent-pixel (x, y) of pixels[0, 0]


@functools.cache
def engine() -> Any:
    """The lab's cutout engine on the release's Butler repository (made once)."""
    from skydeck.catalog.release import ReleaseLayout
    from skydeck.images.cutouts import CutoutEngine

    return CutoutEngine.from_repo(str(ReleaseLayout.from_env().butler_repo))


def as_image(obj: Any, title: str = "") -> ImageData:
    """A Cutout, an lsst.images image, a DatasetRef / dataset ID, an HDU or a 2-d array."""
    from skydeck.images.cutouts import Cutout

    if isinstance(obj, ImageData):
        return obj
    if isinstance(obj, Cutout):
        return ImageData(
            obj.image,
            obj.wcs,
            title or f"{obj.dataset_type} {obj.band or ''}".strip(),
            obj.dataset_id,
            (obj.bbox.x0, obj.bbox.y0),
        )
    if hasattr(obj, "sky_projection") and hasattr(obj, "bbox"):  # lsst.images image types
        image = obj.image if hasattr(obj, "variance") else obj
        wcs = obj.sky_projection.as_fits_wcs(obj.bbox, allow_approximation=True)
        return ImageData(
            np.asarray(image.array, float), wcs, title, None, (obj.bbox.x.start, obj.bbox.y.start)
        )
    if hasattr(obj, "header") and hasattr(obj, "data"):  # an astropy HDU
        from astropy.wcs import WCS

        wcs = WCS(obj.header)
        return ImageData(np.asarray(obj.data, float), wcs if wcs.has_celestial else None, title)
    if isinstance(obj, np.ndarray) and obj.ndim == 2:
        return ImageData(np.asarray(obj, float), None, title)
    # A DatasetRef or a dataset ID: read it (whole, it is what the user asked to see).
    eng = engine()
    ref = eng.resolve(obj)
    geometry = eng.geometry(ref)
    cut = eng.cutout_box(ref, geometry.bbox)
    return as_image(cut, title or f"{ref.datasetType.name} {dict(ref.dataId.required)}")


def as_frame(table: Any) -> Any:
    """A pandas DataFrame from a TAP result, an astropy Table, an lsdb catalog or a frame."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_table"):  # pyvo TAPResults / DALResults
        return table.to_table().to_pandas()
    if hasattr(table, "to_pandas"):  # astropy Table
        return table.to_pandas()
    if hasattr(table, "compute"):  # lsdb / dask
        return table.compute()
    return pd.DataFrame(table)


def radec_columns(frame: Any, ra: str | None = None, dec: str | None = None) -> tuple[str, str]:
    """Names of the RA and Dec columns (``coord_ra``/``ra``/``RA``... found for you)."""
    names = {c.lower(): c for c in frame.columns}
    if ra is None:
        ra = next((names[n] for n in ("coord_ra", "ra", "ra_deg", "raj2000") if n in names), None)
    if dec is None:
        found = ("coord_dec", "dec", "dec_deg", "dej2000", "decj2000")
        dec = next((names[n] for n in found if n in names), None)
    if ra is None or dec is None:
        raise ValueError(
            f"No RA/Dec columns among {list(frame.columns)[:20]}; pass ra= and dec= names."
        )
    return ra, dec


def ensure_bokehjs() -> None:
    """Put BokehJS on the page, inline (no CDN): the jupyter_bokeh widget views need
    ``window.Bokeh`` before they render. Sent with every display, because the kernel
    cannot know whether the page was reloaded since; the page skips a second load."""
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(resources=INLINE, hide_banner=True)


class BokehJSMixin:
    """Widgets whose display first makes sure BokehJS is on the page."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        ensure_bokehjs()
        return super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
