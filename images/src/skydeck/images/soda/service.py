"""The SODA cutout service: a JupyterHub managed service at ``/services/cutouts``.

``GET|POST /services/cutouts/sync?ID=<dataset uuid>&CIRCLE=<ra> <dec> <r>`` (or ``POS=...``)
answers a FITS file (IMAGE, MASK, VARIANCE HDUs, each with the WCS). Callers send
their hub token (``Authorization: token ...``), checked by the services' shared layer
(`skydeck.service`). Each request is counted by the quota service against the user's
``api.requests_per_minute.cutouts`` (429 with ``Retry-After`` beyond that,
``X-RateLimit-*`` headers always); when the quota service cannot be asked, cutouts are
refused (503), never served without a limit.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from skydeck.images.soda._service import (
    CutoutService,
    NotFound,
    Unavailable,
    UsageError,
    normalize_params,
)
from skydeck.images.soda._settings import ENV_PREFIX, CutoutSettings
from skydeck.service import (
    BACKEND_ENV,
    AuthError,
    HubTokenAuth,
    QuotaClient,
    QuotaUnavailable,
    RateDecision,
    RateLimited,
    exit_with_parent,
    token_from_header,
)

SERVICE_NAME = "cutouts"

#: Variables of the hub's environment the service needs when set (JupyterHub passes few).
FORWARDED_ENV = BACKEND_ENV

#: Largest request body accepted (a form with an ID and a region is a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    # DALI: errors are text/plain starting with the fault name.
    return PlainTextResponse(f"{kind}: {message}\n", status_code=status, headers=headers)


def create_app(settings: CutoutSettings | None = None) -> FastAPI:
    """The FastAPI application (a factory: settings -> auth, limiter, service)."""
    settings = settings or CutoutSettings()
    prefix = "/" + settings.prefix.strip("/")
    service_name = settings.service_name or SERVICE_NAME
    auth = HubTokenAuth(
        settings.hub_api_url or "",
        service_name,
        settings.token_cache_seconds,
        what="The cutout service",
    )
    quota = (
        QuotaClient(settings.quota_url, settings.hub_api_token, settings.quota_cache_seconds)
        if settings.quota_url
        else None
    )
    service = CutoutService(settings.butler_repo, settings.collections, settings.max_pixels)
    app = FastAPI(title="Skydeck cutouts (SODA)", docs_url=f"{prefix}/docs", openapi_url=None)

    async def rate(user: str) -> RateDecision:
        """Count the request with the quota service (unset: standalone, no rate)."""
        if quota is None:
            return RateDecision(True, None, None, 0)
        return await run_in_threadpool(quota.hit_rate, user, service_name)

    async def sync(request: Request) -> Response:
        try:
            user = await auth.user(token_from_header(request.headers.get("authorization")))
            if user.kind != "user":
                raise AuthError(403, "Cutouts are for users; this token belongs to a service.")
            decision = await rate(user.name)
        except AuthError as err:
            headers = {"WWW-Authenticate": "token"} if err.status == 401 else None
            return _error(err.status, "AuthenticationFault", err.message, headers)
        except RateLimited as err:
            return _error(429, "RateLimitFault", err.message, err.headers())
        except QuotaUnavailable as err:
            return _error(503, "ServiceUnavailable", f"{err.message}.", err.headers())
        headers = decision.headers()
        try:
            params = normalize_params(await _items(request))
            data, name = await run_in_threadpool(service.sync, params)
        except UsageError as err:
            return _error(400, "UsageFault", str(err), headers)
        except NotFound as err:
            return _error(404, "NotFoundFault", str(err), headers)
        except Unavailable as err:
            return _error(503, "ServiceUnavailable", str(err), headers)
        headers["Content-Disposition"] = f'inline; filename="{name}"'
        return Response(data, media_type="application/fits", headers=headers)

    app.add_api_route(f"{prefix}/sync", sync, methods=["GET", "POST"])

    @app.get(f"{prefix}/availability")
    def availability() -> Response:
        ok = os.path.exists(os.path.join(service.repo, "butler.yaml")) or "://" in service.repo
        body = (
            '<?xml version="1.0"?><vosi:availability xmlns:vosi='
            '"http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
            f"<vosi:available>{str(ok).lower()}</vosi:available></vosi:availability>"
        )
        return Response(body, media_type="text/xml")

    @app.get(prefix)
    @app.get(f"{prefix}/")
    def index() -> JSONResponse:
        return JSONResponse(
            {
                "service": "Skydeck cutouts (IVOA SODA 1.0, sync)",
                "sync": f"{prefix}/sync?ID=<dataset uuid>&CIRCLE=<ra> <dec> <radius deg>",
                "rate_limit": "per user, from the quota service (X-RateLimit-* headers)",
            }
        )

    return app


async def _items(request: Request) -> list[tuple[str, Any]]:
    """Query and form parameters; an oversized or undecodable body is a `UsageError`."""
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method != "POST":
        return items
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise UsageError("The Content-Length header is not a number.") from None
    if declared > MAX_BODY_BYTES:
        raise UsageError(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        form = await request.form(max_files=0)
    except Exception as err:  # starlette/multipart parse errors of a malformed body
        raise UsageError(f"The request body is not a valid form: {err}") from None
    return items + list(form.multi_items())


def hub_service(context: Any) -> dict[str, Any]:
    """The JupyterHub service definition (entry point ``cutouts`` in ``skydeck.services``)."""
    passthrough = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    # JupyterHub starts managed services with a minimal environment: the object store's
    # endpoint and credentials (a release on S3) and LSST_DB_AUTH (the credentials file of
    # a Butler registry in PostgreSQL) are handed on explicitly.
    passthrough |= {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    environment = {
        **passthrough,
        # a directory, or an object-store URI such as s3://bucket/release
        ENV_PREFIX + "RELEASE": str(context.release_dir),
        # ServiceContext.host: loopback under ``skydeck up``, all interfaces in a pod.
        ENV_PREFIX + "HOST": getattr(context, "host", "127.0.0.1"),
        ENV_PREFIX + "PORT": str(context.port),
        ENV_PREFIX + "HUB_API_URL": context.hub_api_url,
        ENV_PREFIX + "PREFIX": f"/services/{context.name}/",
        ENV_PREFIX + "SERVICE_NAME": context.name,
        # per-user request rates come from the quota service the hub runs
        ENV_PREFIX + "QUOTA_URL": f"{context.public_url.rstrip('/')}/services/quota/",
        # a hub killed outright cannot stop its services: this one then stops itself
        ENV_PREFIX + "EXIT_WITH_PARENT": "1",
    }
    return {
        "name": context.name,
        "command": [sys.executable, "-m", "skydeck.images.soda.service"],
        "environment": environment,
        "cwd": str(context.state_dir),
    }


def main() -> None:
    """Run the service (the managed service's command)."""
    import uvicorn

    settings = CutoutSettings()
    if settings.exit_with_parent:
        exit_with_parent()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
