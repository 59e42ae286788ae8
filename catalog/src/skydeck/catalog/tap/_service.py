"""Services: TAP requests -> queries and UWS jobs.  Every protocol decision lives here."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import secrets
import shutil
import threading
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ._adql import AdqlError
from ._engine import Engine, QueryResult, parse_size
from ._formats import OutputFormat, find_format, serialise
from ._quota import Limits, QuotaClient, QuotaUnavailable, combine
from ._store import JobRecord, JobStore
from .config import TapSettings

log = logging.getLogger(__name__)

ACTIVE_PHASES = {"PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED"}
FINAL_PHASES = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}
#: An UPLOAD table name: a plain ADQL identifier, so it can never be a path.
UPLOAD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
#: A parameter name: letters, digits, '_', '.', '-' (TAP and UWS names, RUNID, ...).
PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: Most characters of a RUNID (the job database keeps 255).
MAX_RUNID = 255


class TapError(Exception):
    """A request the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class QueryRequest:
    """The TAP parameters of one query, validated."""

    query: str
    maxrec: int
    fmt: OutputFormat
    upload: str | None


def _interrupt(interrupt: Callable[[], None]) -> None:
    """Stop a running DuckDB query; it may have just finished and closed its cursor."""
    with contextlib.suppress(duckdb.Error):
        interrupt()


def _now() -> datetime:
    return datetime.now(UTC)


class UserLimits:
    """Per-user concurrency: at most N queries of one user run at once."""

    def __init__(self) -> None:
        self._running: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def acquire(self, user: str, limit: int) -> None:
        with self._lock:
            if self._running[user] >= limit:
                raise TapError(
                    f"You already have {limit} queries running, the most allowed at once. "
                    "Wait for one to finish, or submit this one as an async job.",
                    status=429,
                )
            self._running[user] += 1

    def release(self, user: str) -> None:
        with self._lock:
            self._running[user] = max(0, self._running[user] - 1)


class QueryService:
    """Runs TAP queries: parameter checks, uploads, limits, execution, serialisation."""

    def __init__(
        self, settings: TapSettings, engine: Engine, quota: QuotaClient | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.quota = quota
        self.running = UserLimits()

    def limits_for(self, user: str, sync: bool) -> Limits:
        """The configured limits, tightened by the user's quota when a quota service is set."""
        s = self.settings
        duration = s.sync_timeout if sync else s.async_max_duration
        quota = self.quota.tap_quota(user) if self.quota is not None else None
        return combine(s.max_concurrent_per_user, s.max_maxrec, duration, quota)

    def memory_for(self, user: str) -> str:
        """Memory of one query's intermediates for ``user``: configuration, or less by quota."""
        configured = self.settings.query_memory_limit
        if self.quota is None:
            return configured
        gib = self.quota.tap_quota(user).get("memory_gib")
        if gib is None:
            return configured
        quota_bytes = int(float(gib) * 2**30)
        configured_bytes = parse_size(configured)
        if configured_bytes is not None and configured_bytes <= quota_bytes:
            return configured
        return f"{max(quota_bytes // 2**20, 1)}MiB"

    def check_parameters(self, params: dict[str, str]) -> dict[str, str]:
        """The parameters to use: too many or too long refused, oddly named ones dropped.

        A name no TAP or UWS parameter has (JupyterLab's cache-busting ``?1796530704777``,
        say) is ignored, as DALI asks of unknown parameters, and never stored.
        """
        s = self.settings
        if len(params) > s.max_parameters:
            raise TapError(
                f"The request has {len(params)} parameters; at most {s.max_parameters} are "
                "accepted.",
                413,
            )
        params = {k: v for k, v in params.items() if PARAMETER_NAME.fullmatch(k)}
        for name, value in params.items():
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > s.max_parameter_bytes:
                raise TapError(
                    f"Parameter {name} is {size} bytes long; at most {s.max_parameter_bytes} are "
                    "accepted. Upload long lists of values as a table (UPLOAD) instead.",
                    413,
                )
        if len(params.get("RUNID", "")) > MAX_RUNID:
            raise TapError(f"RUNID is longer than {MAX_RUNID} characters.")
        return params

    def count_request(self, user: str) -> None:
        # over the rate: RateLimited, answered 429 with Retry-After (app.py)
        if self.quota is not None:
            self.quota.count_request(user)

    def parse(self, params: dict[str, str], limits: Limits | None = None) -> QueryRequest:
        lang = params.get("LANG", "ADQL").strip().upper()
        if lang not in {"ADQL", "ADQL-2.0", "ADQL-2.1"}:
            raise TapError(f"LANG={params.get('LANG')} is not supported; use LANG=ADQL.")
        request = params.get("REQUEST", "doQuery")
        if request.lower() != "doquery":
            raise TapError(f"REQUEST={request} is not supported; use REQUEST=doQuery (or omit it).")
        query = params.get("QUERY")
        if not query or not query.strip():
            raise TapError("The QUERY parameter is missing: give an ADQL query in QUERY.")
        ceiling = limits.maxrec if limits is not None else self.settings.max_maxrec
        maxrec = min(self.settings.default_maxrec, ceiling)
        if params.get("MAXREC", "").strip():
            try:
                maxrec = int(params["MAXREC"])
            except ValueError:
                raise TapError(f"MAXREC={params['MAXREC']} is not an integer.") from None
            if maxrec < 0:
                raise TapError("MAXREC must be zero or positive.")
        maxrec = min(maxrec, ceiling)
        try:
            fmt = find_format(params.get("RESPONSEFORMAT") or params.get("FORMAT"))
        except ValueError as error:
            raise TapError(str(error)) from None
        return QueryRequest(query=query, maxrec=maxrec, fmt=fmt, upload=params.get("UPLOAD"))

    def load_uploads(self, spec: str | None, files: dict[str, bytes]) -> dict[str, pa.Table]:
        """UPLOAD=name,param:field;name2,https://... -> tables by name."""
        if not spec:
            return {}
        tables: dict[str, pa.Table] = {}
        for item in spec.split(";"):
            if not item.strip():
                continue
            name, _, source = item.partition(",")
            name, source = name.strip(), source.strip()
            if not UPLOAD_NAME.fullmatch(name):
                raise TapError(
                    f"UPLOAD table name '{name[:80]}' is not accepted: use a letter followed by "
                    "letters, digits or '_' (at most 64), e.g. UPLOAD=mytable,param:file1, and "
                    "query it as TAP_UPLOAD.mytable."
                )
            if name.lower() in {t.lower() for t in tables}:
                raise TapError(f"UPLOAD names table {name} twice; give each table its own name.")
            if source.startswith("param:"):
                field = source[len("param:") :]
                if field not in files:
                    raise TapError(
                        f"UPLOAD names form field '{field}', but the request has no such file part."
                    )
                content = files[field]
            elif source.startswith(("http://", "https://")):
                content = self._fetch(source)
            else:
                raise TapError(
                    f"UPLOAD source '{source}' is not understood: use param:<field> for an inline "
                    "VOTable (or an http(s) URL if the operator allows that host)."
                )
            if len(content) > self.settings.max_upload_bytes:
                raise TapError(
                    f"UPLOAD {name} is {len(content)} bytes; the limit is "
                    f"{self.settings.max_upload_bytes}.",
                    status=413,
                )
            tables[name] = self._votable_to_arrow(name, content)
        return tables

    def _fetch(self, url: str) -> bytes:
        host = urlparse(url).hostname or ""
        if host not in self.settings.upload_allowed_hosts:
            raise TapError(
                f"UPLOAD from {url} refused: this service fetches URLs only from hosts the "
                "operator allows (SKYDECK_TAP_UPLOAD_ALLOWED_HOSTS). Upload the table inline "
                "instead (UPLOAD=name,param:field with the VOTable as a multipart file).",
                status=403,
            )
        import httpx

        with httpx.stream("GET", url, timeout=30, follow_redirects=False) as response:
            response.raise_for_status()
            chunks = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.settings.max_upload_bytes:
                    raise TapError("UPLOAD larger than the configured limit.", status=413)
                chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _votable_to_arrow(name: str, content: bytes) -> pa.Table:
        from astropy.io.votable import parse_single_table

        try:
            table = parse_single_table(io.BytesIO(content)).to_table(use_names_over_ids=True)
        except Exception as error:
            raise TapError(f"UPLOAD {name} is not a readable VOTable: {error}") from None
        arrays = []
        fields = []
        for colname in table.colnames:
            column = table[colname]
            data = column.filled() if hasattr(column, "filled") else column
            mask = getattr(column, "mask", None)
            values = data.tolist() if data.dtype.kind == "O" else data
            array = pa.array(values, mask=None if mask is None or data.dtype.kind == "O" else mask)
            meta = column.meta or {}
            described = {
                "unit": str(column.unit or ""),
                "ucd": str(meta.get("ucd", "") or ""),
                "xtype": str(meta.get("xtype", "") or ""),
            }
            arrays.append(array)
            fields.append(pa.field(colname, array.type, metadata=described))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def run(
        self,
        user: str,
        request: QueryRequest,
        uploads: dict[str, pa.Table],
        limits: Limits,
        on_cursor: Callable[[Callable[[], None]], None] | None = None,
    ) -> QueryResult:
        memory = self.memory_for(user)
        self.running.acquire(user, limits.concurrent)
        try:
            return self.engine.execute(
                request.query,
                maxrec=request.maxrec,
                uploads=uploads,
                timeout=limits.execution_seconds,
                on_cursor=on_cursor,
                memory_limit=memory,
            )
        finally:
            self.running.release(user)

    def render(self, request: QueryRequest, result: QueryResult) -> bytes:
        return serialise(
            request.fmt,
            result.table,
            result.columns,
            overflow=result.overflow,
            infos=[("QUERY", request.query)],
        )

    def sync(
        self,
        user: str,
        params: dict[str, str],
        files: dict[str, bytes],
        on_cursor: Callable[[Callable[[], None]], None] | None = None,
    ) -> tuple[bytes, str]:
        """Run a /sync query; the serialised result and its MIME type.

        ``on_cursor`` receives the function that interrupts the query (the handler calls it
        when the client goes away).
        """
        params = self.check_parameters(params)
        self.count_request(user)
        limits = self.limits_for(user, sync=True)
        request = self.parse(params, limits)
        uploads = self.load_uploads(request.upload, files)

        def quietly(interrupt: Callable[[], None]) -> None:
            if on_cursor is not None:
                on_cursor(lambda: _interrupt(interrupt))

        try:
            result = self.run(user, request, uploads, limits, quietly)
        except AdqlError as error:
            raise TapError(error.message, error.status) from None
        return self.render(request, result), request.fmt.mime


class JobService:
    """The UWS job lifecycle over a `JobStore`, executing jobs on a thread pool."""

    def __init__(self, settings: TapSettings, queries: QueryService, store: JobStore) -> None:
        self.settings = settings
        self.queries = queries
        self.store = store
        self.results_dir = settings.data_dir / "results"
        self.uploads_dir = settings.data_dir / "uploads"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._scheduler = FairScheduler(settings.async_workers, self._execute)
        self._interrupts: dict[str, Callable[[], None]] = {}
        self._closing = False
        self._lock = threading.Lock()

    # ----- lifecycle ---------------------------------------------------------------------
    def recover(self) -> None:
        """After a restart: queued jobs run again, interrupted ones are marked as errors."""
        for job in self.store.find(phases=["EXECUTING"]):
            self.store.update(
                job.job_id,
                phase="ERROR",
                end_time=_now(),
                error="The TAP service restarted while this job was executing. Run it again.",
            )
        for job in self.store.find(phases=["QUEUED"]):
            self._scheduler.submit(job.owner, job.job_id)

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True  # a job starting from now on is interrupted at once
            interrupts = list(self._interrupts.values())
        for interrupt in interrupts:
            _interrupt(interrupt)
        self._scheduler.shutdown()

    def purge_expired(self) -> int:
        expired = self.store.expired(_now())
        for job in expired:
            self.delete(job)
        return len(expired)

    # ----- operations -----------------------------------------------------------------
    def create(self, owner: str, params: dict[str, str], files: dict[str, bytes]) -> JobRecord:
        params = self.queries.check_parameters(params)
        self.queries.count_request(owner)
        kept = self.store.count(owner=owner)
        if kept >= self.settings.max_jobs_per_user:
            raise TapError(
                f"You have {kept} async jobs, the most one user may keep. Delete finished jobs "
                "(DELETE /async/<id>) before creating more.",
                429,
            )
        job_id = secrets.token_hex(8)
        stored = {k: v for k, v in params.items() if k not in {"PHASE"}}
        if params.get("UPLOAD"):
            stored["UPLOAD"] = self._store_uploads(job_id, params["UPLOAD"], files)
        duration = self._duration(params.get("EXECUTIONDURATION"))
        job = JobRecord(
            job_id=job_id,
            owner=owner,
            phase="PENDING",
            parameters=stored,
            creation_time=_now(),
            execution_duration=duration,
            destruction=_now() + timedelta(days=self.settings.retention_days),
            run_id=params.get("RUNID"),
        )
        self.store.add(job)
        if params.get("PHASE", "").upper() == "RUN":
            try:
                self.start(job)
            except TapError:
                self.delete(job)  # refused: the client never learns this job's id
                raise
        return self.store.get(job_id) or job

    def _job_uploads(self, job_id: str) -> Path:
        """The job's own upload directory (job ids are ours: hex digits only)."""
        if not re.fullmatch(r"[0-9a-f]{16}", job_id):
            raise TapError(f"No job {job_id[:40]}.", 404)
        return self.uploads_dir / job_id

    def _store_uploads(self, job_id: str, spec: str, files: dict[str, bytes]) -> str:
        """Read the UPLOAD tables now and keep them in the job's directory; the stored spec."""
        uploads = self.queries.load_uploads(spec, files)
        folder = self._job_uploads(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in uploads.items():
            pq.write_table(table, folder / f"{name}.parquet")
        return ";".join(f"{n},stored:{n}" for n in uploads)

    def _read_uploads(self, job_id: str, spec: str | None) -> dict[str, pa.Table]:
        """The tables a job's stored UPLOAD names, only ever from the job's own directory."""
        tables: dict[str, pa.Table] = {}
        folder = self._job_uploads(job_id).resolve()
        for item in (spec or "").split(";"):
            if not item.strip():
                continue
            name, _, source = item.partition(",")
            if not UPLOAD_NAME.fullmatch(name) or source != f"stored:{name}":
                raise TapError(f"The job's UPLOAD parameter is not valid: '{item[:80]}'.")
            path = (folder / f"{name}.parquet").resolve()
            if path.parent != folder or not path.is_file():
                raise TapError(f"The uploaded table {name} of this job is gone; upload it again.")
            tables[name] = pq.read_table(path)
        return tables

    def _duration(self, value: str | None) -> int:
        if value is None or not str(value).strip():
            return self.settings.async_default_duration
        try:
            seconds = int(float(value))
        except ValueError:
            raise TapError(f"EXECUTIONDURATION={value} is not a number of seconds.") from None
        if seconds <= 0:
            return self.settings.async_max_duration
        return min(seconds, self.settings.async_max_duration)

    def get(self, job_id: str, owner: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None or job.owner != owner:
            raise TapError(f"No job {job_id} (it may have expired or belong to someone else).", 404)
        return job

    def list(
        self, owner: str, phases: list[str], after: datetime | None, last: int | None
    ) -> list[JobRecord]:
        if not phases:
            phases = sorted((ACTIVE_PHASES | FINAL_PHASES) - {"ARCHIVED"})
        return self.store.find(owner=owner, phases=phases, after=after, last=last)

    def set_parameters(
        self, job: JobRecord, params: dict[str, str], files: dict[str, bytes] | None = None
    ) -> None:
        if job.phase != "PENDING":
            raise TapError(
                f"Job {job.job_id} is {job.phase}; parameters can change only while PENDING."
            )
        params = self.queries.check_parameters(params)
        changes = {k: v for k, v in params.items() if k != "PHASE"}
        if "UPLOAD" in changes:  # checked and stored like at creation, never kept as given
            shutil.rmtree(self._job_uploads(job.job_id), ignore_errors=True)
            spec = changes["UPLOAD"]
            changes["UPLOAD"] = self._store_uploads(job.job_id, spec, files or {}) if spec else ""
        merged = {**job.parameters, **changes}
        self.queries.check_parameters(merged)
        values: dict[str, Any] = {"parameters": merged}
        if "EXECUTIONDURATION" in params:
            values["execution_duration"] = self._duration(params["EXECUTIONDURATION"])
        if "RUNID" in params:
            values["run_id"] = params["RUNID"]
        self.store.update(job.job_id, **values)

    def set_duration(self, job: JobRecord, value: str) -> None:
        if job.phase != "PENDING":
            raise TapError(f"Job {job.job_id} is {job.phase}; executionduration is fixed now.")
        self.store.update(job.job_id, execution_duration=self._duration(value))

    def set_destruction(self, job: JobRecord, value: str) -> None:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise TapError(f"DESTRUCTION={value} is not an ISO 8601 time.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        latest = job.creation_time + timedelta(days=self.settings.retention_days)
        self.store.update(job.job_id, destruction=min(when, latest))

    def start(self, job: JobRecord) -> None:
        if job.phase not in {"PENDING", "HELD"}:
            if job.phase in {"QUEUED", "EXECUTING", "COMPLETED"}:
                return  # idempotent
            raise TapError(f"Job {job.job_id} is {job.phase} and cannot be run.", 400)
        if "QUERY" not in job.parameters:
            raise TapError("The job has no QUERY parameter; set one before PHASE=RUN.")
        cap = self.settings.max_active_jobs_per_user
        with self._lock:  # count and queue at once, so parallel requests cannot pass the cap
            active = self.store.count(owner=job.owner, phases=["QUEUED", "EXECUTING"])
            if active >= cap:
                raise TapError(
                    f"You already have {active} async jobs queued or executing, the most allowed "
                    f"at once ({cap}). Wait for one to finish (or abort one), then run this job.",
                    429,
                )
            queued = self.store.update(
                job.job_id, only_if_phase={"PENDING", "HELD"}, phase="QUEUED"
            )
        if queued:
            self._scheduler.submit(job.owner, job.job_id)

    def abort(self, job: JobRecord) -> None:
        if job.phase in FINAL_PHASES:
            return
        self.store.update(job.job_id, only_if_phase=ACTIVE_PHASES, phase="ABORTED", end_time=_now())
        with self._lock:
            interrupt = self._interrupts.get(job.job_id)
        if interrupt is not None:
            _interrupt(interrupt)

    def delete(self, job: JobRecord) -> None:
        self.abort(job)
        self.store.delete(job.job_id)
        if job.result_path:
            Path(job.result_path).unlink(missing_ok=True)
        shutil.rmtree(self._job_uploads(job.job_id), ignore_errors=True)

    async def wait(self, job: JobRecord, timeout: float, owner: str) -> JobRecord:
        """UWS 1.1 blocking: wait up to ``timeout`` s while the job stays in its active phase."""
        if job.phase not in ACTIVE_PHASES:
            return job
        if timeout < 0:  # UWS: -1 waits "forever", i.e. as long as this server allows
            timeout = self.settings.max_wait_seconds
        deadline = asyncio.get_running_loop().time() + min(timeout, self.settings.max_wait_seconds)
        start_phase = job.phase
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            job = self.get(job.job_id, owner)
            if job.phase != start_phase:
                break
        return job

    # ----- execution ------------------------------------------------------------------
    def _execute(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or not self.store.update(
            job_id, only_if_phase={"QUEUED"}, phase="EXECUTING", start_time=_now()
        ):
            return
        try:
            params = dict(job.parameters)
            upload_spec = params.pop("UPLOAD", None)
            limits = self.queries.limits_for(job.owner, sync=False)
            limits = Limits(
                limits.concurrent,
                limits.maxrec,
                min(limits.execution_seconds, float(job.execution_duration)),
            )
            request = self.queries.parse(params, limits)
            uploads = self._read_uploads(job_id, upload_spec)

            def remember(interrupt: Callable[[], None]) -> None:
                with self._lock:
                    self._interrupts[job_id] = interrupt
                    closing = self._closing
                current = self.store.get(job_id)
                if closing or current is None or current.phase != "EXECUTING":
                    _interrupt(interrupt)  # aborted (or shut down) before it could be reached

            result = self.queries.run(job.owner, request, uploads, limits, on_cursor=remember)
            body = self.queries.render(request, result)
            path = self.results_dir / f"{job_id}.{request.fmt.extension}"
            path.write_bytes(body)
            done = self.store.update(
                job_id,
                only_if_phase={"EXECUTING"},
                phase="COMPLETED",
                end_time=_now(),
                result_path=str(path),
                result_mime=request.fmt.mime,
                result_rows=result.table.num_rows,
                result_size=len(body),
                overflow=result.overflow,
            )
            if not done:
                path.unlink(missing_ok=True)  # aborted meanwhile
        except (AdqlError, TapError, QuotaUnavailable) as error:
            self.store.update(
                job_id, only_if_phase={"EXECUTING"}, phase="ERROR", end_time=_now(),
                error=error.message,
            )  # fmt: skip
        except Exception as error:  # a job must end in a phase, whatever happened
            log.exception("job %s failed", job_id)
            self.store.update(
                job_id, only_if_phase={"EXECUTING"}, phase="ERROR", end_time=_now(),
                error=f"Internal error while executing the query: {error}",
            )  # fmt: skip
        finally:
            with self._lock:
                self._interrupts.pop(job_id, None)


class FairScheduler:
    """Runs async jobs on a few threads, taking users in turn.

    Each user has a queue; a free worker takes the next job of the next user in turn, and
    one user keeps at most ``workers - 1`` workers busy when others wait, so one user's
    many (or long) jobs never hold up another user's.
    """

    def __init__(self, workers: int, run: Callable[[str], None]) -> None:
        self._run = run
        self._workers = max(1, workers)
        self._share = max(1, self._workers - 1)
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()
        self._running: dict[str, int] = defaultdict(int)
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"tap-job-{i}", daemon=True)
            for i in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, owner: str, job_id: str) -> None:
        with self._cond:
            self._queues.setdefault(owner, deque()).append(job_id)
            self._cond.notify()

    def _pick(self) -> tuple[str, str] | None:
        """The next (owner, job) to run, or None when nothing may run now."""
        busy = sum(self._running.values())
        for owner, queue in self._queues.items():
            others_waiting = len(self._queues) > 1
            if others_waiting and self._running[owner] >= self._share and busy > 0:
                continue  # leave a worker for the other users
            job_id = queue.popleft()
            del self._queues[owner]
            if queue:
                self._queues[owner] = queue  # to the back of the line
            return owner, job_id
        return None

    def _next(self) -> tuple[str, str] | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                picked = self._pick()
                if picked is not None:
                    self._running[picked[0]] += 1
                    return picked
                self._cond.wait()

    def _work(self) -> None:
        while (picked := self._next()) is not None:
            owner, job_id = picked
            try:
                self._run(job_id)
            except Exception:  # a worker must survive any one job
                log.exception("async job %s failed", job_id)
            finally:
                with self._cond:
                    self._running[owner] -= 1
                    if not self._running[owner]:
                        del self._running[owner]
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Drop queued jobs (they stay QUEUED and run after a restart); wait for running ones."""
        with self._cond:
            self._closed = True
            self._queues.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
