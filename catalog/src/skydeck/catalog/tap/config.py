"""The TAP service's one settings object (environment variables prefixed ``SKYDECK_TAP_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from skydeck.service import ServiceSettings


class TapSettings(ServiceSettings):
    """Everything an operator can set; each field is ``SKYDECK_TAP_<NAME>`` in the environment.

    The hub, token and quota fields come from `ServiceSettings`, shared with every service.
    """

    model_config = SettingsConfigDict(
        env_prefix="SKYDECK_TAP_", extra="ignore", populate_by_name=True
    )

    release: Path | str | None = Field(
        default=None,
        validation_alias=AliasChoices("SKYDECK_TAP_RELEASE", "SKYDECK_RELEASE"),
        description="The published release (manifest.json, hats/, schema/): a directory, or an "
        "object-store URI such as s3://bucket/release (S3 endpoint and credentials from the "
        "standard AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables).",
    )
    schema_names: dict[str, str] = Field(
        default_factory=lambda: {"dp02_skydeck": "dp02_dc2_catalogs"},
        description="Felis schema name -> published TAP schema name (JSON in the environment). "
        "The default serves the release tables as dp02_dc2_catalogs, as in DP0.2.",
    )
    data_dir: Path = Field(
        default=Path("tap-data"),
        description="Where async job results and the default SQLite job database live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the UWS job database; default sqlite in data_dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    path_prefix: str = Field(
        default="",
        validation_alias=AliasChoices("SKYDECK_TAP_PATH_PREFIX", "JUPYTERHUB_SERVICE_PREFIX"),
        description="URL path the service is mounted at (e.g. /services/tap).",
    )
    auth: Literal["hub", "none"] | None = Field(
        default=None,
        description="'hub' validates hub tokens against the hub API; 'none' lets everyone in as "
        "'anonymous' (standalone use only). Default: hub when JUPYTERHUB_API_URL is set.",
    )
    default_maxrec: int = Field(default=100_000, description="MAXREC when the client gives none.")
    max_maxrec: int = Field(default=10_000_000, description="Ceiling on MAXREC for every user.")
    sync_timeout: float = Field(default=600.0, description="Execution limit of /sync queries (s).")
    async_default_duration: int = Field(default=3600, description="Default async limit (s).")
    async_max_duration: int = Field(default=4 * 3600, description="Hard async limit (s).")
    max_concurrent_per_user: int = Field(default=4, description="Queries running at once per user.")
    async_workers: int = Field(default=2, description="Async jobs executed at once, all users.")
    retention_days: float = Field(default=7.0, description="Async jobs and results kept this long.")
    max_upload_bytes: int = Field(default=50_000_000, description="Largest accepted UPLOAD.")
    upload_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts UPLOAD may fetch http(s) URLs from; empty means URLs are refused.",
    )
    max_active_jobs_per_user: int = Field(
        default=10,
        description="Async jobs one user may have QUEUED or EXECUTING at once; more are refused "
        "with 429 until one finishes. The workers take users' jobs in turn, so one user's "
        "queue never holds up another's jobs.",
    )
    max_jobs_per_user: int = Field(
        default=1000, description="Async jobs (in any phase) one user may keep at once."
    )
    max_parameter_bytes: int = Field(
        default=100_000,
        description="Longest value of any one TAP/UWS parameter (QUERY included), in bytes.",
    )
    max_parameters: int = Field(default=64, description="Most parameters in one request.")
    max_request_bytes: int = Field(
        default=60_000_000,
        description="Largest request body (form fields and uploaded files together).",
    )
    max_wait_seconds: float = Field(
        default=60.0,
        description="Server-side cap on UWS blocking (GET /async/<id>?WAIT=s): a client "
        "asking for longer (or for -1, 'forever') is answered after this many seconds and "
        "simply asks again.",
    )
    duckdb_threads: int | None = Field(
        default=None,
        description="DuckDB threads of each running query (default: all CPUs); the process "
        "uses at most this times the queries running at once (sync concurrency per user and "
        "async_workers).",
    )
    duckdb_memory_limit: str = Field(
        default="4GB",
        description="Memory of all DuckDB queries of the process together, e.g. '4GB': each "
        "running query reserves its own limit from it; when it is taken, a query waits up to "
        "30 s and is then refused (503) with a message.",
    )
    query_memory_limit: str = Field(
        default="1GB",
        description="Memory of one query (each query runs in a DuckDB database of its own); "
        "a query needing more spills to disk, then is refused with a message. A user's "
        "tap.memory_gib quota, when the quota service gives one, lowers it.",
    )
    max_temp_size: str = Field(
        default="10GB",
        description="Disk for spilled intermediates of all queries (in data_dir/duckdb-tmp); "
        "a query needing more is refused with a message.",
    )
    dask_scheduler: str | None = Field(
        default=None, description="Dask scheduler address; multi-partition scans fan out to it."
    )

    @field_validator("release", mode="before")
    @classmethod
    def _release_uri(cls, value: object) -> object:
        # a URI stays a string: Path("s3://b/r") would collapse it to "s3:/b/r"
        if isinstance(value, str) and "://" not in value and value:
            return Path(value)
        return value

    @model_validator(mode="after")
    def _defaults(self) -> TapSettings:
        if self.auth is None:
            self.auth = "hub" if self.hub_api_url else "none"
        if self.auth == "hub" and not self.hub_api_url:
            raise ValueError(
                "SKYDECK_TAP_AUTH=hub needs the hub API URL: set JUPYTERHUB_API_URL "
                "(the hub does this for managed services) or SKYDECK_TAP_HUB_API_URL."
            )
        self.path_prefix = "/" + self.path_prefix.strip("/") if self.path_prefix.strip("/") else ""
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobs.sqlite3').absolute()}"

    def require_release(self) -> Path | str:
        if self.release is None:
            raise ValueError(
                "No release: pass --release DIR or set SKYDECK_TAP_RELEASE (or SKYDECK_RELEASE) "
                "to a published release directory or s3:// URI, e.g. <data>/release from "
                "`skydeck data build`."
            )
        return self.release


def settings_from_env(**overrides: object) -> TapSettings:
    """Settings from the environment, with explicit overrides (used by the CLI and tests)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return TapSettings(**values)  # type: ignore[arg-type]
