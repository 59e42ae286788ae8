"""One-line image helpers of ``skydeck.lab``; the widgets (bokeh) load on first use."""

from __future__ import annotations

from typing import Any


def show_image(ref_or_image: Any, catalog: Any = None, **options: Any) -> None:
    """Show an image (Butler ref or dataset ID, cutout, lsst.images image, array) with
    zoom, stretch, colormap, RA/Dec hover, and ``catalog`` rows circled on it.

    >>> show_image(get_cutout(62.0, -37.0, size=200, band="r"))  # doctest: +SKIP
    """
    from skydeck.lab.widgets import show_image as show

    show(ref_or_image, catalog=catalog, **options)


def show_cutouts(table: Any, bands: tuple[str, ...] = ("g", "r", "i"), **options: Any) -> None:
    """Show coadd stamps of every row of ``table`` (TAP result, pandas, lsdb) in ``bands``.

    >>> show_cutouts(objects.head(10))  # doctest: +SKIP
    """
    from skydeck.lab.widgets import show_cutouts as show

    show(table, bands, **options)


def show_epochs(ra: float, dec: float, **options: Any) -> None:
    """Show the stamps of a position in every visit, with its light curve.

    >>> show_epochs(62.0, -37.0, band="r")  # doctest: +SKIP
    """
    from skydeck.lab.widgets import show_epochs as show

    show(ra, dec, **options)


def rgb_image(*images: Any, **options: Any) -> Any:
    """A Lupton et al. RGB composite (uint8 array) of three images, or of three bands cut
    at ``ra=``, ``dec=``; ``show=True`` displays it.

    >>> rgb = rgb_image(ra=62.0, dec=-37.0, bands=("i", "r", "g"), show=True)  # doctest: +SKIP
    """
    from skydeck.lab.widgets import rgb_image as make

    return make(*images, **options)


def get_cutout(*args: Any, **options: Any) -> Any:
    """A cutout with WCS, variance and mask, reading only the pixels needed:
    ``get_cutout(ra, dec, size=100, band="r")`` from the best coadd patch, or
    ``get_cutout(ref_or_id, ra, dec, size=100)`` from one image.

    >>> get_cutout(62.0, -37.0, size=64, band="i").image.shape  # doctest: +SKIP
    (64, 64)
    """
    from skydeck.lab.widgets import get_cutout as cut

    return cut(*args, **options)
