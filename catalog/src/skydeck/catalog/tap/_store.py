"""Storage: UWS jobs in a SQL database (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

jobs_table = sa.Table(
    "tap_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False, index=True),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(255)),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("start_time", sa.DateTime(timezone=True)),
    sa.Column("end_time", sa.DateTime(timezone=True)),
    sa.Column("execution_duration", sa.Integer, nullable=False),
    sa.Column("destruction", sa.DateTime(timezone=True), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result_path", sa.Text),
    sa.Column("result_mime", sa.String(128)),
    sa.Column("result_rows", sa.BigInteger),
    sa.Column("result_size", sa.BigInteger),
    sa.Column("overflow", sa.Boolean),
)


@dataclass
class JobRecord:
    """One async job as stored."""

    job_id: str
    owner: str
    phase: str
    parameters: dict[str, str]
    creation_time: datetime
    execution_duration: int
    destruction: datetime
    run_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None
    result_path: str | None = None
    result_mime: str | None = None
    result_rows: int | None = None
    result_size: int | None = None
    overflow: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite drops the zone; we store UTC
    return value


def _record(row: sa.Row[Any]) -> JobRecord:
    m = row._mapping
    return JobRecord(
        job_id=m["job_id"],
        owner=m["owner"],
        phase=m["phase"],
        parameters=json.loads(m["parameters"]),
        creation_time=_aware(m["creation_time"]) or datetime.now(UTC),
        execution_duration=m["execution_duration"],
        destruction=_aware(m["destruction"]) or datetime.now(UTC),
        run_id=m["run_id"],
        start_time=_aware(m["start_time"]),
        end_time=_aware(m["end_time"]),
        error=m["error"],
        result_path=m["result_path"],
        result_mime=m["result_mime"],
        result_rows=m["result_rows"],
        result_size=m["result_size"],
        overflow=m["overflow"],
    )


class JobStore:
    """CRUD on jobs; no business rules (those live in the job service)."""

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = sa.create_engine(url, **kwargs)
        metadata.create_all(self.engine)

    def add(self, job: JobRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.insert().values(
                    job_id=job.job_id,
                    owner=job.owner,
                    phase=job.phase,
                    run_id=job.run_id,
                    parameters=json.dumps(job.parameters),
                    creation_time=job.creation_time,
                    execution_duration=job.execution_duration,
                    destruction=job.destruction,
                )
            )

    def get(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(jobs_table.select().where(jobs_table.c.job_id == job_id)).first()
        return None if row is None else _record(row)

    def update(self, job_id: str, *, only_if_phase: set[str] | None = None, **values: Any) -> bool:
        """Change columns of one job; with ``only_if_phase``, only from those phases."""
        if "parameters" in values:
            values["parameters"] = json.dumps(values["parameters"])
        statement = jobs_table.update().where(jobs_table.c.job_id == job_id)
        if only_if_phase is not None:
            statement = statement.where(jobs_table.c.phase.in_(sorted(only_if_phase)))
        with self.engine.begin() as conn:
            result = conn.execute(statement.values(**values))
        return bool(result.rowcount)

    def delete(self, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs_table.delete().where(jobs_table.c.job_id == job_id))

    def find(
        self,
        owner: str | None = None,
        phases: list[str] | None = None,
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[JobRecord]:
        query = jobs_table.select()
        if owner is not None:
            query = query.where(jobs_table.c.owner == owner)
        if phases:
            query = query.where(jobs_table.c.phase.in_(phases))
        if after is not None:
            query = query.where(jobs_table.c.creation_time > after)
        if last is not None:
            query = query.order_by(jobs_table.c.creation_time.desc()).limit(last)
        else:
            query = query.order_by(jobs_table.c.creation_time)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_record(r) for r in rows]

    def count(self, owner: str, phases: list[str] | None = None) -> int:
        """How many jobs ``owner`` has (in ``phases``, if given)."""
        query = sa.select(sa.func.count()).select_from(jobs_table)
        query = query.where(jobs_table.c.owner == owner)
        if phases:
            query = query.where(jobs_table.c.phase.in_(phases))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def expired(self, now: datetime) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(jobs_table.select().where(jobs_table.c.destruction < now)).all()
        return [_record(r) for r in rows]

    def close(self) -> None:
        self.engine.dispose()
