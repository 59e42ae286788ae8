"""``skydeck data ...``: build the data release (installed through ``skydeck.commands``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


class RichReporter:
    """Shows one rich progress bar per build stage."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def start(self, stage: str, total: int) -> None:
        if stage in self._tasks:
            self._progress.update(self._tasks[stage], total=total, completed=0)
        else:
            self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, steps: int = 1) -> None:
        self._progress.advance(self._tasks[stage], steps)

    def done(self, stage: str, seconds: float) -> None:
        task = self._tasks.get(stage)
        if task is not None:
            total = self._progress.tasks[task].total or 1
            self._progress.update(task, completed=total, description=f"{stage} ({seconds:.1f}s)")

    def message(self, text: str) -> None:
        self._progress.console.print(text)


@click.group()
def data() -> None:
    """Build and inspect the Skydeck data release."""


@data.command()
@click.option(
    "--data-dir",
    default="skydeck-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Skydeck data directory; the release is published as <data-dir>/release.",
)
@click.option(
    "--size",
    default="demo",
    show_default=True,
    type=click.Choice(["tiny", "demo"]),
    help="tiny: for tests (seconds); demo: what the tutorials use (minutes).",
)
@click.option(
    "--seed", default=42, show_default=True, type=int, help="Random seed (deterministic)."
)
@click.option(
    "--registry",
    default=None,
    help="Butler registry database URL (e.g. postgresql://user@host/db); default SQLite.",
)
@click.option(
    "--datastore",
    default=None,
    help="Butler datastore root URI (e.g. s3://bucket/prefix); default inside the repository.",
)
@click.option(
    "--jobs",
    "-j",
    default=0,
    type=click.IntRange(min=0),
    help="Processes to render and process images on; 0 (the default) uses every CPU.",
)
def build(
    data_dir: Path,
    size: str,
    seed: int,
    registry: str | None,
    datastore: str | None,
    jobs: int,
) -> None:
    """Simulate, process and publish the data release into DATA_DIR/release."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from skydeck.images.release.build import BuildError, BuildOptions, build_release

    options = BuildOptions(
        data_dir=data_dir.resolve(),
        size=size,
        seed=seed,
        registry=registry,
        datastore=datastore,
        jobs=jobs,
    )
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        try:
            layout = build_release(options, RichReporter(progress))
        except BuildError as error:
            click.echo(f"skydeck data build: error: {error}", err=True)
            sys.exit(2)
    click.echo(f"Release published at {layout.root}")


@data.command()
@click.option(
    "--data-dir",
    default="skydeck-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Skydeck data directory.",
)
@click.option(
    "--release",
    default=None,
    envvar="SKYDECK_RELEASE",
    help="A release elsewhere (directory or s3://bucket/prefix) instead of DATA_DIR/release.",
)
def info(data_dir: Path, release: str | None) -> None:
    """Show what the published release contains (exit status 1 if there is none)."""
    from skydeck.catalog.release import ReleaseLayout, ReleaseNotFoundError

    layout = ReleaseLayout.at(release) if release else ReleaseLayout.in_data_dir(data_dir)
    try:
        catalogs = layout.catalogs()
    except ReleaseNotFoundError as error:
        click.echo(f"skydeck data info: {error}", err=True)
        sys.exit(1)
    except Exception as error:  # an object store that does not answer, or refuses us
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        click.echo(
            f"skydeck data info: cannot read the release at {layout.root}: {reason}. Check the "
            "address and the S3 settings (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).",
            err=True,
        )
        sys.exit(1)
    click.echo(f"Release at {layout.root}")
    for entry in catalogs:
        click.echo(f"  {entry.name:<14} {entry.rows:>9} rows  {entry.path}")


@data.command()
@click.option(
    "--data-dir",
    default="skydeck-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Skydeck data directory whose release (DATA_DIR/release) is published.",
)
@click.option(
    "--to",
    "target",
    required=True,
    help="Object-store prefix to publish to, e.g. s3://bucket/dr1 (must not hold a release).",
)
@click.option(
    "--registry",
    required=True,
    help="PostgreSQL URL for the published Butler registry (no password: use PGPASSWORD).",
)
def publish(data_dir: Path, target: str, registry: str) -> None:
    """Copy the built release to object storage, its Butler registry to PostgreSQL."""
    from skydeck.catalog.release import ReleaseLayout
    from skydeck.images.publish import PublishError, publish_release

    try:
        layout = publish_release(
            ReleaseLayout.in_data_dir(data_dir.resolve()), target, registry, report=click.echo
        )
    except PublishError as error:
        click.echo(f"skydeck data publish: error: {error}", err=True)
        sys.exit(2)
    click.echo(f"Release published at {layout.root}; serve it with `skydeck up --release {target}`")
