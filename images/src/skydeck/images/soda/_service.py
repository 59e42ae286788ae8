"""The cutout service's decisions: parse SODA parameters, check sizes, cut, encode FITS."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from skydeck.images.cutouts import CutoutEngine, CutoutError, DatasetNotFoundError

#: Longest parameter value accepted (a POLYGON of ~200 vertices fits), and most parameters.
MAX_VALUE_CHARS = 4096
MAX_PARAMETERS = 64

#: Largest region radius or side, degrees: anything larger is no cutout.
MAX_REGION_DEG = 180.0


class UsageError(ValueError):
    """A malformed request (HTTP 400); the message says how to fix it."""


class NotFound(LookupError):
    """The ID names no image (HTTP 404)."""


class Unavailable(RuntimeError):
    """No data release to cut from (HTTP 503)."""


@dataclass(frozen=True)
class Region:
    """A sky region asked for: centre and the side of the square box that holds it (deg)."""

    ra: float
    dec: float
    width: float
    height: float


def _floats(text: str, n: int | None, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise UsageError(f"{what} must be numbers, got {text!r}.") from None
    if n is not None and len(values) != n:
        raise UsageError(f"{what} needs {n} numbers, got {len(values)}: {text!r}.")
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{what} must be finite numbers, got {text!r}.")
    return values


def _check_position(ra: float, dec: float) -> None:
    if not -90.0 <= dec <= 90.0:
        raise UsageError(f"Declination {dec} is outside [-90, 90] degrees.")
    if not -360.0 <= ra <= 720.0:
        raise UsageError(f"Right ascension {ra} is not an angle in degrees.")


def circle(text: str, what: str = "CIRCLE") -> Region:
    """``ra dec radius`` in degrees."""
    ra, dec, radius = _floats(text, 3, f"{what} (ra dec radius, degrees)")
    _check_position(ra, dec)
    if not 0 < radius <= MAX_REGION_DEG:
        raise UsageError(
            f"{what} radius must be positive and at most {MAX_REGION_DEG:g} degrees, got {radius}."
        )
    return Region(ra % 360.0, dec, 2 * radius, 2 * radius)


def pos(text: str) -> Region:
    """A SODA POS: ``CIRCLE ra dec r``, ``RANGE ra1 ra2 dec1 dec2`` or ``POLYGON ra dec ...``."""
    shape, _, rest = text.strip().partition(" ")
    shape = shape.upper()
    if shape == "CIRCLE":
        return circle(rest, "POS=CIRCLE")
    if shape == "RANGE":
        ra1, ra2, dec1, dec2 = _floats(rest, 4, "POS=RANGE (ra1 ra2 dec1 dec2)")
        if not (ra1 < ra2 and dec1 < dec2):
            raise UsageError("POS=RANGE needs ra1 < ra2 and dec1 < dec2 (infinite bounds: no).")
        _check_position(ra1, dec1)
        _check_position(ra2, dec2)
        dec_c = (dec1 + dec2) / 2
        width = (ra2 - ra1) * math.cos(math.radians(dec_c))
        return Region(((ra1 + ra2) / 2) % 360.0, dec_c, width, dec2 - dec1)
    if shape == "POLYGON":
        values = _floats(rest, None, "POS=POLYGON (ra dec pairs)")
        if len(values) < 6 or len(values) % 2:
            raise UsageError("POS=POLYGON needs at least three (ra, dec) vertices.")
        ras, decs = values[0::2], values[1::2]
        for r, d in zip(ras, decs, strict=True):
            _check_position(r, d)
        dec_c = (min(decs) + max(decs)) / 2
        width = (max(ras) - min(ras)) * math.cos(math.radians(dec_c))
        return Region(((min(ras) + max(ras)) / 2) % 360.0, dec_c, width, max(decs) - min(decs))
    raise UsageError(f"POS shape {shape!r} is not supported; use CIRCLE, RANGE or POLYGON.")


class CutoutService:
    """SODA sync cutouts from one Butler repository (the engine is opened on first use)."""

    def __init__(
        self, repo: str, collections: list[str] | None = None, max_pixels: int = 4096
    ) -> None:
        self.repo = repo
        self.collections = collections or None
        self.max_pixels = max_pixels
        self._engine: CutoutEngine | None = None
        self._lock = threading.Lock()  # the Butler (SQLite registry) is used from one thread

    def engine(self) -> CutoutEngine:
        if self._engine is None:
            try:
                self._engine = CutoutEngine.from_repo(self.repo, collections=self.collections)
            except Exception as err:
                raise Unavailable(
                    f"No image repository at {self.repo}: build the data release with "
                    "`skydeck data build` (or set SKYDECK_CUTOUTS_REPO)."
                ) from err
        return self._engine

    def region(self, params: dict[str, list[str]]) -> Region:
        circles, positions = params.get("CIRCLE", []), params.get("POS", [])
        if len(circles) + len(positions) != 1:
            raise UsageError(
                "Give exactly one region: CIRCLE=<ra> <dec> <radius> or POS=CIRCLE|RANGE|POLYGON "
                "... (degrees, ICRS)."
            )
        return circle(circles[0]) if circles else pos(positions[0])

    def sync(self, params: dict[str, list[str]]) -> tuple[bytes, str]:
        """The FITS bytes of one cutout and a file name for it."""
        ids = params.get("ID", [])
        if len(ids) != 1:
            raise UsageError(
                "Give exactly one ID (the Butler dataset UUID of an image) per sync request."
            )
        region = self.region(params)
        with self._lock:
            engine = self.engine()
            try:
                geometry = engine.geometry(ids[0])
                x, y = geometry.sky_to_pixel(region.ra, region.dec)
                scale = geometry.pixel_scale_arcsec(x, y) / 3600.0 if math.isfinite(x) else 0
            except DatasetNotFoundError as err:
                raise NotFound(str(err)) from err
            except CutoutError as err:
                raise UsageError(str(err)) from err
            if not scale or not math.isfinite(scale):
                raise UsageError("The region's centre cannot be projected onto this image.")
            sides = (region.width / scale, region.height / scale)
            if not all(math.isfinite(side) and side <= self.max_pixels for side in sides):
                raise UsageError(
                    f"The region is {sides[0]:.4g}x{sides[1]:.4g} pixels; the limit is "
                    f"{self.max_pixels} a side. Ask for a smaller region."
                )
            nx, ny = (max(1, math.ceil(side - 1e-3)) for side in sides)
            try:
                cut = engine.cutout(ids[0], region.ra, region.dec, (nx, ny))
            except DatasetNotFoundError as err:
                raise NotFound(str(err)) from err
            except CutoutError as err:
                raise UsageError(str(err)) from err
        name = f"cutout-{cut.dataset_id[:8]}-{region.ra:.5f}{region.dec:+.5f}.fits"
        return cut.to_fits_bytes(), name


def normalize_params(items: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """SODA parameter names are case-insensitive; values keep their case.

    Files, oversized values and too many parameters are refused (`UsageError`).
    """
    if len(items) > MAX_PARAMETERS:
        raise UsageError(f"Too many parameters ({len(items)}); a cutout needs ID and a region.")
    out: dict[str, list[str]] = {}
    for key, value in items:
        if not isinstance(value, str):
            raise UsageError(f"{key[:40]!r} must be a plain value, not a file upload.")
        if len(key) > 64 or len(value) > MAX_VALUE_CHARS:
            raise UsageError(
                f"Parameter {key[:40]!r} is too long (values up to {MAX_VALUE_CHARS} characters)."
            )
        out.setdefault(key.upper(), []).append(value)
    return out
