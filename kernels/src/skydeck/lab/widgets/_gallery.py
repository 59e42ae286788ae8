"""CutoutGallery: stamps of objects x bands, and a multi-epoch strip with a light curve."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np

from skydeck.lab.widgets._sources import BokehJSMixin, as_frame, engine, radec_columns
from skydeck.lab.widgets._stretch import palette, stretch

BAND_COLORS = {
    "u": "#56b4e9",
    "g": "#009e73",
    "r": "#e69f00",
    "i": "#d55e00",
    "z": "#cc79a7",
    "y": "#555555",
}


def _stamp_figure(pixels: np.ndarray | None, title: str, kind: str, side: int = 130) -> Any:
    from bokeh.models import LinearColorMapper
    from bokeh.plotting import figure as _figure

    figure: Any = _figure

    fig = figure(width=side, height=side, title=title, toolbar_location=None, tools="")
    fig.axis.visible = False
    fig.grid.visible = False
    fig.title.text_font_size = "9pt"
    if pixels is None:
        fig.text([0.5], [0.5], ["no data"], text_align="center", text_baseline="middle")
        return fig
    ny, nx = pixels.shape
    fig.x_range.range_padding = fig.y_range.range_padding = 0
    mapper = LinearColorMapper(palette=palette("grey"), low=0.0, high=1.0, nan_color="#222222")
    fig.image(image=[stretch(pixels, kind)], x=0, y=0, dw=nx, dh=ny, color_mapper=mapper)
    return fig


def aperture_flux(cutout: Any, radius: float = 4.0) -> tuple[float, float]:
    """Background-subtracted flux in a circle at the cutout centre, and its error."""
    ny, nx = cutout.image.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(xx - nx // 2, yy - ny // 2)
    good = np.isfinite(cutout.image)
    inner = (r <= radius) & good
    annulus = (r > 2 * radius) & good
    background = float(np.median(cutout.image[annulus])) if annulus.any() else 0.0
    flux = float(np.sum(cutout.image[inner] - background))
    error = float(np.sqrt(np.nansum(cutout.variance[inner])))
    return flux, error


class CutoutGallery(BokehJSMixin, widgets.VBox):
    """A grid of coadd stamps: one row per object, one column per band.

    >>> CutoutGallery(objects_frame, bands=("g", "r", "i"))  # doctest: +SKIP
    >>> CutoutGallery.epochs(62.0, -37.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        table: Any = None,
        bands: tuple[str, ...] | list[str] = ("g", "r", "i"),
        size: int = 48,
        *,
        ra: str | None = None,
        dec: str | None = None,
        id_column: str | None = None,
        stretch: str = "asinh",
        max_objects: int = 24,
        children: list[Any] | None = None,
    ) -> None:
        if children is not None:  # built by a classmethod
            super().__init__(children)
            return
        from bokeh.layouts import gridplot
        from jupyter_bokeh import BokehModel

        from skydeck.images.cutouts import CutoutError

        frame = as_frame(table).head(max_objects)
        ra, dec = radec_columns(frame, ra, dec)
        id_column = id_column or next(
            (
                c
                for c in frame.columns
                if c.lower() in ("objectid", "id", "source_id", "diaobjectid")
            ),
            None,
        )
        rows = []
        self.cutouts: list[list[Any]] = []
        for index, row in frame.iterrows():
            label = str(row[id_column]) if id_column else str(index)
            figures, cuts = [], []
            for band in bands:
                try:
                    cut = engine().coadd_cutout(
                        float(row[ra]), float(row[dec]), size, band, pad=True
                    )
                    pixels = cut.image
                except CutoutError:
                    cut, pixels = None, None
                cuts.append(cut)
                figures.append(_stamp_figure(pixels, f"{label} {band}", stretch))
            rows.append(figures)
            self.cutouts.append(cuts)
        self.model = BokehModel(gridplot(rows, toolbar_location=None))
        self.add_class("skydeck-cutout-gallery")
        super().__init__([self.model])

    @classmethod
    def epochs(
        cls,
        ra: float,
        dec: float,
        size: int = 40,
        band: str | None = None,
        *,
        stretch: str = "asinh",
        max_stamps: int = 30,
    ) -> CutoutGallery:
        """Every visit's stamp of (ra, dec) in time order, with the light curve beside them."""
        import bokeh.models
        from bokeh.layouts import column, gridplot, row
        from bokeh.models import ColumnDataSource, HoverTool

        whisker: Any = getattr(bokeh.models, "Whisker")  # noqa: B009 (not in bokeh's stubs)
        from bokeh.plotting import figure as _figure

        figure: Any = _figure
        from jupyter_bokeh import BokehModel

        stamps = engine().stamps(ra, dec, size, band)
        figures = [
            _stamp_figure(s.image, f"{s.band} {s.mjd:.2f}" if s.mjd else f"{s.band}", stretch, 110)
            for s in stamps[:max_stamps]
        ]
        curve = figure(
            width=420,
            height=300,
            title=f"Light curve at ({ra:.5f}, {dec:.5f})",
            x_axis_label="MJD (TAI)",
            y_axis_label="aperture flux",
        )
        for b in sorted({s.band or "?" for s in stamps}):
            chosen = [s for s in stamps if (s.band or "?") == b and s.mjd is not None]
            fluxes = [aperture_flux(s) for s in chosen]
            flux = np.array([f for f, _ in fluxes])
            err = np.array([e for _, e in fluxes])
            source = ColumnDataSource(
                {"mjd": [s.mjd for s in chosen], "flux": flux, "lo": flux - err, "hi": flux + err}
            )
            color = BAND_COLORS.get(b, "black")
            curve.scatter("mjd", "flux", source=source, color=color, size=8, legend_label=b)
            curve.add_layout(
                whisker(source=source, base="mjd", upper="hi", lower="lo", line_color=color)
            )
        curve.add_tools(HoverTool(tooltips=[("MJD", "@mjd{0.000}"), ("flux", "@flux{0.0}")]))
        strip = gridplot(
            [figures[i : i + 6] for i in range(0, len(figures), 6)], toolbar_location=None
        )
        model = BokehModel(row(column(strip), curve) if figures else curve)
        gallery = cls(children=[model])
        gallery.model = model
        gallery.stamps = stamps
        gallery.add_class("skydeck-epochs")
        return gallery
