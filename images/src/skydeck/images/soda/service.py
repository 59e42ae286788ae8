"""The SODA cutout service: a JupyterHub managed service at ``/services/cutouts``.

``GET|POST /services/cutouts/sync?ID=<dataset uuid>&CIRCLE=<ra> <dec> <r>`` (or ``POS=...``)
answers a FITS file (IMAGE, MASK, VARIANCE HDUs, each with the WCS). Callers send
their hub token (``Authorization: token ...``); each user may make
``SKYDECK_CUTOUTS_RATE_LIMIT`` requests per ``SKYDECK_CUTOUTS_RATE_WINDOW`` seconds
(429 with ``Retry-After`` beyond that, ``X-RateLimit-*`` headers always).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from skydeck.catalog.lifetime import exit_with_parent
from skydeck.catalog.release import BUTLER_REGISTRY_ENV, OBJECT_STORE_ENV
from skydeck.images.soda._auth import AuthError, HubTokenChecker, token_from_header
from skydeck.images.soda._ratelimit import RateLimiter
from skydeck.images.soda._service import (
    CutoutService,
    NotFound,
    Unavailable,
    UsageError,
    normalize_params,
)
from skydeck.images.soda._settings import ENV_PREFIX, CutoutSettings

SERVICE_NAME = "cutouts"

#: Variables of the hub's environment the service needs when set (JupyterHub passes few).
FORWARDED_ENV = (*OBJECT_STORE_ENV, *BUTLER_REGISTRY_ENV)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    # DALI: errors are text/plain starting with the fault name.
    return PlainTextResponse(f"{kind}: {message}\n", status_code=status, headers=headers)


def create_app(settings: CutoutSettings | None = None) -> FastAPI:
    """The FastAPI application (a factory: settings -> auth, limiter, service)."""
    settings = settings or CutoutSettings()
    prefix = "/" + settings.prefix.strip("/")
    checker = HubTokenChecker(
        settings.hub_api_url, settings.service_name, settings.token_cache_seconds
    )
    limiter = RateLimiter(settings.rate_limit, settings.rate_window)
    service = CutoutService(settings.butler_repo, settings.collections, settings.max_pixels)
    app = FastAPI(title="Skydeck cutouts (SODA)", docs_url=f"{prefix}/docs", openapi_url=None)

    async def sync(request: Request) -> Response:
        token = token_from_header(request.headers.get("authorization"))
        try:
            user = checker.user(token)
        except AuthError as err:
            headers = {"WWW-Authenticate": "token"} if err.status == 401 else None
            return _error(err.status, "AuthenticationFault", str(err), headers)
        decision = limiter.check(user.name)
        headers = decision.headers()
        if not decision.allowed:
            return _error(
                429,
                "RateLimitFault",
                f"{user.name} made {decision.limit} cutout requests in the last "
                f"{settings.rate_window:g} s; retry after {decision.reset_seconds} s.",
                headers,
            )
        items: list[tuple[str, Any]] = list(request.query_params.multi_items())
        if request.method == "POST":
            form = await request.form()
            items += [(k, v) for k, v in form.multi_items()]
        try:
            from starlette.concurrency import run_in_threadpool

            data, name = await run_in_threadpool(service.sync, normalize_params(items))
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
                "rate_limit": {"requests": settings.rate_limit, "window_s": settings.rate_window},
            }
        )

    return app


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
