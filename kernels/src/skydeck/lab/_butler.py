"""``get_butler``: the release's Butler repository, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skydeck.lab._errors import ReleaseMissingError
from skydeck.lab._release import require_release

if TYPE_CHECKING:
    from lsst.daf.butler import Butler


def get_butler(collections: str | list[str] | None = None, **kwargs: Any) -> Butler:
    """A read-only Butler on the data release's image repository.

    ``collections`` defaults to the release's processed outputs (which chain in
    all inputs); other keyword arguments go to ``Butler.from_config``.

    >>> from skydeck.lab import get_butler
    >>> butler = get_butler()  # doctest: +SKIP
    >>> refs = butler.query_datasets("deepCoadd", limit=3)  # doctest: +SKIP
    """
    layout = require_release()
    repo = layout.butler_repo
    if not (repo / "butler.yaml").exists():
        raise ReleaseMissingError(
            f"The data release at {layout.root} has no Butler repository ({repo} is missing); "
            "it was published without images. Ask your administrator to rebuild it with "
            "`skydeck data build`."
        )
    from lsst.daf.butler import Butler

    if collections is None:
        collections = layout.read_manifest().get("butler", {}).get("collection")
    if collections is None:
        from skydeck.images.release.butler_repo import DEFAULT_COLLECTION

        collections = DEFAULT_COLLECTION
    return Butler.from_config(str(repo), collections=collections, writeable=False, **kwargs)
