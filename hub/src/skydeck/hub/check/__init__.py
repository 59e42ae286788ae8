"""Synthetic users: checks that use a Skydeck deployment through its public interfaces.

``skydeck check`` (the ``check`` entry point of ``skydeck.commands``) starts bot
users that do what people do: log in through the login form, spawn a lab of
each size they are offered, run every tutorial in that lab's kernel, query TAP
through pyvo, fetch a SODA cutout, open an lsdb catalog, start and stop a
dask-gateway cluster, then stop the lab and clean up.  Only public HTTP
interfaces are used, so the same command checks a Kubernetes deployment.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click

from skydeck.hub.check._report import GROUPS, CheckResult, Report

__all__ = ["check"]

_TOKEN_HELP = """\
An API token of a hub admin, or better of a dedicated service with only the
scope the bots need: creating the bots' users and credentials ('admin:users'),
e.g. in the hub's config:

\b
  c.JupyterHub.services.append({"name": "skydeck-check", "api_token": TOKEN})
  c.JupyterHub.load_roles.append({"name": "skydeck-check",
      "scopes": ["admin:users"], "services": ["skydeck-check"]})

Each bot then works with its own login session and a short-lived token of its own.
"""


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@click.command(
    epilog=_TOKEN_HELP, context_settings={"max_content_width": 100, "show_default": True}
)
@click.option(
    "--hub",
    "hub_url",
    default="http://127.0.0.1:8000",
    envvar="SKYDECK_CHECK_HUB",
    help="The hub's public URL [env: SKYDECK_CHECK_HUB].",
)
@click.option(
    "--token",
    default="",
    envvar="SKYDECK_CHECK_TOKEN",
    show_default=False,
    help="Admin or skydeck-check token that issues the bots' credentials "
    "[env: SKYDECK_CHECK_TOKEN]; see below.",
)
@click.option(
    "--password",
    default="",
    envvar="SKYDECK_CHECK_PASSWORD",
    show_default=False,
    help="The bots' password, for a hub that cannot issue credentials (a shared "
    "user password) [env: SKYDECK_CHECK_PASSWORD].",
)
@click.option("--users", default=1, type=click.IntRange(1, 500), help="Bots running at once.")
@click.option("--user-prefix", default="bot-check", help="Bot user names: PREFIX-1, PREFIX-2...")
@click.option(
    "--repeat",
    default=None,
    type=click.IntRange(0),
    help="Runs to make (0: until interrupted). [default: 1, or 0 with --interval]",
)
@click.option(
    "--interval",
    default=0.0,
    type=click.FloatRange(0),
    help="Seconds from the start of one run to the start of the next.",
)
@click.option(
    "--only",
    default=",".join(GROUPS),
    help="Checks to run, comma-separated (login and cleanup always run).",
)
@click.option(
    "--sizes",
    default="",
    show_default=False,
    help="Only these lab sizes, comma-separated (default: every size offered).",
)
@click.option(
    "--tutorials",
    default="",
    show_default=False,
    help="Only tutorials whose file name starts with one of these, e.g. '01,02a'.",
)
@click.option("--spawn-timeout", default=300.0, help="Seconds a lab may take to start or stop.")
@click.option("--cell-timeout", default=600.0, help="Seconds one notebook cell or check may take.")
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JSON to this file (rewritten after each run).",
)
@click.option("--quiet", is_flag=True, help="No line per check while running; only the table.")
def check(
    hub_url: str,
    token: str,
    password: str,
    users: int,
    user_prefix: str,
    repeat: int | None,
    interval: float,
    only: str,
    sizes: str,
    tutorials: str,
    spawn_timeout: float,
    cell_timeout: float,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Synthetic users: log in, spawn labs, run the tutorials and the services, like people.

    Exits with status 1 when any check failed, 0 when all passed.
    """
    from rich.console import Console
    from rich.markup import escape

    from skydeck.hub.check._bot import Options, run_bots

    groups = set(_split(only))
    unknown = groups - set(GROUPS)
    if unknown:
        raise click.BadParameter(
            f"unknown check(s) {', '.join(sorted(unknown))}; choose among {', '.join(GROUPS)}",
            param_hint="--only",
        )
    if not token and not password:
        raise click.UsageError(
            "give --token (SKYDECK_CHECK_TOKEN) so the bots get credentials, "
            "or --password for a hub with a shared user password"
        )
    options = Options(
        hub=hub_url.rstrip("/"),
        token=token,
        password=password,
        groups=groups | {"login", "cleanup"},
        sizes=_split(sizes),
        tutorials=_split(tutorials),
        spawn_timeout=spawn_timeout,
        cell_timeout=cell_timeout,
    )
    names = [f"{user_prefix}-{i}" for i in range(1, users + 1)]
    runs = (0 if interval else 1) if repeat is None else repeat
    out, err = Console(), Console(stderr=True)
    report = Report(hub=options.hub)
    lock = threading.Lock()

    def record(result: CheckResult) -> None:
        with lock:
            report.results.append(result)
        if not quiet:
            mark = {"pass": "[green]ok[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}
            text = result.error if result.failed else result.note
            line = f"{result.user} {result.name} ({result.seconds:.1f} s)"
            line += f": {text}" if text else ""
            err.print(f"{mark[result.status]} {escape(line)}", highlight=False)

    from skydeck.hub.check._report import render

    number = 0
    try:
        while runs == 0 or number < runs:
            number += 1
            started = time.monotonic()
            run_bots(options, names, record, number)
            if json_path is not None:
                report.write_json(json_path)
            if runs and number >= runs:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        err.print("interrupted")
    render(report, out)
    if json_path is not None:
        report.write_json(json_path)
    sys.exit(0 if report.ok and report.results else 1)
