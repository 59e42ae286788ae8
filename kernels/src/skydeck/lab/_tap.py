"""``get_tap_service``: the platform's TAP service, logged in as this lab's user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skydeck.lab._discovery import Discovery
from skydeck.lab._errors import ServiceUnavailableError

if TYPE_CHECKING:
    import pyvo


def get_tap_service(check: bool = True) -> pyvo.dal.TAPService:
    """A ``pyvo`` TAP service for the platform's catalogs, authenticated with your hub token.

    With ``check`` (the default) the service is asked for its capabilities
    first, so a service that is down fails here with a clear message.

    >>> from skydeck.lab import get_tap_service
    >>> tap = get_tap_service()  # doctest: +SKIP
    >>> tap.search("SELECT TOP 5 objectId, coord_ra, coord_dec FROM dp02.Object").to_table()
    ... # doctest: +SKIP
    """
    found = Discovery.from_env()
    if not found.tap_url:
        raise ServiceUnavailableError(
            "This lab was not given a TAP service (SKYDECK_TAP_URL is not set): the platform "
            "runs without one. Use open_catalog() for the same tables, or ask your "
            "administrator to enable the TAP service."
        )
    import pyvo
    import requests

    url = found.tap_url.rstrip("/")
    session = requests.Session()
    if found.api_token:
        session.headers["Authorization"] = f"token {found.api_token}"
    if check:
        try:
            response = session.get(f"{url}/capabilities", timeout=30)
        except requests.RequestException as error:
            raise ServiceUnavailableError(
                f"The TAP service at {url} does not answer ({error}). It may be restarting: "
                "try again in a minute; if it stays down, tell your administrator."
            ) from None
        if response.status_code in (401, 403):
            raise ServiceUnavailableError(
                f"The TAP service at {url} refused this lab's token ({response.status_code}). "
                "Restart your server from the hub's home page to get a fresh token."
            )
        if response.status_code >= 400:
            raise ServiceUnavailableError(
                f"The TAP service at {url} answered {response.status_code}. Try again in a "
                "minute; if it persists, tell your administrator."
            )
    return pyvo.dal.TAPService(url, session=session)
