"""``skydeck images ...``: ingest your own FITS images (installed through ``skydeck.commands``)."""

from __future__ import annotations

import click


@click.group()
def images() -> None:
    """Work with images: ingest your own FITS files into the Butler."""


@images.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--collection",
    default=None,
    help="Butler RUN collection to register into (default: u/<your user>/images).",
)
@click.option(
    "--repo",
    default=None,
    help="Butler repository (default: the data release's, from SKYDECK_RELEASE).",
)
@click.option("--band", default=None, help="Band of every file (default: from FILTER/BAND).")
def ingest_command(
    files: tuple[str, ...], collection: str | None, repo: str | None, band: str | None
) -> None:
    """Register FITS images with a celestial WCS so spatial queries and cutouts find them.

    All files are checked first; if any cannot be ingested, nothing is registered.
    """
    from skydeck.catalog.release import ReleaseNotFoundError
    from skydeck.images.ingest import IngestError, default_collection, ingest

    target = collection or default_collection()
    try:
        done = ingest(list(files), repo=repo, collection=target, band=band)
    except (IngestError, ReleaseNotFoundError) as err:
        raise click.ClickException(f"{err}\nNothing was ingested.") from err
    for item in done:
        ra, dec = item.center
        click.echo(
            f"{item.path}: {item.dataset_id} band={item.band} "
            f"centre=({ra:.6f}, {dec:.6f}) visit={item.visit}"
        )
    click.echo(f"Ingested {len(done)} image(s) into collection {target}.")
