"""The layout of a published Skydeck data release.

This module is the one place that knows where things live inside a release.
Everything else (the release build, the TAP service, the lab library) asks it
instead of guessing paths.

A release is a directory (or an object-store prefix such as ``s3://bucket/release``)::

    <release>/
      manifest.json            what was published: size, seed, catalogs with row counts
      butler/                  the Butler repository (butler.yaml, registry, datastore)
      hats/<name>/             one HATS catalog per published table (Object, Source, ...)
      schema/<schema>.yaml     felis schemas describing exactly what is published
      LICENSES/                licences and attributions of third-party data (Gaia DR3)

The build writes everything into a staging directory beside ``release/`` and
publishes it with one atomic rename, so a reader sees either no release or a
complete one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upath import UPath

#: Environment variable through which the spawner tells a lab where the release is.
RELEASE_ENV = "SKYDECK_RELEASE"

#: Name of the release directory inside a Skydeck data directory.
RELEASE_DIRNAME = "release"

MANIFEST_NAME = "manifest.json"

_ENTRY_FIELDS = {"description", "rows", "path", "schema"}


class ReleaseNotFoundError(FileNotFoundError):
    """Raised when no published release exists where one was expected."""


@dataclass(frozen=True)
class CatalogEntry:
    """One published catalog, as the manifest records it."""

    name: str
    description: str
    rows: int
    path: str
    schema: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseLayout:
    """Paths inside one release; ``root`` may be local or a remote URI."""

    root: UPath

    @classmethod
    def at(cls, root: str | os.PathLike[str] | UPath) -> ReleaseLayout:
        """The layout of a release rooted at ``root``."""
        return cls(UPath(root))

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> ReleaseLayout:
        """The layout of the release inside a Skydeck data directory."""
        return cls(UPath(Path(data_dir) / RELEASE_DIRNAME))

    @classmethod
    def from_env(cls) -> ReleaseLayout:
        """The release named by the discovery environment (``SKYDECK_RELEASE``)."""
        value = os.environ.get(RELEASE_ENV)
        if not value:
            raise ReleaseNotFoundError(
                f"{RELEASE_ENV} is not set, so Skydeck does not know where the data release is. "
                "In a Skydeck lab the hub sets it; elsewhere set it to a release directory, "
                "or build one with `skydeck data build`."
            )
        return cls.at(value)

    @property
    def manifest_path(self) -> UPath:
        return self.root / MANIFEST_NAME

    @property
    def butler_repo(self) -> UPath:
        return self.root / "butler"

    @property
    def hats_dir(self) -> UPath:
        return self.root / "hats"

    @property
    def schema_dir(self) -> UPath:
        return self.root / "schema"

    @property
    def licenses_dir(self) -> UPath:
        return self.root / "LICENSES"

    def catalog_path(self, name: str) -> UPath:
        """Where the HATS catalog ``name`` is published."""
        return self.hats_dir / name

    def exists(self) -> bool:
        """Whether a complete release is published here (the manifest is written last)."""
        return self.manifest_path.exists()

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dictionary; raises `ReleaseNotFoundError` if there is none."""
        if not self.exists():
            raise ReleaseNotFoundError(
                f"No Skydeck data release at {self.root}. Build one with `skydeck data build`."
            )
        result: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return result

    def catalogs(self) -> list[CatalogEntry]:
        """The published catalogs, in manifest order."""
        entries = self.read_manifest().get("catalogs", {})
        return [
            CatalogEntry(
                name=name,
                description=info.get("description", ""),
                rows=int(info.get("rows", 0)),
                path=info.get("path", f"hats/{name}"),
                schema=info.get("schema", ""),
                extra={
                    k: v
                    for k, v in info.items()
                    if k not in {"description", "rows", "path", "schema"}
                },
            )
            for name, info in entries.items()
        ]
