"""Quota storage: SQLAlchemy tables for the policy, group rules, overrides, usage, audit.

SQLite in the data directory by default, PostgreSQL in production (any
SQLAlchemy URL works).  The store holds no decisions; it reads and writes rows.
Both the hub process (spawn hooks) and the quota service use it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    event,
    or_,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from skydeck.hub.quota.model import GroupRule, Override, Policy, QuotaPatch


class _Base(DeclarativeBase):
    pass


class _PolicyRow(_Base):
    __tablename__ = "quota_policy"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)


class _GroupRow(_Base):
    __tablename__ = "quota_group"
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    quota: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _OverrideRow(_Base):
    __tablename__ = "quota_override"
    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    quota: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class _AuditRow(_Base):
    __tablename__ = "quota_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)


class _SessionRow(_Base):
    __tablename__ = "quota_usage_session"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    size: Mapped[str | None] = mapped_column(String(64), nullable=True)
    workers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu: Mapped[float] = mapped_column(Float)
    memory_gib: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class AuditEntry:
    """One change: who, when, what, why."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class UsageSession:
    """A lab server or Dask cluster that ran (or runs) with a size, for budgets."""

    id: int
    user: str
    source: str
    key: str
    size: str | None
    cpu: float
    memory_gib: float
    started_at: datetime
    stopped_at: datetime | None
    workers: int | None = None


def _utc(value: datetime) -> datetime:
    """SQLite drops the time zone; every time in the store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_opt(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _json(value: Any) -> Any:
    """Round-trip through JSON so stored values are plain (no pydantic objects)."""
    return json.loads(json.dumps(value))


class QuotaStore:
    """Rows of the quota database; create with a SQLAlchemy URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        _Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # policy -----------------------------------------------------------------
    def get_policy(self) -> Policy:
        with self._session() as s:
            row = s.get(_PolicyRow, 1)
            return Policy() if row is None else Policy.model_validate(row.policy)

    def set_policy(self, policy: Policy) -> None:
        with self._session() as s:
            data = _json(policy.model_dump(mode="json"))
            row = s.get(_PolicyRow, 1)
            if row is None:
                s.add(_PolicyRow(id=1, policy=data))
            else:
                row.policy = data

    # group rules -------------------------------------------------------------
    def group_rules(self) -> dict[str, GroupRule]:
        with self._session() as s:
            rows = s.scalars(select(_GroupRow).order_by(_GroupRow.group)).all()
            return {
                r.group: GroupRule(r.group, r.quota, r.updated_by, _utc(r.updated_at)) for r in rows
            }

    def set_group_rule(self, group: str, quota: QuotaPatch, by: str, at: datetime) -> None:
        with self._session() as s:
            row = s.get(_GroupRow, group)
            if row is None:
                s.add(_GroupRow(group=group, quota=_json(quota), updated_by=by, updated_at=at))
            else:
                row.quota, row.updated_by, row.updated_at = _json(quota), by, at

    def delete_group_rule(self, group: str) -> bool:
        with self._session() as s:
            row = s.get(_GroupRow, group)
            if row is None:
                return False
            s.delete(row)
            return True

    # overrides ---------------------------------------------------------------
    def _override(self, r: _OverrideRow) -> Override:
        return Override(
            r.user,
            r.quota,
            r.reason,
            r.created_by,
            _utc(r.created_at),
            _utc_opt(r.expires_at),
        )

    def get_override(self, user: str) -> Override | None:
        with self._session() as s:
            row = s.get(_OverrideRow, user)
            return None if row is None else self._override(row)

    def overrides(self, active_at: datetime | None = None) -> list[Override]:
        with self._session() as s:
            query = select(_OverrideRow).order_by(_OverrideRow.user)
            if active_at is not None:
                query = query.where(
                    or_(_OverrideRow.expires_at.is_(None), _OverrideRow.expires_at > active_at)
                )
            return [self._override(r) for r in s.scalars(query).all()]

    def set_override(self, override: Override) -> None:
        with self._session() as s:
            row = s.get(_OverrideRow, override.user)
            if row is not None:
                s.delete(row)
                s.flush()
            s.add(
                _OverrideRow(
                    user=override.user,
                    quota=_json(override.quota),
                    reason=override.reason,
                    created_by=override.created_by,
                    created_at=override.created_at,
                    expires_at=override.expires_at,
                )
            )

    def delete_override(self, user: str) -> bool:
        with self._session() as s:
            row = s.get(_OverrideRow, user)
            if row is None:
                return False
            s.delete(row)
            return True

    # audit -------------------------------------------------------------------
    def audit(
        self,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any],
        reason: str,
        at: datetime,
    ) -> None:
        with self._session() as s:
            s.add(
                _AuditRow(
                    at=at,
                    actor=actor,
                    action=action,
                    target=target,
                    detail=_json(detail),
                    reason=reason,
                )
            )

    def audit_log(self, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        with self._session() as s:
            query = select(_AuditRow).order_by(_AuditRow.id.desc()).limit(limit)
            if target is not None:
                query = query.where(_AuditRow.target == target)
            return [
                AuditEntry(r.id, _utc(r.at), r.actor, r.action, r.target, r.detail, r.reason)
                for r in s.scalars(query).all()
            ]

    # usage sessions ------------------------------------------------------------
    def _usage(self, r: _SessionRow) -> UsageSession:
        return UsageSession(
            r.id,
            r.user,
            r.source,
            r.key,
            r.size,
            r.cpu,
            r.memory_gib,
            _utc(r.started_at),
            _utc_opt(r.stopped_at),
            r.workers,
        )

    def open_session(
        self,
        user: str,
        source: str,
        key: str,
        cpu: float,
        memory_gib: float,
        at: datetime,
        size: str | None = None,
        workers: int | None = None,
    ) -> int:
        """Record that something started; an open session of the same key is closed first."""
        with self._session() as s:
            for row in s.scalars(
                select(_SessionRow).where(
                    _SessionRow.user == user,
                    _SessionRow.source == source,
                    _SessionRow.key == key,
                    _SessionRow.stopped_at.is_(None),
                )
            ):
                row.stopped_at = at
            row = _SessionRow(
                user=user,
                source=source,
                key=key,
                size=size,
                workers=workers,
                cpu=cpu,
                memory_gib=memory_gib,
                started_at=at,
            )
            s.add(row)
            s.flush()
            return row.id

    def close_session(self, user: str, source: str, key: str, at: datetime) -> int:
        """Close the open sessions of ``key``; returns how many were open."""
        with self._session() as s:
            rows = s.scalars(
                select(_SessionRow).where(
                    _SessionRow.user == user,
                    _SessionRow.source == source,
                    _SessionRow.key == key,
                    _SessionRow.stopped_at.is_(None),
                )
            ).all()
            for row in rows:
                row.stopped_at = at
            return len(rows)

    def close_stale_sessions(self, source: str, started_before: datetime, at: datetime) -> int:
        """Close every open ``source`` session started before ``started_before``."""
        with self._session() as s:
            rows = s.scalars(
                select(_SessionRow).where(
                    _SessionRow.source == source,
                    _SessionRow.stopped_at.is_(None),
                    _SessionRow.started_at < started_before,
                )
            ).all()
            for row in rows:
                row.stopped_at = at
            return len(rows)

    def sessions(self, user: str | None, since: datetime) -> list[UsageSession]:
        """Sessions still open or stopped after ``since`` (of one user, or everyone's)."""
        with self._session() as s:
            query = select(_SessionRow).where(
                or_(_SessionRow.stopped_at.is_(None), _SessionRow.stopped_at > since)
            )
            if user is not None:
                query = query.where(_SessionRow.user == user)
            return [self._usage(r) for r in s.scalars(query.order_by(_SessionRow.id)).all()]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Two processes (hub and quota service) share the file: WAL lets readers run beside a writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
