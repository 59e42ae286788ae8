"""The FastAPI application: thin handlers over `QueryService` and `JobService`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from skydeck.catalog.release import ReleaseLayout, ReleaseNotFoundError
from skydeck.service import (
    AuthError,
    HubTokenAuth,
    QuotaUnavailable,
    RateLimited,
    token_from_header,
)
from skydeck.service import QuotaClient as SharedQuotaClient

from . import _vosi
from ._body import BodyLimit
from ._engine import Engine
from ._formats import error_votable
from ._quota import QuotaClient
from ._service import JobService, QueryService, TapError
from ._store import JobRecord, JobStore
from .config import TapSettings

log = logging.getLogger(__name__)

#: The user of a TAP service running without hub authentication (standalone use).
ANONYMOUS = "anonymous"

#: Seconds a client is told to wait after "too many queries running at once".
BUSY_RETRY_SECONDS = 5

#: where a running query leaves the functions that interrupt it
Interrupts = list[Callable[[], None]]

XML = "text/xml"
VOTABLE = "application/x-votable+xml"


@dataclass
class Services:
    """What the factory wires together and the handlers use."""

    settings: TapSettings
    engine: Engine
    queries: QueryService
    jobs: JobService
    auth: HubTokenAuth | None


def _services(request: Request) -> Services:
    services: Services | None = request.app.state.services
    if services is None:
        # No release when the service started: try again, so a release published by
        # `skydeck data build` while the platform runs is served without a restart.
        services = request.app.state.connect()
    return services


async def _user(request: Request) -> str:
    services = _services(request)
    if services.auth is None:
        return ANONYMOUS
    token = token_from_header(request.headers.get("authorization"))
    return (await services.auth.user(token)).name


User = Annotated[str, Depends(_user)]
Svc = Annotated[Services, Depends(_services)]


def _base(request: Request, services: Services) -> str:
    return str(request.base_url).rstrip("/") + services.settings.path_prefix


async def _params(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """TAP parameters (names case-insensitive -> upper case) and uploaded file parts."""
    params = {k.upper(): v for k, v in request.query_params.items()}
    files: dict[str, bytes] = {}
    if request.method == "POST":
        settings: TapSettings = request.app.state.settings
        form = await request.form(max_fields=settings.max_parameters)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await _read_upload(value, settings.max_upload_bytes)
            else:
                params[key.upper()] = str(value)
    return params, files


async def _read_upload(part: UploadFile, limit: int) -> bytes:
    if part.size is not None and part.size > limit:
        raise TapError(f"Uploaded file {part.filename} is larger than the {limit}-byte limit.", 413)
    return await part.read()


async def _until_disconnected(request: Request) -> None:
    """Return when the client has gone away (the request body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _cancellable[T](request: Request, work: Callable[[Interrupts], T]) -> T:
    """Run ``work`` in a thread; interrupt its query when the client disconnects."""
    interrupts: Interrupts = []
    running = asyncio.ensure_future(run_in_threadpool(work, interrupts))
    gone = asyncio.ensure_future(_until_disconnected(request))
    try:
        await asyncio.wait({running, gone}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done() and not running.done():
            log.info("client went away; interrupting its query")
            for interrupt in interrupts:
                interrupt()
        return await running
    finally:
        gone.cancel()


def _error(message: str, status: int = 400) -> Response:
    return Response(error_votable(message), status_code=status, media_type=VOTABLE)


router = APIRouter()


@router.api_route("/sync", methods=["GET", "POST"])
async def sync(request: Request, user: User, services: Svc) -> Response:
    params, files = await _params(request)
    body, mime = await _cancellable(
        request, lambda i: services.queries.sync(user, params, files, i.append)
    )
    return Response(body, media_type=mime)


@router.get("/availability")
async def availability(request: Request) -> Response:
    try:
        await run_in_threadpool(_services, request)
    except TapError as error:
        return Response(_vosi.availability(False, error.message), media_type=XML)
    return Response(
        _vosi.availability(True, "Serving the HATS catalogs of the release."), media_type=XML
    )


@router.get("/capabilities")
async def capabilities(request: Request, services: Svc) -> Response:
    doc = _vosi.capabilities(_base(request, services), services.settings, [])
    return Response(doc, media_type=XML)


@router.get("/tables")
async def tables(request: Request, services: Svc) -> Response:
    detail = request.query_params.get("detail", "max").lower() != "min"
    return Response(_vosi.tableset(services.engine.schemas, detail), media_type=XML)


@router.get("/tables/{name}")
async def table(name: str, services: Svc) -> Response:
    for info in services.engine.all_tables():
        if info.name.lower() == name.lower():
            return Response(_vosi.single_table(info), media_type=XML)
    return PlainTextResponse(f"No table {name}; see /tables for the list.", status_code=404)


@router.get("/examples")
async def examples(request: Request, services: Svc) -> Response:
    return Response(_vosi.examples(_base(request, services)), media_type="application/xhtml+xml")


@router.get("/async")
async def list_jobs(request: Request, user: User, services: Svc) -> Response:
    phases = [p.upper() for p in request.query_params.getlist("PHASE")]
    after_text = request.query_params.get("AFTER")
    last_text = request.query_params.get("LAST")
    try:
        after = datetime.fromisoformat(after_text.replace("Z", "+00:00")) if after_text else None
        last = int(last_text) if last_text else None
    except ValueError:
        raise TapError("AFTER must be an ISO 8601 time and LAST a positive integer.") from None
    if last is not None and last <= 0:
        raise TapError("LAST must be a positive integer.")
    jobs = await run_in_threadpool(services.jobs.list, user, phases, after, last)
    return Response(_vosi.jobs_document(jobs, _base(request, services)), media_type=XML)


@router.post("/async")
async def create_job(request: Request, user: User, services: Svc) -> Response:
    params, files = await _params(request)
    job = await run_in_threadpool(services.jobs.create, user, params, files)
    return RedirectResponse(f"{_base(request, services)}/async/{job.job_id}", status_code=303)


async def _job(job_id: str, user: str, services: Services) -> JobRecord:
    return await run_in_threadpool(services.jobs.get, job_id, user)


@router.get("/async/{job_id}")
async def get_job(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    wait = request.query_params.get("WAIT")
    if wait is not None:
        try:
            seconds = float(wait)
        except ValueError:
            raise TapError("WAIT must be a number of seconds.") from None
        wanted = request.query_params.get("PHASE")
        if wanted is None or wanted.upper() == job.phase:
            job = await services.jobs.wait(job, seconds, user)
    return Response(_vosi.job_document(job, _base(request, services)), media_type=XML)


@router.post("/async/{job_id}")
async def post_job(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    params, files = await _params(request)
    if params.get("ACTION", "").upper() == "DELETE":
        await run_in_threadpool(services.jobs.delete, job)
        return RedirectResponse(f"{_base(request, services)}/async", status_code=303)
    await run_in_threadpool(services.jobs.set_parameters, job, params, files)
    return RedirectResponse(f"{_base(request, services)}/async/{job_id}", status_code=303)


@router.delete("/async/{job_id}")
async def delete_job(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    await run_in_threadpool(services.jobs.delete, job)
    return RedirectResponse(f"{_base(request, services)}/async", status_code=303)


@router.get("/async/{job_id}/phase")
async def get_phase(job_id: str, user: User, services: Svc) -> Response:
    return PlainTextResponse((await _job(job_id, user, services)).phase)


@router.post("/async/{job_id}/phase")
async def post_phase(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    params, _ = await _params(request)
    phase = params.get("PHASE", "").upper()
    if phase == "RUN":
        await run_in_threadpool(services.jobs.start, job)
    elif phase == "ABORT":
        await run_in_threadpool(services.jobs.abort, job)
    else:
        raise TapError("PHASE must be RUN or ABORT.")
    return RedirectResponse(f"{_base(request, services)}/async/{job_id}", status_code=303)


@router.get("/async/{job_id}/executionduration")
async def get_duration(job_id: str, user: User, services: Svc) -> Response:
    return PlainTextResponse(str((await _job(job_id, user, services)).execution_duration))


@router.post("/async/{job_id}/executionduration")
async def post_duration(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    params, _ = await _params(request)
    await run_in_threadpool(services.jobs.set_duration, job, params.get("EXECUTIONDURATION", ""))
    return RedirectResponse(f"{_base(request, services)}/async/{job_id}", status_code=303)


@router.get("/async/{job_id}/destruction")
async def get_destruction(job_id: str, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    return PlainTextResponse(_vosi._ts(job.destruction) or "")


@router.post("/async/{job_id}/destruction")
async def post_destruction(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    params, _ = await _params(request)
    await run_in_threadpool(services.jobs.set_destruction, job, params.get("DESTRUCTION", ""))
    return RedirectResponse(f"{_base(request, services)}/async/{job_id}", status_code=303)


@router.get("/async/{job_id}/quote")
async def get_quote(job_id: str, user: User, services: Svc) -> Response:
    await _job(job_id, user, services)
    return PlainTextResponse("")


@router.get("/async/{job_id}/owner")
async def get_owner(job_id: str, user: User, services: Svc) -> Response:
    return PlainTextResponse((await _job(job_id, user, services)).owner)


@router.get("/async/{job_id}/parameters")
async def get_parameters(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    doc = _vosi.job_document(job, _base(request, services))
    start, end = doc.find("<uws:parameters"), doc.find("</uws:parameters>")
    if start < 0:
        body = '<uws:parameters xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"/>'
    else:
        body = doc[start : end + len("</uws:parameters>")].replace(
            "<uws:parameters", '<uws:parameters xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"', 1
        )
    return Response(body, media_type=XML)


@router.post("/async/{job_id}/parameters")
async def post_parameters(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    params, files = await _params(request)
    await run_in_threadpool(services.jobs.set_parameters, job, params, files)
    return RedirectResponse(f"{_base(request, services)}/async/{job_id}", status_code=303)


@router.get("/async/{job_id}/error")
async def get_error(job_id: str, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    if job.phase != "ERROR":
        return PlainTextResponse(f"Job {job_id} is {job.phase}; it has no error.", status_code=404)
    return Response(error_votable(job.error or "unknown error"), media_type=VOTABLE)


@router.get("/async/{job_id}/results")
async def get_results(job_id: str, request: Request, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    doc = _vosi.job_document(job, _base(request, services))
    start, end = doc.find("<uws:results"), doc.find("</uws:results>")
    if start < 0 or end < 0:
        body = '<uws:results xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"/>'
    else:
        body = doc[start : end + len("</uws:results>")].replace(
            "<uws:results",
            '<uws:results xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
            'xmlns:xlink="http://www.w3.org/1999/xlink"',
            1,
        )
    return Response(body, media_type=XML)


@router.get("/async/{job_id}/results/result")
async def get_result(job_id: str, user: User, services: Svc) -> Response:
    job = await _job(job_id, user, services)
    if job.phase != "COMPLETED" or not job.result_path or not Path(job.result_path).exists():
        return PlainTextResponse(
            f"Job {job_id} is {job.phase}; it has no result (yet).", status_code=404
        )
    return FileResponse(job.result_path, media_type=job.result_mime or VOTABLE)


@router.get("/")
async def root(request: Request) -> Response:
    # Answers without a release too: JupyterHub checks a managed service's health here.
    base = str(request.base_url).rstrip("/") + request.app.state.settings.path_prefix
    links = "".join(
        f'<li><a href="{base}/{p}">{p}</a></li>'
        for p in ("capabilities", "availability", "tables", "examples", "async")
    )
    return Response(
        f"<html><body><h1>Skydeck TAP</h1><p>TAP 1.1 endpoint: {base}</p><ul>{links}</ul>"
        "</body></html>",
        media_type="text/html",
    )


def build_services(settings: TapSettings) -> Services:
    """Wire engine, storage and services from settings."""
    layout = ReleaseLayout.at(settings.require_release())
    engine = Engine(
        layout,
        threads=settings.duckdb_threads,
        memory_limit=settings.duckdb_memory_limit,
        query_memory_limit=settings.query_memory_limit,
        temp_directory=settings.data_dir / "duckdb-tmp",
        max_temp_size=settings.max_temp_size,
        schema_names=settings.schema_names,
    )
    if settings.dask_scheduler:
        from ._fanout import FanOut

        engine.fanout = FanOut(engine, settings.dask_scheduler)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.resolved_database_url)
    quota = None
    if settings.quota_url:
        shared = SharedQuotaClient(
            settings.quota_url, settings.hub_api_token, settings.quota_cache_seconds
        )
        quota = QuotaClient(shared)
    queries = QueryService(settings, engine, quota)
    jobs = JobService(settings, queries, store)
    auth = None
    if settings.auth == "hub":
        assert settings.hub_api_url is not None
        auth = HubTokenAuth(
            settings.hub_api_url,
            settings.service_name,
            settings.token_cache_seconds,
            what="This TAP service",
        )
    return Services(settings, engine, queries, jobs, auth)


async def close_services(services: Services) -> None:
    """Stop running jobs and close every connection the services hold."""
    await run_in_threadpool(services.jobs.shutdown)
    services.jobs.store.close()
    if services.engine.fanout is not None:
        services.engine.fanout.close()
    if services.queries.quota is not None:
        services.queries.quota.close()


def create_app(settings: TapSettings | None = None) -> FastAPI:
    """The TAP application for ``settings`` (default: from the environment)."""
    settings = settings or TapSettings()

    connect_lock = threading.Lock()

    def connect() -> Services:
        """Wire the services; without a published release, answer 503 saying what to do."""
        with connect_lock:
            if app.state.services is None:
                try:
                    services = build_services(settings)
                except ReleaseNotFoundError as error:
                    raise TapError(
                        f"{error} The TAP service starts serving it then.", 503
                    ) from error
                services.jobs.recover()
                app.state.services = services
            return app.state.services

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = None
        app.state.connect = connect
        with contextlib.suppress(TapError):
            await run_in_threadpool(connect)
        if app.state.services is None:
            log.warning("no data release yet; TAP answers 503 until one is published")

        async def purge() -> None:
            while True:
                try:
                    if app.state.services is not None:
                        await run_in_threadpool(app.state.services.jobs.purge_expired)
                except Exception:  # the sweeper must survive a database hiccup
                    log.exception("purging expired jobs failed")
                await asyncio.sleep(60)

        sweeper = asyncio.create_task(purge())
        try:
            yield
        finally:
            sweeper.cancel()
            services: Services | None = app.state.services
            if services is not None:
                await close_services(services)

    app = FastAPI(title="Skydeck TAP", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings

    @app.exception_handler(TapError)
    async def tap_error(request: Request, error: TapError) -> Response:
        response = _error(error.message, error.status)
        if error.status == 429:  # too many queries running at once
            response.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
        return response

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, error: AuthError) -> Response:
        response = _error(error.message, error.status)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="skydeck"'
        return response

    @app.exception_handler(RateLimited)
    @app.exception_handler(QuotaUnavailable)
    async def refused(request: Request, error: RateLimited | QuotaUnavailable) -> Response:
        response = _error(error.message, error.status)
        response.headers.update(error.headers())
        return response

    app.include_router(router, prefix=settings.path_prefix)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)

    @app.middleware("http")
    async def collapse_slashes(request: Request, call_next: Any) -> Response:
        # clients join "<url>/" + "/sync" (SKYDECK_TAP_URL ends with a slash); accept both
        path = request.scope["path"]
        if "//" in path:
            request.scope["path"] = re.sub("/{2,}", "/", path)
        response: Response = await call_next(request)
        return response

    return app
