"""The ``skydeck`` command.

Its own subcommands (``up``) live here; other components add theirs through the
``skydeck.commands`` entry-point group (each entry point is a `click.Command`),
so ``skydeck data build`` comes from ``skydeck.images`` without the hub
importing it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from skydeck.hub.config import HubSettings
from skydeck.hub.datadir import DataDir, DataDirError
from skydeck.hub.preflight import PreflightError, check_port_free, check_python, free_port
from skydeck.hub.services import release_location

COMMANDS_GROUP = "skydeck.commands"
DEFAULT_DATA_DIR = "skydeck-data"


class SkydeckGroup(click.Group):
    """A click group that also lists the subcommands other components install."""

    def _plugins(self) -> dict[str, Any]:
        return {e.name: e for e in entry_points(group=COMMANDS_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self._plugins().get(cmd_name)
        if entry is None:
            return None
        loaded: click.Command = entry.load()
        return loaded


@click.group(cls=SkydeckGroup)
def main() -> None:
    """Skydeck: a science platform for astronomy on JupyterHub."""


def _fail(message: str) -> None:
    click.echo(f"skydeck: error: {message}", err=True)
    sys.exit(2)


def _print_credentials(data: DataDir, url: str) -> None:
    creds, created = data.load_or_create_credentials()
    if created:
        click.echo(
            "\nFirst start: the admin's login was generated and saved (mode 0600) in\n"
            f"  {data.credentials_path}\n"
            f"  admin: user '{creds.admin_user}', password {creds.admin_password}\n"
            "Give each user a login of their own with `skydeck users add NAME`.\n"
        )
    click.echo(f"Skydeck is starting at {url}/ (Ctrl-C stops everything)")


#: How long ``skydeck up`` waits for a release elsewhere (e.g. on S3) to answer.
RELEASE_CHECK_TIMEOUT = 60


def _check_release(location: str) -> None:
    """Fail with one line unless a published release answers at ``location``.

    The check runs ``skydeck data info --release <location>`` (the release tools own
    the release layout; the hub imports none of them), so an unreachable object store,
    refused credentials or a prefix without a manifest stop ``skydeck up`` before the
    hub starts, instead of every service failing on its own.
    """
    if "data" not in {e.name for e in entry_points(group=COMMANDS_GROUP)}:
        if "://" not in location and not (Path(location) / "manifest.json").exists():
            _fail(f"no data release is published at {location} (no manifest.json)")
        click.echo(f"skydeck: the release tools are not installed; {location} is not checked")
        return
    cmd = [sys.executable, "-m", "skydeck.hub", "data", "info", "--release", location]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RELEASE_CHECK_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        _fail(
            f"the data release at {location} did not answer in {RELEASE_CHECK_TIMEOUT} s; "
            "check the address and AWS_ENDPOINT_URL"
        )
        return
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("skydeck data info: ") if lines else "no answer"
        _fail(f"cannot serve the data release at {location}: {reason}")


def _ensure_release(data: DataDir, size: str) -> None:
    """Build the data release when none is published, if the builder is installed."""
    if (data.release_dir / "manifest.json").exists():
        return
    if "data" not in {e.name for e in entry_points(group=COMMANDS_GROUP)}:
        click.echo("skydeck: no data release and no release builder installed; starting without")
        return
    click.echo(f"No data release in {data.root}: building the {size} release first.")
    cmd = [sys.executable, "-m", "skydeck.hub", "data", "build", "--data-dir", str(data.root)]
    result = subprocess.run([*cmd, "--size", size], check=False)
    if result.returncode != 0:
        _fail("the data release build failed (see above); fix it and run `skydeck up` again")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the hub, user homes and the data release live.",
)
@click.option(
    "--config",
    "extra_config",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Extra JupyterHub config file(s), loaded after Skydeck's (may be repeated).",
)
@click.option(
    "--release-size",
    default="demo",
    show_default=True,
    type=click.Choice(["demo", "tiny"]),
    help="Size of the data release built on first start.",
)
@click.option("--no-release", is_flag=True, help="Start without building a data release.")
@click.option(
    "--release",
    default=None,
    envvar="SKYDECK_RELEASE",
    help=(
        "Serve the data release published here instead of DATA_DIR/release: a directory, "
        "or an object-store URI such as s3://bucket/dr1 (see `skydeck data publish`; S3 "
        "endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). "
        "Nothing is built; [env: SKYDECK_RELEASE]."
    ),
)
@click.option(
    "--idle-timeout",
    default=3600,
    show_default=True,
    type=int,
    help="Seconds of inactivity after which the idle culler stops a lab.",
)
@click.option("--log-level", default="INFO", show_default=True, help="JupyterHub log level.")
def up(
    host: str,
    port: int,
    data_dir: Path,
    extra_config: tuple[Path, ...],
    release_size: str,
    no_release: bool,
    release: str | None,
    idle_timeout: int,
    log_level: str,
) -> None:
    """Bring the whole platform up on this machine (hub, proxy, services, labs)."""
    from skydeck.hub.supervisor import run_hub

    logging.basicConfig(level=logging.INFO, format="skydeck: %(message)s")
    try:
        check_python()
        check_port_free(host, port)
        data = DataDir(data_dir.resolve())
        data.prepare()
    except (PreflightError, DataDirError) as error:
        _fail(str(error))
    if release:
        location = str(release_location(release))
        _check_release(location)
    elif not no_release:
        _ensure_release(data, release_size)
    settings = HubSettings(
        data_dir=data.root,
        host=host,
        port=port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        idle_timeout=idle_timeout,
        extra_config=[p.resolve() for p in extra_config],
        release=location if release else "",
    )
    _print_credentials(data, settings.public_url)
    sys.exit(run_hub(settings, log_level=log_level))


@main.command()
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
def credentials(data_dir: Path) -> None:
    """Print the login credentials of a data directory as JSON."""
    data = DataDir(data_dir.resolve())
    if not data.credentials_path.exists():
        _fail(f"no credentials in {data.root} yet; run `skydeck up` once first")
    click.echo(json.dumps(json.loads(data.credentials_path.read_text()), indent=2))


@main.group()
def users() -> None:
    """Manage the logins of the embedded default (one password per user)."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--password",
    default=None,
    help="The user's password (8 characters or more); generated when left out.",
)
@click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The data directory of the Skydeck (as given to `skydeck up`).",
)
def users_add(name: str, admin: bool, password: str | None, data_dir: Path) -> None:
    """Create user NAME (or reset its password) and print its password once.

    Works while the hub runs or not; the hub must have started once in DATA_DIR.
    """
    from sqlalchemy.exc import OperationalError

    from skydeck.hub.auth import LoginError, set_login
    from skydeck.hub.auth.database import hub_session

    data = DataDir(data_dir.resolve())
    first_start = f"run `skydeck up --data-dir {data_dir}` once first"
    try:
        with hub_session(data.hub_dir / "jupyterhub.sqlite") as db:
            login = set_login(db, name.strip().lower(), password, admin or None)
    except LoginError as error:
        _fail(str(error))
        return
    except FileNotFoundError as error:
        _fail(f"{error}; {first_start}")
        return
    except OperationalError as error:
        # e.g. a hub database from before per-user logins (no users_info table yet)
        _fail(f"the hub database cannot take logins yet ({error.orig}); {first_start}")
        return
    what = "created" if login.created_user else "given a new password"
    click.echo(f"User {login.name} {what}{' (admin)' if admin else ''}.")
    click.echo(f"Password (shown only now): {login.password}")
