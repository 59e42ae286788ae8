"""The figures the status bar shows: memory, Dask workers, home storage, idle culler.

Memory is measured here (this server and its kernels); Dask workers and storage
come from the quota service's JSON document when there is one (its shape is in
lab-extensions/README.md); storage falls back to measuring the home folder.
A missing limit is reported as ``null``, which the status bar shows as "no limit".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from skydeck.labextension._upstream import ServiceUnavailable, Upstream

#: Measuring the home folder stops after this many entries (the figure is then a lower bound).
MAX_SCAN_ENTRIES = 200_000
#: Seconds a measured home size is reused.
SCAN_TTL = 60.0


def _memory_used() -> int:
    """Resident memory of this server and everything it started (kernels, ...)."""
    me = psutil.Process()
    total = 0
    for process in [me, *me.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def _directory_size(root: Path) -> tuple[int, bool]:
    """Bytes under ``root`` (not following links) and whether the scan was complete."""
    total, seen = 0, 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_SCAN_ENTRIES:
                return total, False
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total, True


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class StatusService:
    """Answers ``GET skydeck/api/status``."""

    def __init__(
        self,
        quota: Upstream,
        quota_path: str,
        home: Path,
        idle_timeout: int,
        keepalive_warning: int,
        memory_limit: int | None,
        last_activity: Callable[[], datetime],
    ) -> None:
        self.quota = quota
        self.quota_path = quota_path
        self.home = home
        self.idle_timeout = idle_timeout
        self.keepalive_warning = keepalive_warning
        self.memory_limit = memory_limit
        self.last_activity = last_activity
        self._home_size: tuple[float, int, bool] | None = None

    async def quota_document(self) -> tuple[dict[str, Any] | None, str]:
        """The user's quota JSON and a one-word state: "on", "off", "absent" or "error"."""
        if not self.quota.configured:
            return None, "absent"
        try:
            reply = await self.quota.fetch(self.quota_path)
        except ServiceUnavailable:
            return None, "error"
        if reply.status != 200:
            return None, "error"
        try:
            document = json.loads(reply.body)
        except ValueError:
            return None, "error"
        if not isinstance(document, dict):
            return None, "error"
        enabled = document.get("enabled", True) and not _dict(document.get("quota")).get(
            "unlimited", False
        )
        return document, "on" if enabled else "off"

    def home_size(self) -> tuple[int, bool]:
        now = time.monotonic()
        if self._home_size is None or now - self._home_size[0] > SCAN_TTL:
            size, complete = _directory_size(self.home)
            self._home_size = (now, size, complete)
        return self._home_size[1], self._home_size[2]

    def culler(self) -> dict[str, Any]:
        """How long until the idle culler would stop this server."""
        idle = max(0.0, (datetime.now(UTC) - self.last_activity()).total_seconds())
        if not self.idle_timeout:
            return {
                "timeout_seconds": None,
                "idle_seconds": idle,
                "seconds_left": None,
                "warn": False,
            }
        left = max(0.0, self.idle_timeout - idle)
        return {
            "timeout_seconds": self.idle_timeout,
            "idle_seconds": idle,
            "seconds_left": left,
            "warn": left <= self.keepalive_warning,
        }

    async def status(self) -> dict[str, Any]:
        document, state = await self.quota_document()
        figures = _figures(document or {})
        off = state == "off"
        memory_limit = None if off else figures["memory_limit"]
        if memory_limit is None and not off:
            memory_limit = self.memory_limit
        used = figures["storage_used"]
        complete = True
        if used is None:
            size, complete = self.home_size()
            used = float(size)
        hard = None if off else figures["storage_hard"]
        soft = None if off else figures["storage_soft"]
        return {
            "quotas": state,
            "memory": {"used_bytes": _memory_used(), "limit_bytes": memory_limit},
            "dask": {
                "available": figures["dask_available"],
                "workers": figures["dask_workers"],
                "clusters": figures["dask_clusters"],
                "limit": None if off else figures["dask_limit"],
            },
            "storage": {
                "used_bytes": used,
                "complete": complete,
                "limit_bytes": hard if hard is not None else soft,
                "soft_limit_bytes": soft,
                "hard_limit_bytes": hard,
            },
            "culler": self.culler(),
        }


GIB = 1024**3


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _gib(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else number * GIB


def _figures(document: dict[str, Any]) -> dict[str, Any]:
    """The figures the status bar needs, from either quota document shape (README)."""
    if "usage" in document or isinstance(document.get("quota"), dict):
        # The quota service's QuotaStatus (skydeck.hub.quota.model).
        effective = _dict(document.get("quota"))
        limits = _dict(effective.get("quota"))
        lab, dask, storage = (_dict(limits.get(k)) for k in ("lab", "dask", "storage"))
        usage = _dict(document.get("usage"))
        used_storage = _dict(usage.get("storage"))
        running = [_dict(s) for s in usage.get("running") or [] if _dict(s).get("source") == "dask"]
        counts = [_number(s.get("workers")) for s in running]
        # No cluster running: no workers; clusters without a worker count: unknown.
        workers = None if None in counts else float(sum(c for c in counts if c is not None))
        per_cluster, clusters = _number(dask.get("workers")), _number(dask.get("clusters"))
        dask_limit = per_cluster * clusters if per_cluster is not None and clusters else per_cluster
        return {
            "memory_limit": _gib(lab.get("memory_gib")),
            "dask_available": bool(limits) or bool(usage),
            "dask_workers": workers,
            "dask_clusters": float(len(running)) if usage else None,
            "dask_limit": dask_limit,
            "storage_used": _gib(used_storage.get("used_gib")),
            "storage_soft": _gib(used_storage.get("soft_gib", storage.get("soft_gib"))),
            "storage_hard": _gib(used_storage.get("hard_gib", storage.get("hard_gib"))),
        }
    lab, dask, storage = (_dict(document.get(k)) for k in ("lab", "dask", "storage"))
    return {
        "memory_limit": _number(lab.get("memory_limit_bytes")),
        "dask_available": "workers_running" in dask or "workers_limit" in dask,
        "dask_workers": _number(dask.get("workers_running")),
        "dask_clusters": None,
        "dask_limit": _number(dask.get("workers_limit")),
        "storage_used": _number(storage.get("used_bytes")),
        "storage_soft": _number(storage.get("soft_limit_bytes")),
        "storage_hard": _number(storage.get("hard_limit_bytes")),
    }
