"""One synthetic user: logs in, spawns a lab of each offered size, runs the checks, cleans up."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from skydeck.hub.check import _checks
from skydeck.hub.check._hub import HubUser
from skydeck.hub.check._lab import LabKernel
from skydeck.hub.check._report import GROUPS, CheckFailed, CheckResult

T = TypeVar("T")

#: Groups that need the bot's lab.
LAB_GROUPS = {"spawn", "tutorials", "cutouts", "lsdb", "dask"}


@dataclass
class Options:
    """What ``skydeck check`` was asked to do."""

    hub: str
    token: str = ""
    password: str = ""
    groups: set[str] = field(default_factory=lambda: set(GROUPS))
    #: Only these sizes (of those the spawn form offers); empty: every offered size.
    sizes: list[str] = field(default_factory=list)
    #: Only the tutorials whose file name starts with one of these; empty: all.
    tutorials: list[str] = field(default_factory=list)
    spawn_timeout: float = 300
    cell_timeout: float = 600
    http_timeout: float = 60


def _unexpected(error: BaseException) -> CheckFailed:
    """An error no check anticipated: its last line and the innermost frame of ours."""
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    for frame in reversed(frames):
        where = f"{Path(frame.filename).name}:{frame.lineno} ({frame.name})"
        if "skydeck" in frame.filename:
            break
    last = f"{type(error).__name__}: {error}".splitlines()[0]
    return CheckFailed(
        last,
        where=where,
        hint="an unexpected error in skydeck check: the traceback is in --json",
        detail="".join(traceback.format_exception(error)),
    )


class Bot:
    """One bot user's run; every step becomes a `CheckResult` passed to ``record``."""

    def __init__(
        self, options: Options, name: str, record: Callable[[CheckResult], None], run: int = 1
    ) -> None:
        self.options = options
        self.name = name
        self.record = record
        self.run_number = run
        self.user = HubUser(options.hub, name, options.http_timeout)
        self.failed = False

    def step(self, group: str, name: str, action: Callable[[], T]) -> T | None:
        """Run ``action`` as the check ``name``; record pass or fail; None when it failed."""
        started = time.monotonic()
        try:
            value = action()
        except CheckFailed as failure:
            self._record(group, name, "fail", started, failure)
            return None
        except Exception as error:
            self._record(group, name, "fail", started, _unexpected(error))
            return None
        note = value if isinstance(value, str) else ""
        self._record(group, name, "pass", started, note=note)
        return value

    def skip(self, group: str, name: str, reason: str) -> None:
        self._record(group, name, "skip", time.monotonic(), CheckFailed(f"not run: {reason}"))

    def _record(
        self,
        group: str,
        name: str,
        status: str,
        started: float,
        info: CheckFailed | None = None,
        note: str = "",
    ) -> None:
        self.failed |= status == "fail"
        seconds = round(time.monotonic() - started, 3)
        self.record(
            CheckResult(
                user=self.name,
                group=group,
                name=name,
                status=status,
                seconds=seconds,
                error=info.message if info else "",
                where=info.where if info else "",
                hint=info.hint if info else "",
                detail=info.detail if info else "",
                note=note,
                run=self.run_number,
                started=round(time.time() - seconds, 3),
            )
        )

    # the run --------------------------------------------------------------------------------
    def run(self) -> None:
        groups = self.options.groups
        if self.step("login", "login", self._login) is None:
            for group in GROUPS[1:]:
                if group in groups and group != "cleanup":
                    self.skip(group, group, "the login failed")
            return
        try:
            if "tap" in groups:
                self._tap()
            if groups & LAB_GROUPS:
                self._labs()
        finally:
            self._cleanup()

    def _login(self) -> bool:
        password = ""
        if self.options.token:
            password = self.user.issue_password(self.options.token) or ""
        password = password or self.options.password
        if not password:
            raise CheckFailed(
                "no credential for the bot: the hub has no bot-credential route "
                "(POST /hub/api/skydeck/users/{name}/password) and no --password was given",
                where=f"{self.options.hub}/hub/api/skydeck/users/{self.name}/password",
                hint="pass --token (admin or skydeck-check role) to a hub that issues "
                "bot credentials, or --password for a hub with a shared password",
            )
        self.user.login(password)
        self.user.create_token()
        return True

    def _tap(self) -> None:
        services = _checks.Services(self.options.hub, self.user.token, self.options.http_timeout)
        tap = _checks.Tap(services)
        self.step("tap", "tap availability (VOSI)", tap.availability)
        self.step("tap", "tap sync (pyvo)", tap.sync)
        self.step("tap", "tap async (pyvo)", lambda: tap.async_(self.options.cell_timeout))
        self.step("tap", "tap upload (pyvo)", tap.upload)

    def _labs(self) -> None:
        groups = self.options.groups
        if self.user.has_server():  # left by an interrupted run
            self.step("spawn", "stop a leftover lab", self._stop)
        sizes = self.step("spawn", "spawn form: sizes offered", self._sizes)
        if not sizes:
            return
        if not groups & {"spawn", "tutorials"}:
            sizes = sizes[:1]  # the other checks need one lab, not one of each size
        for index, size in enumerate(sizes):
            label = size or "the only size"
            if self.step("spawn", f"spawn ({label})", partial(self._spawn, size)) is None:
                if self.user.has_server():
                    self.step("spawn", f"stop ({label})", self._stop)
                continue
            try:
                if "tutorials" in groups:
                    self._tutorials(label)
                if index == 0:
                    self._lab_checks()
            finally:
                self.step("spawn", f"stop ({label})", self._stop)

    def _sizes(self) -> list[str]:
        offered = self.user.offered_sizes()
        wanted = self.options.sizes
        if not wanted:
            return offered
        missing = [s for s in wanted if s not in offered]
        if missing and offered != [""]:
            raise CheckFailed(
                f"size(s) {', '.join(missing)} not offered to {self.name}; "
                f"offered: {', '.join(offered)}",
                where=f"{self.options.hub}/hub/spawn/{self.name}",
                hint="choose --sizes among those offered, or give the bots a bigger quota",
            )
        return [s for s in offered if s in wanted] or offered

    def _spawn(self, size: str) -> str:
        self.user.spawn(size)
        self.user.wait_ready(self.options.spawn_timeout)
        with LabKernel(self.user.server_url, self.user.token).start() as kernel:
            found = _checks.run_in_lab(
                kernel, _checks.LAB_SIZE, "reading the lab's size", self.options.cell_timeout
            )
        if size and found.get("size") != size:
            raise CheckFailed(
                f"asked for size {size!r}, the lab got {found.get('size')!r}",
                where=f"{self.options.hub}/hub/spawn/{self.name}",
                hint="the spawn form's choice did not reach the spawner: see the hub log",
            )
        return f"{found.get('size')}: {found.get('cpu')} CPUs, {found.get('memory_gib')} GiB"

    def _stop(self) -> None:
        self.user.stop(self.options.spawn_timeout)

    def _tutorials(self, label: str) -> None:
        token, url = self.user.token, self.user.server_url
        paths = self.step(
            "tutorials",
            f"tutorials delivered ({label})",
            lambda: _checks.list_tutorials(url, token, self.options.tutorials),
        )
        for path in paths or []:
            name = Path(path).stem
            self.step(
                "tutorials",
                f"{name} ({label})",
                partial(_checks.tutorial, url, token, path, self.options.cell_timeout),
            )

    def _lab_checks(self) -> None:
        groups = self.options.groups & {"cutouts", "lsdb", "dask"}
        if not groups:
            return
        timeout = self.options.cell_timeout
        services = _checks.Services(self.options.hub, self.user.token, self.options.http_timeout)
        kernel = self.step(
            "spawn",
            "lab kernel",
            lambda: LabKernel(self.user.server_url, self.user.token).start(),
        )
        if kernel is None:
            for group in sorted(groups):
                self.skip(group, group, "no kernel in the lab")
            return
        try:
            if "cutouts" in groups:
                self.step(
                    "cutouts", "cutout (SODA)", lambda: _checks.cutout(kernel, services, timeout)
                )
            if "lsdb" in groups:
                self.step("lsdb", "lsdb open_catalog", lambda: _checks.lsdb(kernel, timeout))
            if "dask" in groups:
                self.step("dask", "dask-gateway cluster", lambda: _checks.dask(kernel, timeout))
        finally:
            kernel.shutdown()

    def _cleanup(self) -> None:
        groups = self.options.groups
        services = _checks.Services(self.options.hub, self.user.token, self.options.http_timeout)
        if "tap" in groups:
            # In the services' own groups: a service that is down fails only its group.
            self.step("tap", "cleanup: TAP jobs", lambda: _checks.Tap(services).delete_jobs())
        if groups & {"dask", "tutorials"}:
            self.step("dask", "cleanup: dask clusters", lambda: _checks.delete_clusters(services))
        if groups & LAB_GROUPS:
            self.step("cleanup", "cleanup: no lab left", self._no_lab_left)
        self.step("cleanup", "cleanup: token and session", self._forget)

    def _no_lab_left(self) -> None:
        if self.user.has_server():
            self._stop()

    def _forget(self) -> None:
        self.user.delete_token()
        self.user.logout()


def run_bots(
    options: Options, names: list[str], record: Callable[[CheckResult], None], run: int = 1
) -> list[Bot]:
    """Run one bot per name, all at once (threads: each bot mostly waits on the network)."""
    from concurrent.futures import ThreadPoolExecutor

    bots = [Bot(options, name, record, run) for name in names]
    with ThreadPoolExecutor(max_workers=max(1, len(bots))) as pool:
        list(pool.map(lambda bot: bot.run(), bots))
    return bots
