"""The plumbing every Skydeck service shares (TAP, cutouts, the hub's own services).

- `HubTokenAuth`: hub tokens checked by JupyterHub's ``HubAuth`` (a revoked token
  stops working within `REVOCATION_SECONDS`);
- `QuotaClient`: the one client of the quota service; fails closed
  (`QuotaUnavailable`), counts request rates (`RateLimited`, `RateDecision`);
- `ServiceSettings`: the settings base; `BACKEND_ENV` & co.: what a service needs
  handed on from the hub's environment;
- `exit_with_parent`: a managed service stops when its hub is gone.

It imports no other Skydeck component, so the hub, the catalog and the images may all
use it.
"""

from ._auth import REVOCATION_SECONDS, AuthError, HubTokenAuth, HubUser, token_from_header
from ._lifetime import exit_with_parent
from ._quota import UNAVAILABLE, QuotaClient, QuotaUnavailable, RateLimited, user_path
from ._rate import RateDecision
from ._settings import BACKEND_ENV, BUTLER_REGISTRY_ENV, OBJECT_STORE_ENV, ServiceSettings

__all__ = [
    "BACKEND_ENV",
    "BUTLER_REGISTRY_ENV",
    "OBJECT_STORE_ENV",
    "REVOCATION_SECONDS",
    "UNAVAILABLE",
    "AuthError",
    "HubTokenAuth",
    "HubUser",
    "QuotaClient",
    "QuotaUnavailable",
    "RateDecision",
    "RateLimited",
    "ServiceSettings",
    "exit_with_parent",
    "token_from_header",
    "user_path",
]
