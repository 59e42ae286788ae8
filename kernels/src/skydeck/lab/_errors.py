"""Errors ``skydeck.lab`` raises; each message says what happened and what to do."""

from __future__ import annotations


class SkydeckError(RuntimeError):
    """Base class of the errors ``skydeck.lab`` raises."""


class ReleaseMissingError(SkydeckError, FileNotFoundError):
    """No data release (or not the part asked for) where the lab was told to look."""


class CatalogNotFoundError(SkydeckError, LookupError):
    """The release has no catalog of that name."""


class ServiceUnavailableError(SkydeckError, ConnectionError):
    """A platform service is not configured for this lab or does not answer."""


class LimitReachedError(SkydeckError):
    """The request goes beyond this user's limits (clusters, workers, memory...)."""


class LocalClusterWarning(UserWarning):
    """Dask runs inside the lab (no dask-gateway): small, and gone with the kernel."""
