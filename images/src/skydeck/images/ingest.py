"""Ingest of a user's own FITS images into a Butler collection, with sky regions.

Each image becomes a ``user_image`` dataset (an ``lsst.images`` masked image) of the
``SkydeckUser`` instrument, one visit per file, whose ``visit_detector_region`` is the
image's footprint on the sky. Spatial queries
(``visit_detector_region.region OVERLAPS POINT(ra, dec)``), the cutout engine and the
multi-epoch stamps then work on them as on the release's visit images.

Every file is read and checked before anything is written; the writes happen in one
Butler transaction, so a bad file means nothing at all is registered.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The instrument every ingested image belongs to.
USER_INSTRUMENT = "SkydeckUser"
#: Dataset type of ingested images.
USER_IMAGE = "user_image"
#: The single detector of the user instrument.
USER_DETECTOR = 0
#: Largest error (mas) tolerated when a WCS is re-expressed in ICRS.
WCS_TOLERANCE_MAS = 1.0

_MASK_PLANES = (
    ("BAD", "Non-zero in the file's mask/DQ extension, or not finite."),
    ("NO_DATA", "Pixel was NaN or infinite in the file."),
)


class IngestError(ValueError):
    """A file that cannot be ingested; the message names it and says why."""


@dataclass
class PreparedImage:
    """A FITS image read and checked, ready to register."""

    path: Path
    masked_image: Any  # lsst.images.MaskedImage (frame filled in at registration)
    pixels: np.ndarray
    variance: np.ndarray
    bad: np.ndarray
    fits_wcs: Any  # astropy WCS in ICRS
    corners: list[tuple[float, float]]
    band: str
    mjd: float | None
    exposure_time: float
    variance_source: str
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def center(self) -> tuple[float, float]:
        ny, nx = self.pixels.shape
        ra, dec = self.fits_wcs.all_pix2world((nx - 1) / 2, (ny - 1) / 2, 0)
        return float(ra), float(dec)


@dataclass(frozen=True)
class IngestedImage:
    path: Path
    dataset_id: str
    visit: int
    band: str
    center: tuple[float, float]


def default_collection(user: str | None = None) -> str:
    """``u/<user>/images`` for the lab's user (``JUPYTERHUB_USER``) or the login name."""
    user = user or os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    return f"u/{user}/images"


def default_repo() -> str:
    """The release's Butler repository (from ``SKYDECK_RELEASE``)."""
    from skydeck.catalog.release import ReleaseLayout

    return str(ReleaseLayout.from_env().butler_repo)


# --- reading -------------------------------------------------------------------------


def _band_of(header: Any, override: str | None) -> str:
    if override:
        return override
    for key in ("BAND", "FILTER", "FILTER1", "FILTNAM"):
        value = str(header.get(key, "")).strip()
        if not value:
            continue
        low = value.lower()
        if low in "ugrizy" and len(low) == 1:
            return low
        match = re.search(r"(?:^|[^a-z])([ugrizy])(?:_|'|$|[^a-z])", low)
        if match:
            return match.group(1)
        return re.sub(r"[^A-Za-z0-9_]+", "_", value)[:32] or "unknown"
    return "unknown"


def _mjd_of(header: Any) -> float | None:
    from astropy.time import Time

    if "MJD-OBS" in header:
        try:
            return float(header["MJD-OBS"])
        except (TypeError, ValueError):
            pass
    for key in ("DATE-OBS", "DATE_OBS", "DATE-BEG"):
        if key in header:
            try:
                return float(Time(str(header[key]), scale="utc").tai.mjd)
            except ValueError:
                continue
    return None


def _image_hdu(hdus: Any, path: Path) -> Any:
    preferred = [h for h in hdus if h.name.upper() in ("IMAGE", "SCI", "PRIMARY")]
    for hdu in preferred + list(hdus):
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    raise IngestError(f"{path}: no image in this FITS file (only tables or empty HDUs).")


def _icrs_wcs(wcs: Any, shape: tuple[int, int], path: Path) -> Any:
    """The image's WCS as an equatorial ICRS FITS WCS (refit as TAN-SIP if needed)."""
    import astropy.units as u
    from astropy.wcs.utils import fit_wcs_from_points

    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 15), np.linspace(0, ny - 1, 15))
    truth = wcs.pixel_to_world(gx.ravel(), gy.ravel()).icrs
    frame = (wcs.wcs.radesys or "ICRS").upper()
    equatorial = wcs.wcs.lngtyp == "RA" and wcs.wcs.lattyp == "DEC"
    if (
        equatorial
        and frame in ("ICRS", "FK5")
        and (wcs.wcs.equinox in (2000.0,) or frame == "ICRS" or math.isnan(wcs.wcs.equinox))
    ):
        return wcs
    fitted = fit_wcs_from_points((gx.ravel(), gy.ravel()), truth, projection="TAN", sip_degree=4)
    ra, dec = fitted.all_pix2world(gx.ravel(), gy.ravel(), 0)
    from astropy.coordinates import SkyCoord

    error = SkyCoord(ra * u.deg, dec * u.deg).separation(truth).to_value(u.mas).max()
    if error > WCS_TOLERANCE_MAS:
        raise IngestError(
            f"{path}: its {wcs.wcs.ctype[0]}/{wcs.wcs.ctype[1]} WCS cannot be expressed in ICRS "
            f"to {WCS_TOLERANCE_MAS} mas (best fit {error:.2f} mas); reproject the image first."
        )
    return fitted


def read_fits_image(path: str | os.PathLike[str], band: str | None = None) -> PreparedImage:
    """Read and check one FITS image; raises `IngestError` saying what is wrong."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file.")
    try:
        with fits.open(path, memmap=False) as hdus:
            hdus.verify("exception")
            hdu = _image_hdu(hdus, path)
            data = np.asarray(hdu.data, dtype=np.float64)
            header = hdu.header.copy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, hdus)
            extras = {h.name.upper(): h for h in hdus if h.is_image and h is not hdu}
            variance = extras.get("VARIANCE", extras.get("VAR"))
            mask = extras.get("MASK", extras.get("DQ"))
            var_data = None if variance is None else np.asarray(variance.data, np.float64)
            mask_data = None if mask is None else np.asarray(mask.data)
    except IngestError:
        raise
    except (OSError, ValueError, TypeError, KeyError, fits.VerifyError) as err:
        raise IngestError(f"{path}: not a readable FITS file ({err}).") from err
    data = np.squeeze(data)
    if data.ndim != 2:
        raise IngestError(
            f"{path}: the image has {data.ndim} dimensions; only 2-d images can be ingested "
            "(split cubes into planes first)."
        )
    if not wcs.has_celestial:
        raise IngestError(
            f"{path}: no celestial WCS in the header (CTYPE1/2 = RA---TAN/DEC--TAN or similar); "
            "astrometrically calibrate the image first (e.g. astrometry.net)."
        )
    wcs = wcs.celestial
    if wcs.pixel_shape is not None and tuple(wcs.pixel_shape) != (data.shape[1], data.shape[0]):
        wcs.pixel_shape = (data.shape[1], data.shape[0])
    try:
        wcs = _icrs_wcs(wcs, data.shape, path)
        ny, nx = data.shape
        edge_x = np.concatenate(
            [
                np.linspace(-0.5, nx - 0.5, 9),
                np.full(9, nx - 0.5),
                np.linspace(nx - 0.5, -0.5, 9),
                np.full(9, -0.5),
            ]
        )
        edge_y = np.concatenate(
            [
                np.full(9, -0.5),
                np.linspace(-0.5, ny - 0.5, 9),
                np.full(9, ny - 0.5),
                np.linspace(ny - 0.5, -0.5, 9),
            ]
        )
        ra, dec = wcs.all_pix2world(edge_x, edge_y, 0)
    except IngestError:
        raise
    except Exception as err:  # wcslib errors come in many types
        raise IngestError(f"{path}: the WCS cannot be evaluated ({err}).") from err
    if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
        raise IngestError(f"{path}: the WCS does not map the whole image onto the sky.")
    finite = np.isfinite(data)
    if not finite.any():
        raise IngestError(f"{path}: every pixel is NaN or infinite.")
    if var_data is not None and var_data.shape != data.shape:
        raise IngestError(f"{path}: the VARIANCE extension's shape differs from the image's.")
    if var_data is None:
        sample = data[finite]
        sigma = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
        var_data = np.full(data.shape, sigma**2 if sigma > 0 else 1.0)
        variance_source = "estimated"
    else:
        variance_source = "file"
    bad = ~finite
    if mask_data is not None:
        if mask_data.shape != data.shape:
            raise IngestError(f"{path}: the MASK/DQ extension's shape differs from the image's.")
        bad |= mask_data != 0
    exptime = header.get("EXPTIME", header.get("EXPOSURE", 0.0))
    try:
        exposure_time = float(exptime)
    except (TypeError, ValueError):
        exposure_time = 0.0
    return PreparedImage(
        path=path,
        masked_image=None,
        pixels=np.where(finite, data, np.nan).astype(np.float32),
        variance=var_data.astype(np.float32),
        bad=bad,
        fits_wcs=wcs,
        corners=[(float(r), float(d)) for r, d in zip(ra, dec, strict=True)],
        band=_band_of(header, band),
        mjd=_mjd_of(header),
        exposure_time=exposure_time,
        variance_source=variance_source,
        header={k: header[k] for k in ("OBJECT", "TELESCOP", "INSTRUME") if k in header},
    )


# --- registration --------------------------------------------------------------------


def _masked_image(prepared: PreparedImage, visit: int) -> Any:
    from lsst.images import (
        Box,
        DetectorFrame,
        Image,
        Mask,
        MaskedImage,
        MaskPlane,
        MaskSchema,
        SkyProjection,
    )

    ny, nx = prepared.pixels.shape
    box = Box.from_shape((ny, nx))
    frame = DetectorFrame(instrument=USER_INSTRUMENT, visit=visit, detector=USER_DETECTOR, bbox=box)
    projection = SkyProjection.from_fits_wcs(prepared.fits_wcs, frame, pixel_bounds=box)
    mask = Mask(schema=MaskSchema([MaskPlane(n, d) for n, d in _MASK_PLANES]), bbox=box)
    mask.set("BAD", prepared.bad)
    mask.set("NO_DATA", ~np.isfinite(prepared.pixels))
    metadata: dict[str, Any] = {
        "BAND": prepared.band,
        "SOURCE": prepared.path.name[:200],
        "VARSRC": prepared.variance_source,
        **{k: str(v)[:200] for k, v in prepared.header.items()},
    }
    if prepared.mjd is not None:
        metadata["MJD-OBS"] = prepared.mjd
    return MaskedImage(
        Image(prepared.pixels, sky_projection=projection),
        mask=mask,
        variance=Image(prepared.variance),
        sky_projection=projection,
        metadata=metadata,
    )


def _check_accuracy(masked: Any, prepared: PreparedImage) -> None:
    """The stored projection must agree with the file's WCS (guards exotic projections)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from lsst.images import XY

    ny, nx = prepared.pixels.shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 6), np.linspace(0, ny - 1, 6))
    got = masked.sky_projection.pixel_to_sky(XY(gx.ravel(), gy.ravel()))
    ra, dec = prepared.fits_wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    error = got.separation(SkyCoord(ra * u.deg, dec * u.deg)).to_value(u.mas).max()
    if not error <= WCS_TOLERANCE_MAS:
        raise IngestError(
            f"{prepared.path}: its WCS ({'/'.join(prepared.fits_wcs.wcs.ctype)}) is not supported "
            f"exactly (error {error:.2f} mas); reproject to TAN or TAN-SIP first."
        )


def _ensure_instrument(butler: Any) -> None:
    from lsst.daf.butler import DatasetType

    registry = butler.registry
    registry.syncDimensionData(
        "instrument",
        {
            "name": USER_INSTRUMENT,
            "visit_max": 2**31 - 1,
            "visit_system": 0,
            "exposure_max": 2**31 - 1,
            "detector_max": 1,
            "class_name": "skydeck.images.ingest.UserImages",
        },
    )
    registry.syncDimensionData(
        "detector",
        {
            "instrument": USER_INSTRUMENT,
            "id": USER_DETECTOR,
            "full_name": "user",
            "name_in_raft": "user",
            "raft": "user",
            "purpose": "SCIENCE",
        },
    )
    registry.syncDimensionData(
        "visit_system", {"instrument": USER_INSTRUMENT, "id": 0, "name": "one-to-one"}
    )
    registry.registerDatasetType(
        DatasetType(
            USER_IMAGE,
            ["instrument", "visit", "detector"],
            "MaskedImageV2",
            universe=butler.dimensions,
        )
    )


def _next_visit(butler: Any) -> int:
    records = butler.query_dimension_records(
        "visit", instrument=USER_INSTRUMENT, explain=False, limit=None
    )
    return max((int(r.id) for r in records), default=0) + 1


def _day_obs(mjd: float | None) -> int:
    if mjd is None:
        return 0
    from astropy.time import Time

    return int(Time(mjd - 0.5, format="mjd", scale="tai").utc.strftime("%Y%m%d"))


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    repo: str | None = None,
    collection: str | None = None,
    *,
    band: str | None = None,
) -> list[IngestedImage]:
    """Register FITS images in ``collection`` (a RUN) of ``repo``; all or nothing.

    >>> ingest(["m31.fits"], collection="u/alice/images")  # doctest: +SKIP
    """
    from astropy.time import Time
    from lsst.daf.butler import Butler, Timespan
    from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

    if not paths:
        raise IngestError("No files given.")
    prepared = [read_fits_image(p, band) for p in paths]  # every check before any write
    collection = collection or default_collection()
    repo = repo or default_repo()
    try:
        butler = Butler.from_config(str(repo), writeable=True)
    except Exception as err:
        raise IngestError(f"Cannot open the Butler repository {repo} for writing: {err}") from err
    regions = []
    for item in prepared:
        vectors = [UnitVector3d(LonLat.fromDegrees(ra, dec)) for ra, dec in item.corners]
        try:
            regions.append(ConvexPolygon.convexHull(vectors))
        except Exception as err:
            raise IngestError(f"{item.path}: its sky footprint is not a convex polygon.") from err
    _ensure_instrument(butler)
    butler.registry.registerRun(collection)
    out: list[IngestedImage] = []
    with butler.transaction():
        visit = _next_visit(butler)
        for item, region in zip(prepared, regions, strict=True):
            masked = _masked_image(item, visit)
            _check_accuracy(masked, item)
            physical = f"user_{item.band}"
            butler.registry.syncDimensionData(
                "physical_filter",
                {"instrument": USER_INSTRUMENT, "name": physical, "band": item.band},
            )
            timespan = None
            if item.mjd is not None:
                begin = Time(item.mjd, format="mjd", scale="tai")
                timespan = Timespan(begin, begin + max(item.exposure_time, 1e-3) / 86400.0)
            day = _day_obs(item.mjd)
            butler.registry.syncDimensionData(
                "day_obs", {"instrument": USER_INSTRUMENT, "id": day, "timespan": None}
            )
            butler.registry.insertDimensionData(
                "visit",
                {
                    "instrument": USER_INSTRUMENT,
                    "id": visit,
                    "name": f"{visit}:{item.path.name}"[:256],
                    "physical_filter": physical,
                    "day_obs": day,
                    "exposure_time": item.exposure_time,
                    "target_name": str(item.header.get("OBJECT", ""))[:64],
                    "observation_reason": "user",
                    "science_program": "user",
                    "region": region,
                    "timespan": timespan,
                },
            )
            butler.registry.insertDimensionData(
                "visit_detector_region",
                {
                    "instrument": USER_INSTRUMENT,
                    "visit": visit,
                    "detector": USER_DETECTOR,
                    "region": region,
                },
            )
            ref = butler.put(
                masked,
                USER_IMAGE,
                instrument=USER_INSTRUMENT,
                visit=visit,
                detector=USER_DETECTOR,
                run=collection,
            )
            out.append(IngestedImage(item.path, str(ref.id), visit, item.band, item.center))
            visit += 1
    return out
