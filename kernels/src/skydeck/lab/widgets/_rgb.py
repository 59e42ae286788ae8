"""Lupton et al. (2004) RGB composites of three bands."""

from __future__ import annotations

from typing import Any

import numpy as np

from skydeck.lab.widgets._sources import as_image, engine


def _pixels(obj: Any) -> tuple[np.ndarray, Any]:
    data = as_image(obj)
    return np.nan_to_num(np.asarray(data.pixels, float)), data.wcs


def rgb_image(
    red: Any = None,
    green: Any = None,
    blue: Any = None,
    *,
    ra: float | None = None,
    dec: float | None = None,
    bands: tuple[str, str, str] = ("i", "r", "g"),
    size: int = 200,
    stretch: float = 5.0,
    Q: float = 8.0,  # the name Lupton et al. use
    minimum: float = 0.0,
    show: bool = False,
) -> np.ndarray:
    """An (ny, nx, 3) uint8 RGB composite (astropy's ``make_lupton_rgb``).

    Give three images (Cutouts, arrays, refs), or a position and three bands
    (reddest first) to cut them from the coadds::

        rgb = rgb_image(ra=62.0, dec=-37.0, bands=("i", "r", "g"), size=300, show=True)
    """
    from astropy.visualization import make_lupton_rgb

    wcs = None
    if red is None:
        if ra is None or dec is None:
            raise ValueError("Give three images, or ra= and dec= (and bands=) to cut them.")
        red, green, blue = (engine().coadd_cutout(ra, dec, size, b, pad=True) for b in bands)
    if green is None or blue is None:
        raise ValueError("rgb_image needs three images: red, green and blue.")
    (r, wcs), (g, _), (b, _) = _pixels(red), _pixels(green), _pixels(blue)
    if not r.shape == g.shape == b.shape:
        raise ValueError(f"The three images differ in shape: {r.shape}, {g.shape}, {b.shape}.")
    rgb: np.ndarray = make_lupton_rgb(r, g, b, minimum=minimum, stretch=stretch, Q=Q)
    if show:
        from IPython.display import display

        from skydeck.lab.widgets._sources import ensure_bokehjs

        ensure_bokehjs()
        display(rgb_figure(rgb, wcs))
    return rgb


def rgb_figure(rgb: np.ndarray, wcs: Any = None, width: int = 500) -> Any:
    """A bokeh widget showing an RGB array (hover shows RA/Dec when ``wcs`` is given)."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure as _figure

    figure: Any = _figure
    from jupyter_bokeh import BokehModel

    ny, nx = rgb.shape[:2]
    rgba = np.dstack([rgb, np.full((ny, nx), 255, np.uint8)]).copy()
    packed = rgba.view(dtype=np.uint32).reshape(ny, nx)
    columns: dict[str, Any] = {"image": [packed]}
    tips = [("x, y", "$x{0}, $y{0}")]
    if wcs is not None:
        from skydeck.lab.widgets._viewer import sky_grid

        ra, dec = sky_grid(wcs, (ny, nx))
        columns["ra"], columns["dec"] = [ra], [dec]
        tips = [("RA", "@ra{0.000000}"), ("Dec", "@dec{0.000000}"), *tips]
    fig = figure(
        width=width,
        height=int(width * ny / nx),
        match_aspect=True,
        x_range=(0, nx),
        y_range=(0, ny),
        tools="pan,wheel_zoom,reset,save",
    )
    renderer = fig.image_rgba(
        image="image", x=0, y=0, dw=nx, dh=ny, source=ColumnDataSource(columns)
    )
    fig.add_tools(HoverTool(renderers=[renderer], tooltips=tips))
    return BokehModel(fig)
