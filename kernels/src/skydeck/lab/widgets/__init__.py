"""Widgets to look at images: ImageViewer, CutoutGallery, rgb_image (bokeh in ipywidgets).

BokehJS comes with the ``jupyter_bokeh`` lab extension, so nothing is fetched from a CDN.
"""

from __future__ import annotations

from typing import Any

from skydeck.lab.widgets._gallery import CutoutGallery, aperture_flux
from skydeck.lab.widgets._rgb import rgb_figure, rgb_image
from skydeck.lab.widgets._stretch import COLORMAPS, STRETCHES, stretch
from skydeck.lab.widgets._viewer import ImageViewer


def _display(widget: Any) -> None:
    from IPython.display import display

    display(widget)


def show_image(ref_or_image: Any, catalog: Any = None, **options: Any) -> None:
    """Show an image (a Butler ref or dataset ID, a cutout, an lsst.images image, an array)
    in an `ImageViewer`, with ``catalog`` rows circled on it.

    >>> show_image(butler.query_datasets("deep_coadd", band="r")[0])  # doctest: +SKIP
    """
    _display(ImageViewer(ref_or_image, catalog=catalog, **options))


def show_cutouts(table: Any, bands: tuple[str, ...] = ("g", "r", "i"), **options: Any) -> None:
    """Show coadd stamps of the rows of ``table`` (TAP result, frame, lsdb) in each band.

    >>> rows = service.search("SELECT TOP 5 * FROM dp02_dc2_catalogs.Object")  # doctest: +SKIP
    >>> show_cutouts(rows)  # doctest: +SKIP
    """
    _display(CutoutGallery(table, bands, **options))


def show_epochs(ra: float, dec: float, **options: Any) -> None:
    """Show every visit's stamp of a position and its light curve."""
    _display(CutoutGallery.epochs(ra, dec, **options))


def get_cutout(*args: Any, **kwargs: Any) -> Any:
    """A `Cutout` from the release: ``get_cutout(ra, dec, size=100, band="r")`` cuts the best
    coadd patch; ``get_cutout(dataset, ra, dec, size=100)`` cuts one dataset (ref or ID).

    >>> get_cutout(62.0, -37.0, size=64, band="i").image.shape  # doctest: +SKIP
    (64, 64)
    """
    from skydeck.lab.widgets._sources import engine

    if args and not isinstance(args[0], int | float):
        dataset, ra, dec, *rest = args
        return engine().cutout(dataset, float(ra), float(dec), *rest, **kwargs)
    return engine().coadd_cutout(*args, **kwargs)


__all__ = [
    "COLORMAPS",
    "STRETCHES",
    "CutoutGallery",
    "ImageViewer",
    "aperture_flux",
    "get_cutout",
    "rgb_figure",
    "rgb_image",
    "show_cutouts",
    "show_epochs",
    "show_image",
    "stretch",
]
