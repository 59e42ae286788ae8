"""``open_catalog`` and ``list_catalogs``: the release's HATS catalogs through lsdb."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skydeck.lab._errors import CatalogNotFoundError, ReleaseMissingError
from skydeck.lab._release import require_release

if TYPE_CHECKING:
    import lsdb
    import pandas as pd
    from upath import UPath

    from skydeck.catalog.release import CatalogEntry, ReleaseLayout

COLLECTION_PROPERTIES = "collection.properties"


def _find(layout: ReleaseLayout, name: str) -> CatalogEntry:
    entries = {entry.name: entry for entry in layout.catalogs()}
    if name in entries:
        return entries[name]
    folded = {key.lower(): entry for key, entry in entries.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    known = ", ".join(sorted(entries)) or "none"
    raise CatalogNotFoundError(
        f"The data release has no catalog named {name!r} (published: {known}). "
        "list_catalogs() shows each with a description and row count."
    )


def _margin_path(layout: ReleaseLayout, entry: CatalogEntry, path: UPath) -> UPath | None:
    """The margin cache published with ``entry``, if any.

    A HATS collection brings its own default margin.  Otherwise the manifest may
    name one (``catalogs.<name>.margin``, relative to the release), or the build
    published it beside the catalog as ``<name>_<radius>arcs`` (hats-import's
    naming); with several, the widest is used.
    """
    if (path / COLLECTION_PROPERTIES).exists():
        return None
    margin = entry.extra.get("margin")
    if margin:
        candidate = layout.root / str(margin)
        return candidate if candidate.exists() else None
    found: list[tuple[float, UPath]] = []
    for candidate in path.parent.glob(f"{entry.name}_*arcs"):
        radius = candidate.name[len(entry.name) + 1 : -len("arcs")]
        try:
            width = float(radius)
        except ValueError:
            continue
        if (candidate / "hats.properties").exists():
            found.append((width, candidate))
    return max(found, key=lambda item: item[0])[1] if found else None


def open_catalog(name: str, **kwargs: Any) -> lsdb.Catalog:
    """Open a published catalog (``Object``, ``Source``, ``gaia_dr3``, ...) as an lsdb catalog.

    The catalog's margin cache is attached when the release has one, so
    crossmatches are right at partition edges.  Keyword arguments go to
    ``lsdb.open_catalog`` (``columns=``, ``search_filter=``, ``margin_cache=``...).

    >>> from skydeck.lab import open_catalog
    >>> objects = open_catalog("Object", columns=["objectId", "coord_ra", "coord_dec"])
    ... # doctest: +SKIP
    >>> objects.cone_search(ra=55.9, dec=-30.0, radius_arcsec=60).compute()  # doctest: +SKIP
    """
    layout = require_release()
    entry = _find(layout, name)
    path = layout.root / entry.path
    if not path.exists():
        raise ReleaseMissingError(
            f"The release lists catalog {entry.name!r} but {path} is missing: the release is "
            "incomplete. Ask your administrator to rebuild it with `skydeck data build`."
        )
    if "margin_cache" not in kwargs:
        margin = _margin_path(layout, entry, path)
        if margin is not None:
            kwargs["margin_cache"] = margin
    import lsdb

    return lsdb.open_catalog(path, **kwargs)


def list_catalogs() -> pd.DataFrame:
    """The published catalogs: name, description, row count (from the release manifest).

    >>> from skydeck.lab import list_catalogs
    >>> list_catalogs()  # doctest: +SKIP
                                       description    rows
    name
    Object        Coadd detections and measurements  123456
    gaia_dr3      Gaia DR3 stars in the release area    4567
    """
    import pandas as pd

    layout = require_release()
    rows = [
        {"name": entry.name, "description": entry.description, "rows": entry.rows}
        for entry in layout.catalogs()
    ]
    frame = pd.DataFrame(rows, columns=["name", "description", "rows"])
    return frame.set_index("name")
