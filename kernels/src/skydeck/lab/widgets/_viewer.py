"""ImageViewer: zoom, pan, stretch, colormap, WCS hover, catalog overlay, cutout on click."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from skydeck.lab.widgets._sources import (
    BokehJSMixin,
    ImageData,
    as_frame,
    as_image,
    engine,
    radec_columns,
)
from skydeck.lab.widgets._stretch import COLORMAPS, STRETCHES, palette, stretch

#: Images larger than this (pixels a side) are block-averaged for display.
MAX_DISPLAY = 1600


def _bin(pixels: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return pixels
    ny, nx = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    view = pixels[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    binned: np.ndarray = np.nanmean(view, axis=(1, 3))
    return binned


def sky_grid(wcs: Any, shape: tuple[int, int], factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (degrees) at the centre of every displayed pixel."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    xx, yy = xx * factor + (factor - 1) / 2, yy * factor + (factor - 1) / 2
    ra, dec = wcs.all_pix2world(xx, yy, 0)
    return np.asarray(ra), np.asarray(dec)


class ImageViewer(BokehJSMixin, widgets.VBox):
    """An interactive image: stretch and colormap menus, zoom/pan, hover RA/Dec and value.

    >>> viewer = ImageViewer(cutout, stretch="zscale")  # doctest: +SKIP
    >>> viewer.add_catalog(objects_frame, columns=["objectId", "r_psfFlux"])  # doctest: +SKIP
    >>> viewer  # doctest: +SKIP
    """

    def __init__(
        self,
        image: Any,
        *,
        stretch: str = "asinh",
        colormap: str = "grey",
        title: str = "",
        width: int = 560,
        catalog: Any = None,
        catalog_columns: list[str] | None = None,
        on_pick: Callable[[dict[str, Any]], Any] | None = None,
        cutout_size: int = 64,
    ) -> None:
        from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
        from bokeh.plotting import figure as _figure

        figure: Any = _figure
        from jupyter_bokeh import BokehModel

        if stretch not in STRETCHES:
            raise ValueError(f"Unknown stretch {stretch!r}; choose one of {STRETCHES}.")
        self.data: ImageData = as_image(image, title)
        self.on_pick = on_pick
        self.cutout_size = cutout_size
        self.picked: dict[str, Any] | None = None
        pixels = self.data.pixels
        self._factor = max(1, int(np.ceil(max(pixels.shape) / MAX_DISPLAY)))
        shown = _bin(pixels, self._factor)
        ny, nx = pixels.shape
        columns: dict[str, Any] = {
            "image": [stretch_image(shown, stretch)],
            "value": [shown.astype(np.float64)],
        }
        tooltips = [("x, y", "$x{0.0}, $y{0.0}"), ("value", "@value{0.000}")]
        if self.data.wcs is not None:
            ra, dec = sky_grid(self.data.wcs, shown.shape, self._factor)
            columns["ra"], columns["dec"] = [ra], [dec]
            tooltips = [("RA", "@ra{0.000000}"), ("Dec", "@dec{0.000000}"), *tooltips]
        self._source = ColumnDataSource(columns)
        self._mapper = LinearColorMapper(palette=palette(colormap), low=0.0, high=1.0)
        height = max(200, int(width * ny / max(nx, 1)))
        fig = figure(
            width=width,
            height=height,
            title=self.data.title or None,
            x_range=(-0.5, nx - 0.5),
            y_range=(-0.5, ny - 0.5),
            match_aspect=True,
            tools="pan,wheel_zoom,box_zoom,reset,save",
            active_scroll="wheel_zoom",
            toolbar_location="above",
        )
        self._image_renderer = fig.image(
            image="image",
            x=-0.5,
            y=-0.5,
            dw=nx,
            dh=ny,
            source=self._source,
            color_mapper=self._mapper,
        )
        fig.add_tools(HoverTool(renderers=[self._image_renderer], tooltips=tooltips))
        fig.grid.visible = False
        self.figure = fig
        self.stretch_menu = widgets.Dropdown(
            options=list(STRETCHES), value=stretch, description="Stretch"
        )
        self.colormap_menu = widgets.Dropdown(
            options=list(COLORMAPS), value=colormap, description="Colormap"
        )
        self.stretch_menu.observe(self._restretch, names="value")
        self.colormap_menu.observe(self._recolor, names="value")
        self.cutout_area = widgets.Output()
        if catalog is not None:
            self.add_catalog(catalog, columns=catalog_columns)
        self.model = BokehModel(fig)
        self.add_class("skydeck-image-viewer")
        super().__init__(
            [widgets.HBox([self.stretch_menu, self.colormap_menu]), self.model, self.cutout_area]
        )

    # --- display controls ---------------------------------------------------------

    @property
    def stretch(self) -> str:
        return str(self.stretch_menu.value)

    @stretch.setter
    def stretch(self, value: str) -> None:
        self.stretch_menu.value = value

    @property
    def colormap(self) -> str:
        return str(self.colormap_menu.value)

    @colormap.setter
    def colormap(self, value: str) -> None:
        self.colormap_menu.value = value

    def _restretch(self, change: dict[str, Any]) -> None:
        shown = _bin(self.data.pixels, self._factor)
        self._source.data["image"] = [stretch_image(shown, change["new"])]

    def _recolor(self, change: dict[str, Any]) -> None:
        self._mapper.palette = palette(change["new"])

    # --- catalog overlay ----------------------------------------------------------

    def add_catalog(
        self,
        table: Any,
        *,
        ra: str | None = None,
        dec: str | None = None,
        columns: list[str] | None = None,
        color: str = "lime",
        size: int = 14,
    ) -> int:
        """Circle the rows of ``table`` (TAP result, pandas frame, astropy Table or lsdb
        catalog) that fall on the image; hover shows ``columns``, a click opens a cutout.
        Returns how many rows are on the image."""
        from bokeh.models import ColumnDataSource, HoverTool, TapTool

        if self.data.wcs is None:
            raise ValueError("This image has no WCS, so catalog rows cannot be placed on it.")
        frame = as_frame(table)
        ra, dec = radec_columns(frame, ra, dec)
        x, y = self.data.wcs.all_world2pix(frame[ra].to_numpy(float), frame[dec].to_numpy(float), 0)
        ny, nx = self.data.pixels.shape
        on = (
            np.isfinite(x)
            & np.isfinite(y)
            & (x > -0.5)
            & (x < nx - 0.5)
            & (y > -0.5)
            & (y < ny - 0.5)
        )
        rows = frame[on].reset_index(drop=True)
        shown = columns or [c for c in rows.columns if c not in (ra, dec)][:6]
        data: dict[str, Any] = {
            "x": x[on],
            "y": y[on],
            ra: rows[ra].to_numpy(),
            dec: rows[dec].to_numpy(),
        }
        for column in shown:
            values = rows[column]
            data[column] = (
                values.to_numpy() if values.dtype.kind in "biuf" else values.astype(str).to_numpy()
            )
        source = ColumnDataSource(data)
        glyph = self.figure.scatter(
            "x",
            "y",
            source=source,
            marker="circle",
            size=size,
            fill_alpha=0.0,
            line_color=color,
            line_width=2,
            selection_line_color="red",
            nonselection_line_alpha=0.8,
        )
        tips = [(c, f"@{{{c}}}") for c in shown] + [
            ("RA", f"@{{{ra}}}{{0.000000}}"),
            ("Dec", f"@{{{dec}}}{{0.000000}}"),
        ]
        self.figure.add_tools(
            HoverTool(renderers=[glyph], tooltips=tips), TapTool(renderers=[glyph])
        )
        self._catalog_rows = rows
        self._catalog_radec = (ra, dec)
        source.selected.on_change("indices", self._picked)
        return len(rows)

    def _picked(self, attr: str, old: list[int], new: list[int]) -> None:
        if not new:
            return
        row = self._catalog_rows.iloc[new[0]].to_dict()
        self.picked = row
        if self.on_pick is not None:
            self.on_pick(row)
            return
        ra_name, dec_name = self._catalog_radec
        self.open_cutout(float(row[ra_name]), float(row[dec_name]))

    def open_cutout(self, ra: float, dec: float) -> Any:
        """Show a cutout around (ra, dec) below the image (from the Butler when the image
        came from it, otherwise cropped from the pixels shown)."""
        size = self.cutout_size
        if self.data.dataset is not None:
            cut: Any = engine().cutout(self.data.dataset, ra, dec, size, pad=True)
        else:
            x, y = self.data.wcs.all_world2pix(ra, dec, 0)
            x0, y0 = (
                max(0, round(float(x)) - size // 2),
                max(0, round(float(y)) - size // 2),
            )
            cut = self.data.pixels[y0 : y0 + size, x0 : x0 + size]
            wcs = self.data.wcs.slice((slice(y0, y0 + size), slice(x0, x0 + size)))
            cut = ImageData(cut, wcs, f"({ra:.5f}, {dec:.5f})")
        viewer = ImageViewer(
            cut,
            stretch=self.stretch,
            colormap=self.colormap,
            width=280,
            title=f"cutout at ({ra:.5f}, {dec:.5f})",
        )
        self.cutout_area.clear_output()
        with self.cutout_area:
            from IPython.display import display

            display(viewer)
        return viewer


def stretch_image(pixels: np.ndarray, kind: str) -> np.ndarray:
    return stretch(pixels, kind)
