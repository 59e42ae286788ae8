"""Results of the synthetic users' checks: one `CheckResult` per step, shown as a table or JSON."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The groups ``--only`` selects, in the order a bot runs them.
GROUPS = ("login", "spawn", "tutorials", "tap", "cutouts", "lsdb", "dask", "cleanup")


class CheckFailed(Exception):
    """A check found something wrong: what (``message``), ``where``, and what to do (``hint``)."""

    def __init__(self, message: str, where: str = "", hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint
        self.detail = detail


@dataclass
class CheckResult:
    """One step of one bot: passed, failed or skipped (a step it needs failed first)."""

    user: str
    group: str
    name: str
    status: str  #: "pass", "fail" or "skip"
    seconds: float
    #: The error's last line (empty when it passed).
    error: str = ""
    #: Where it happened: a URL, or a notebook and cell.
    where: str = ""
    #: What to do about it.
    hint: str = ""
    #: The whole traceback or answer, for the JSON report.
    detail: str = ""
    #: What a passing check found ("5 rows of dp02_dc2_catalogs.Object").
    note: str = ""
    run: int = 1
    #: When the check started (seconds since the epoch).
    started: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class Report:
    """Every result of one ``skydeck check`` invocation."""

    hub: str
    started: float = field(default_factory=time.time)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "skip": 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 3),
            "ok": self.ok,
            "counts": self.counts(),
            "results": [asdict(r) for r in self.results],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


_STYLE = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]skip[/]"}


def render(report: Report, console: Any) -> None:
    """Print ``report`` as a rich table (one row per check) and a one-line summary."""
    from rich.markup import escape
    from rich.table import Table

    users = {r.user for r in report.results}
    runs = {r.run for r in report.results}
    table = Table(title=f"skydeck check: {report.hub}", show_lines=False, expand=True)
    if len(users) > 1:
        table.add_column("user", no_wrap=True)
    if len(runs) > 1:
        table.add_column("run", justify="right")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("error, where, what to do", overflow="fold", ratio=1)
    for r in report.results:
        if r.status == "pass":
            what = f"[dim]{escape(r.note)}[/]"
        else:
            parts = (r.error, f"at {r.where}" if r.where else "", r.hint)
            what = "\n".join(escape(part) for part in parts if part)
        cells = [r.user] if len(users) > 1 else []
        cells += [str(r.run)] if len(runs) > 1 else []
        cells += [escape(r.name), _STYLE[r.status], f"{r.seconds:.1f}", what]
        table.add_row(*cells)
    console.print(table)
    counts = report.counts()
    verdict = "[green]all checks passed[/]" if report.ok else "[bold red]checks failed[/]"
    console.print(
        f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped in {time.time() - report.started:.0f} s"
    )
