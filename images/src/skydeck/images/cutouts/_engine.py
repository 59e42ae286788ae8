"""The cutout engine: pixels around a position, read from the Butler without the whole image.

Edge policy (what callers can rely on):

* A request is a box of ``size`` pixels centred on the pixel that contains the position.
* If the box runs over the image edge, the cutout holds only the part inside the image
  (``Cutout.clipped`` is true and ``Cutout.bbox`` says which part) - unless ``pad=True``,
  in which case the cutout has the requested shape, pixels outside the image are NaN
  (variance NaN too) and carry the ``NO_DATA`` mask bit.
* If the box does not touch the image at all, `OffImageError` is raised.
* From a sky position and a band, the coadd patch is chosen whose pixels contain the whole
  box if any does (patches overlap), otherwise the one where the position lies deepest
  inside, so positions near patch edges get complete cutouts.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.wcs import WCS

from skydeck.images.cutouts._model import (
    Cutout,
    CutoutError,
    DatasetNotFoundError,
    OffImageError,
    PixelBox,
)

#: Storage classes the engine can cut (lsst.images masked images and their subclasses).
IMAGE_STORAGE_CLASSES = frozenset({"MaskedImageV2", "VisitImage", "CellCoadd", "DifferenceImage"})

#: Preferred dataset type names, first match wins (others are discovered by dimensions).
COADD_NAMES = ("deep_coadd", "deepCoadd", "deepCoadd_calexp", "coadd")
VISIT_NAMES = ("visit_image", "calexp", "user_image")

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)

#: Mask plane set on padded pixels outside the image.
NO_DATA = "NO_DATA"


@dataclass(frozen=True)
class Geometry:
    """Where a dataset's pixels are and how they map to the sky."""

    bbox: PixelBox
    projection: Any  # lsst.images.SkyProjection

    def sky_to_pixel(self, ra: float, dec: float) -> tuple[float, float]:
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        check_position(ra, dec)
        xy = self.projection.sky_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
        return float(xy.x), float(xy.y)

    def pixel_scale_arcsec(self, x: float, y: float) -> float:
        """Local pixel scale (square root of the pixel area), arcsec."""
        import astropy.units as u

        sky = self.projection.pixel_to_sky(
            _xy(np.array([x, x + 1.0, x]), np.array([y, y, y + 1.0]))
        )
        dx = sky[0].spherical_offsets_to(sky[1])
        dy = sky[0].spherical_offsets_to(sky[2])
        det = dx[0].to_value(u.arcsec) * dy[1].to_value(u.arcsec) - dx[1].to_value(u.arcsec) * dy[
            0
        ].to_value(u.arcsec)
        return math.sqrt(abs(det))


def check_position(ra: float, dec: float) -> None:
    """Refuse a position that is not on the sky (`CutoutError` saying why)."""
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise CutoutError(f"({ra}, {dec}) is not a position: give finite degrees.")
    if not -90.0 <= dec <= 90.0:
        raise CutoutError(f"Declination {dec} is outside [-90, 90] degrees.")


def _xy(x: Any, y: Any) -> Any:
    from lsst.images import XY

    return XY(x, y)


def parse_dataset_id(value: Any) -> uuid.UUID:
    """A dataset UUID from a UUID, a string holding one (``butler://repo/<uuid>``,
    ``urn:uuid:<uuid>``, plain), or a DatasetRef. Anything else is refused: IDs name
    datasets in the registry, never files."""
    ref_id = getattr(value, "id", None)
    if isinstance(ref_id, uuid.UUID):
        return ref_id
    if isinstance(value, uuid.UUID):
        return value
    text = str(value).strip()
    matches = _UUID.findall(text)
    if len(matches) != 1 or len(text) > 256:
        raise DatasetNotFoundError(
            f"{text[:80]!r} is not a dataset ID: give the Butler dataset UUID of an image "
            "(for example from butler.query_datasets(...)[0].id), optionally as "
            "butler://<repo>/<uuid>."
        )
    return uuid.UUID(matches[0])


def _box_of(lsst_box: Any) -> PixelBox:
    return PixelBox(lsst_box.x.start, lsst_box.y.start, lsst_box.x.stop, lsst_box.y.stop)


def _lsst_box(box: PixelBox) -> Any:
    from lsst.images import Box

    return Box.factory[box.y0 : box.y1, box.x0 : box.x1]


def request_box(x: float, y: float, nx: int, ny: int) -> PixelBox:
    """The ``nx`` x ``ny`` box centred on the pixel containing (x, y)."""
    cx, cy = math.floor(x + 0.5), math.floor(y + 0.5)
    x0, y0 = cx - nx // 2, cy - ny // 2
    return PixelBox(x0, y0, x0 + nx, y0 + ny)


def _max_error_mas(projection: Any, wcs: WCS, box: PixelBox) -> float:
    """Largest sky distance (mas) between ``projection`` and ``wcs`` over a grid of ``box``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ny, nx = box.shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    exact = projection.pixel_to_sky(_xy(gx.ravel() + box.x0, gy.ravel() + box.y0))
    ra, dec = wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    found = SkyCoord(ra * u.deg, dec * u.deg)
    return float(exact.separation(found).to_value(u.mas).max())


def _fits_wcs(
    projection: Any, box: PixelBox, *, trusted: bool = False, tolerance_mas: float = 0.1
) -> tuple[WCS, bool]:
    """A FITS WCS for the pixels of ``box``, and whether it is the projection's own exact
    FITS form (``trusted`` skips re-checking that), otherwise a TAN-SIP fit."""
    lsst_box = _lsst_box(box)
    wcs = projection.as_fits_wcs(lsst_box, allow_approximation=True)
    if wcs is not None and (trusted or _max_error_mas(projection, wcs, box) <= tolerance_mas):
        return wcs, True
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import fit_wcs_from_points

    ny, nx = box.shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 12), np.linspace(0, ny - 1, 12))
    sky = projection.pixel_to_sky(_xy(gx.ravel() + box.x0, gy.ravel() + box.y0))
    fitted: WCS = fit_wcs_from_points(
        (gx.ravel(), gy.ravel()),
        SkyCoord(sky.ra.to(u.deg), sky.dec.to(u.deg)),
        projection="TAN",
        sip_degree=None if min(nx, ny) < 8 else 3,
    )
    return fitted, False


class CutoutEngine:
    """Cutouts from the images of one Butler repository.

    >>> engine = CutoutEngine.from_repo("release/butler")  # doctest: +SKIP
    >>> stamp = engine.coadd_cutout(62.0, -37.0, 100, band="r")  # doctest: +SKIP
    """

    def __init__(
        self,
        butler: Any,
        *,
        collections: Sequence[str] | None = None,
        coadd_type: str | None = None,
        visit_types: Sequence[str] | None = None,
        cache_size: int = 256,
    ) -> None:
        self.butler = butler
        self.collections = list(collections) if collections else self._default_collections()
        found_coadds, found_visits = self._image_dataset_types()
        self.coadd_type = coadd_type or (found_coadds[0] if found_coadds else None)
        self.visit_types = list(visit_types) if visit_types else found_visits
        self._geometry: OrderedDict[uuid.UUID, Geometry] = OrderedDict()
        self._refs: OrderedDict[uuid.UUID, Any] = OrderedDict()
        self._cache_size = cache_size
        self._exact_fits: set[uuid.UUID] = set()  # datasets whose WCS exports exactly
        # Open lsst.images readers of local files, so repeated cutouts of one image skip
        # re-opening and re-parsing it (each read is still a partial read of the pixels).
        self._readers: OrderedDict[uuid.UUID, tuple[Any, Any]] = OrderedDict()
        self.max_open_files = 16

    @classmethod
    def from_repo(cls, repo: str, **kwargs: Any) -> CutoutEngine:
        """An engine reading the repository at ``repo`` (read-only)."""
        from lsst.daf.butler import Butler

        return cls(Butler.from_config(str(repo), writeable=False), **kwargs)

    # --- discovery -----------------------------------------------------------------

    def _default_collections(self) -> list[str]:
        from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

        names = set(self.butler.collections.query("*"))
        if DEFAULT_COLLECTION in names:
            return [DEFAULT_COLLECTION]
        return sorted(names)

    def _image_dataset_types(self) -> tuple[list[str], list[str]]:
        coadds: list[str] = []
        visits: list[str] = []
        for dt in self.butler.registry.queryDatasetTypes():
            if dt.isComponent() or dt.storageClass_name not in IMAGE_STORAGE_CLASSES:
                continue
            dims = set(dt.dimensions.names)
            if {"tract", "patch", "band"} <= dims:
                coadds.append(dt.name)
            elif {"visit", "detector"} <= dims:
                visits.append(dt.name)

        def rank(names: tuple[str, ...]) -> Any:
            return lambda n: (names.index(n) if n in names else len(names), n)

        return sorted(coadds, key=rank(COADD_NAMES)), sorted(visits, key=rank(VISIT_NAMES))

    def is_image(self, ref: Any) -> bool:
        return bool(ref.datasetType.storageClass_name in IMAGE_STORAGE_CLASSES)

    # --- datasets and geometry ----------------------------------------------------

    def _remember[T](self, cache: OrderedDict[uuid.UUID, T], key: uuid.UUID, value: T) -> T:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)
        return value

    def resolve(self, dataset: Any) -> Any:
        """The DatasetRef of ``dataset`` (a ref, a UUID or a string holding one)."""
        if hasattr(dataset, "datasetType") and hasattr(dataset, "id"):
            ref = dataset
        else:
            dataset_id = parse_dataset_id(dataset)
            ref = self._refs.get(dataset_id)
            if ref is None:
                ref = self.butler.get_dataset(dataset_id)
                if ref is None:
                    raise DatasetNotFoundError(
                        f"No dataset with ID {dataset_id} in this repository; "
                        "look the ID up again with butler.query_datasets(...)."
                    )
                self._remember(self._refs, dataset_id, ref)
        if not self.is_image(ref):
            raise CutoutError(
                f"Dataset {ref.id} is a {ref.datasetType.name} "
                f"({ref.datasetType.storageClass_name}), not an image; cutouts need an image "
                "dataset such as a visit image or a coadd."
            )
        return ref

    def geometry(self, dataset: Any) -> Geometry:
        """Bounding box and sky projection of an image (cheap: read from its metadata)."""
        ref = self.resolve(dataset)
        found = self._geometry.get(ref.id)
        if found is None:
            bbox = self.butler.get(ref.makeComponentRef("bbox"))
            projection = self.butler.get(ref.makeComponentRef("sky_projection"))
            if projection is None:
                raise CutoutError(f"Dataset {ref.id} has no WCS, so it cannot be cut by position.")
            found = self._remember(self._geometry, ref.id, Geometry(_box_of(bbox), projection))
        return found

    # --- cutouts ------------------------------------------------------------------

    def _size_pixels(self, geometry: Geometry, x: float, y: float, size: Any) -> tuple[int, int]:
        if hasattr(size, "unit"):
            import astropy.units as u

            side = float(size.to_value(u.arcsec)) / geometry.pixel_scale_arcsec(x, y)
            if not math.isfinite(side) or side > 5000:
                raise CutoutError(f"A cutout of side {size} is too large (limit 5000 pixels).")
            n = max(1, math.ceil(side - 1e-3))  # tolerate rounding of the pixel scale
            return n, n
        if isinstance(size, int | np.integer):
            nx = ny = int(size)
        else:
            nx, ny = (int(v) for v in size)
        if nx < 1 or ny < 1:
            raise CutoutError(f"Cutout size must be at least 1 pixel, not {size!r}.")
        if nx * ny > 25_000_000:
            raise CutoutError(f"Cutout of {nx}x{ny} pixels is too large (limit 5000x5000).")
        return nx, ny

    def cutout(
        self, dataset: Any, ra: float, dec: float, size: Any = 100, *, pad: bool = False
    ) -> Cutout:
        """A cutout of ``size`` (pixels, (nx, ny) or an astropy angle for the side) of one
        image, centred on (ra, dec) in degrees."""
        ref = self.resolve(dataset)
        geometry = self.geometry(ref)
        x, y = geometry.sky_to_pixel(ra, dec)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise OffImageError(f"({ra}, {dec}) cannot be projected onto dataset {ref.id}.")
        nx, ny = self._size_pixels(geometry, x, y, size)
        return self.cutout_box(ref, request_box(x, y, nx, ny), pad=pad)

    def cutout_box(self, dataset: Any, box: PixelBox, *, pad: bool = False) -> Cutout:
        """The pixels of ``box`` (parent pixel coordinates) of one image."""
        ref = self.resolve(dataset)
        geometry = self.geometry(ref)
        inside = box.intersection(geometry.bbox)
        if inside.empty:
            raise OffImageError(
                f"The requested box x={box.x0}:{box.x1}, y={box.y0}:{box.y1} does not overlap "
                f"dataset {ref.id} (x={geometry.bbox.x0}:{geometry.bbox.x1}, "
                f"y={geometry.bbox.y0}:{geometry.bbox.y1})."
            )
        masked = self._read(ref, inside)
        image = np.asarray(masked.image.array, dtype=np.float32)
        variance = np.asarray(masked.variance.array, dtype=np.float32)
        mask, planes = _packed_mask(masked.mask)
        out_box = inside
        if pad and inside != box:
            image, variance, mask, planes = _pad(image, variance, mask, planes, inside, box)
            out_box = box
        metadata = dict(getattr(masked, "metadata", {}) or {})
        data_id = {k: v for k, v in ref.dataId.required.items()}
        band = ref.dataId.get("band") or metadata.get("BAND")
        mjd = metadata.get("MJD-OBS")
        wcs, exact = _fits_wcs(geometry.projection, out_box, trusted=ref.id in self._exact_fits)
        if exact:
            self._exact_fits.add(ref.id)
        return Cutout(
            image=image,
            variance=variance,
            mask=mask,
            mask_planes=planes,
            wcs=wcs,
            bbox=out_box,
            requested=box,
            dataset_id=str(ref.id),
            dataset_type=ref.datasetType.name,
            data_id=data_id,
            band=str(band) if band else None,
            mjd=float(mjd) if mjd is not None else None,
            unit=str(masked.unit) if masked.unit is not None else None,
        )

    def _read(self, ref: Any, box: PixelBox) -> Any:
        """The pixels of ``box`` only: an lsst.images partial read (``bbox`` parameter)."""
        reader = self._readers.get(ref.id)
        if reader is None:
            uri = self.butler.getURI(ref)
            if not uri.isLocal or uri.getExtension() != ".fits":
                return self.butler.get(ref, parameters={"bbox": _lsst_box(box)})
            import contextlib

            from lsst.images import serialization

            stack = contextlib.ExitStack()
            opened = stack.enter_context(serialization.open_archive(uri.ospath, partial=True))
            reader = (stack, opened)
            self._readers[ref.id] = reader
            while len(self._readers) > self.max_open_files:
                _, (old_stack, _) = self._readers.popitem(last=False)
                old_stack.close()
        self._readers.move_to_end(ref.id)
        return reader[1].read(bbox=_lsst_box(box))

    def close(self) -> None:
        """Close the files kept open for fast repeated cutouts."""
        while self._readers:
            _, (stack, _) = self._readers.popitem()
            stack.close()

    def __enter__(self) -> CutoutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- spatial lookups ----------------------------------------------------------

    def _query(
        self,
        dataset_type: str,
        region_field: str,
        ra: float,
        dec: float,
        where: str = "",
        **bind: Any,
    ) -> list[Any]:
        from lsst.sphgeom import LonLat, UnitVector3d

        point = UnitVector3d(LonLat.fromDegrees(ra, dec))
        from lsst.sphgeom import Angle, Circle

        region = Circle(point, Angle.fromDegrees(1e-6))
        clause = f"{region_field} OVERLAPS _position"
        if where:
            clause += f" AND {where}"
        refs: list[Any] = self.butler.query_datasets(
            dataset_type,
            collections=self.collections,
            where=clause,
            bind={"_position": region, **bind},
            with_dimension_records=True,
            explain=False,
            limit=None,
        )
        return refs

    def find_coadd(self, ra: float, dec: float, band: str, size: int = 0) -> Any:
        """The coadd patch of ``band`` best placed for a ``size``-pixel cutout at (ra, dec)."""
        if self.coadd_type is None:
            raise CutoutError("This repository has no coadd images; cut a visit image instead.")
        refs = self._query(self.coadd_type, "patch.region", ra, dec, "band = _band", _band=band)
        if not refs:
            raise OffImageError(
                f"No {self.coadd_type} in band {band!r} covers ({ra:.6f}, {dec:.6f}) in "
                f"collections {self.collections}."
            )
        best: tuple[float, Any] | None = None
        for ref in refs:
            geometry = self.geometry(ref)
            x, y = geometry.sky_to_pixel(ra, dec)
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            b = geometry.bbox
            depth = min(x - b.x0 + 0.5, b.x1 - 0.5 - x, y - b.y0 + 0.5, b.y1 - 0.5 - y)
            if size and b.contains(request_box(x, y, size, size)):
                depth += 1e6  # complete cutouts first
            if best is None or depth > best[0]:
                best = (depth, ref)
        if best is None or best[0] < 0:
            raise OffImageError(
                f"({ra:.6f}, {dec:.6f}) lies outside every {self.coadd_type} patch."
            )
        return best[1]

    def coadd_cutout(
        self, ra: float, dec: float, size: Any = 100, band: str = "r", *, pad: bool = False
    ) -> Cutout:
        """A coadd cutout at a sky position in one band (the best patch is found for you)."""
        nominal = size if isinstance(size, int) else 0
        ref = self.find_coadd(ra, dec, band, nominal)
        return self.cutout(ref, ra, dec, size, pad=pad)

    def visits_covering(self, ra: float, dec: float, band: str | None = None) -> list[Any]:
        """Visit-image refs whose detector region contains (ra, dec), oldest first."""
        refs: list[Any] = []
        for dataset_type in self.visit_types:
            where, bind = ("band = _band", {"_band": band}) if band else ("", {})
            found = self._query(
                dataset_type, "visit_detector_region.region", ra, dec, where, **bind
            )
            refs.extend(found)
        return sorted(refs, key=_ref_mjd)

    def stamps(
        self, ra: float, dec: float, size: Any = 64, band: str | None = None, *, pad: bool = True
    ) -> list[Cutout]:
        """Multi-epoch stamps: one cutout from every visit image covering (ra, dec), in time
        order, each with its observation time (``Cutout.mjd``)."""
        out: list[Cutout] = []
        for ref in self.visits_covering(ra, dec, band):
            try:
                cut = self.cutout(ref, ra, dec, size, pad=pad)
            except OffImageError:
                continue  # the detector region is a slightly generous polygon
            if cut.mjd is None and math.isfinite(_ref_mjd(ref)):
                cut.mjd = _ref_mjd(ref)
            out.append(cut)
        return out

    def cutouts(self, requests: Iterable[tuple[Any, float, float, Any]]) -> list[Cutout]:
        """Many cutouts at once: (dataset, ra, dec, size) tuples."""
        return [self.cutout(ds, ra, dec, size) for ds, ra, dec, size in requests]


def _ref_mjd(ref: Any) -> float:
    records = getattr(ref.dataId, "records", None)
    try:
        timespan = records["visit"].timespan if records is not None else None
    except (KeyError, TypeError):
        timespan = None
    if timespan is not None and timespan.begin is not None:
        return float(timespan.begin.tai.mjd)
    return math.nan


def _packed_mask(mask: Any) -> tuple[np.ndarray, dict[str, int]]:
    """The mask as one int32 bit plane per mask plane (bit order = schema order)."""
    names = [plane.name for plane in mask.schema if plane is not None]
    if len(names) > 31:
        names = names[:31]
    packed = np.zeros(mask.array.shape[:2], dtype=np.int32)
    planes: dict[str, int] = {}
    for bit, name in enumerate(names):
        packed |= mask.get(name).astype(np.int32) << bit
        planes[name] = bit
    return packed, planes


def _pad(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    planes: dict[str, int],
    inside: PixelBox,
    box: PixelBox,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    planes = dict(planes)
    if NO_DATA not in planes:
        planes[NO_DATA] = max(planes.values(), default=-1) + 1
    shape = box.shape
    full_image = np.full(shape, np.nan, dtype=np.float32)
    full_variance = np.full(shape, np.nan, dtype=np.float32)
    full_mask = np.full(shape, 1 << planes[NO_DATA], dtype=np.int32)
    sl = (
        slice(inside.y0 - box.y0, inside.y1 - box.y0),
        slice(inside.x0 - box.x0, inside.x1 - box.x0),
    )
    full_image[sl] = image
    full_variance[sl] = variance
    full_mask[sl] = mask
    return full_image, full_variance, full_mask, planes
