"""``python -m skydeck.catalog.tap``: run the TAP service with uvicorn."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--release", help="Release directory, or an object-store URI (s3://bucket/release).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Job database and results.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option("--auth", type=click.Choice(["hub", "none"]), help="Override SKYDECK_TAP_AUTH.")
@click.option(
    "--exit-with-parent",
    is_flag=True,
    help="Stop when the process that started this one (the hub) is gone.",
)
def main(
    release: str | None,
    data_dir: Path | None,
    host: str,
    port: int,
    auth: str | None,
    exit_with_parent: bool,
) -> None:
    """Serve TAP over the HATS catalogs of a Skydeck release."""
    import uvicorn

    from skydeck.service import exit_with_parent as watch_parent

    from .app import create_app
    from .config import TapSettings

    overrides: dict[str, object] = {}
    if release is not None:
        overrides["release"] = release if "://" in release else Path(release)
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if auth is not None:
        overrides["auth"] = auth
    settings = TapSettings(**overrides)  # type: ignore[arg-type]
    try:
        settings.require_release()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if exit_with_parent:
        watch_parent()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)


if __name__ == "__main__":
    main()
