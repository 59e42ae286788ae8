"""Display stretches (linear, asinh, zscale) and colormaps shared by the widgets."""

from __future__ import annotations

import numpy as np

STRETCHES = ("asinh", "zscale", "linear")

#: Colormap names offered by the viewer -> bokeh palette names.
COLORMAPS = {
    "grey": "Greys256",
    "viridis": "Viridis256",
    "magma": "Magma256",
    "inferno": "Inferno256",
    "cividis": "Cividis256",
}


def palette(name: str) -> list[str]:
    """The 256-colour bokeh palette of a colormap name (low values dark, as in ds9)."""
    from bokeh import palettes

    if name not in COLORMAPS:
        raise ValueError(f"Unknown colormap {name!r}; choose one of {sorted(COLORMAPS)}.")
    colors: list[str] = list(getattr(palettes, COLORMAPS[name]))
    return colors


def stretch(data: np.ndarray, kind: str = "asinh", *, a: float = 0.1) -> np.ndarray:
    """``data`` mapped to [0, 1] for display (NaN stays NaN).

    ``linear``: 0.5-99.5 percentile range; ``zscale``: IRAF zscale limits, linear;
    ``asinh``: zscale-like limits then an asinh curve with softening ``a``.
    """
    from astropy.visualization import (
        AsinhStretch,
        LinearStretch,
        PercentileInterval,
        ZScaleInterval,
    )

    if kind not in STRETCHES:
        raise ValueError(f"Unknown stretch {kind!r}; choose one of {STRETCHES}.")
    values = np.asarray(data, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, np.nan)
    if kind == "linear":
        lo, hi = PercentileInterval(99.0).get_limits(finite)
        curve = LinearStretch()
    elif kind == "zscale":
        lo, hi = ZScaleInterval().get_limits(finite)
        curve = LinearStretch()
    else:
        lo, _ = ZScaleInterval().get_limits(finite)
        hi = float(np.percentile(finite, 99.9))
        curve = AsinhStretch(a=a)
    if not hi > lo:
        hi = lo + 1.0
    scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    out: np.ndarray = curve(scaled, clip=True)
    out[~np.isfinite(values)] = np.nan
    return out
