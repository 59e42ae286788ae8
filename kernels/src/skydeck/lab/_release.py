"""The data release this lab was pointed at (through ``ReleaseLayout`` only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skydeck.lab._errors import ReleaseMissingError

if TYPE_CHECKING:
    from skydeck.catalog.release import ReleaseLayout


def require_release() -> ReleaseLayout:
    """The published release named by ``SKYDECK_RELEASE``, or a clear error."""
    from skydeck.catalog.release import ReleaseLayout, ReleaseNotFoundError

    try:
        layout = ReleaseLayout.from_env()
    except ReleaseNotFoundError as error:
        raise ReleaseMissingError(str(error)) from None
    if not layout.exists():
        raise ReleaseMissingError(
            f"No Skydeck data release is published at {layout.root} yet. If the platform was "
            "just installed it may still be building; otherwise ask your administrator to run "
            "`skydeck data build` (the lab needs no restart once it is published)."
        )
    return layout
