"""Tutorials in every home: copied at first login, refreshed without losing anyone's edits.

When a user's lab starts, the spawner calls `deliver` to bring the shipped
tutorial notebooks into ``<home>/tutorials/``:

- a tutorial the user does not have yet is copied;
- a copy the user has not edited (its checksum is still the one recorded when it was
  shipped) is replaced by a newer release of the tutorial;
- a copy the user *has* edited is never touched: the newer release is written beside
  it as ``<name>.new.ipynb`` for the user to compare and adopt;
- a tutorial the user deleted stays deleted (the Tutorials menu of the lab
  extension brings it back on request).

The checksums live in ``<home>/tutorials/.skydeck-tutorials.json``, the same manifest
(relative path -> SHA-256 of the shipped copy) that the lab extension's Tutorials
menu keeps, so both agree on what "edited" means.

With KubeSpawner (no shared file system with the hub) run the same logic in an init
container: ``python -m skydeck.hub.tutorials --home /home/<user>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: The manifest of shipped checksums (shared with the lab extension's Tutorials menu).
MANIFEST = ".skydeck-tutorials.json"

#: Folder inside the home that receives the tutorials.
SUBDIR = "tutorials"

#: Environment variable naming the folder of tutorials to ship (overrides the defaults).
SOURCE_ENV = "SKYDECK_TUTORIALS_DIR"

#: Suffix of a newer release written beside an edited copy: ``01_intro.new.ipynb``.
NEW_SUFFIX = ".new.ipynb"

log = logging.getLogger(__name__)


def default_source() -> Path | None:
    """Where the shipped tutorials are: ``$SKYDECK_TUTORIALS_DIR``, else the installed
    ``<prefix>/share/skydeck/tutorials``, else a source checkout's ``notebooks/``."""
    from_env = os.environ.get(SOURCE_ENV, "").strip()
    if from_env:
        return Path(from_env)
    for candidate in (
        Path(sys.prefix) / "share" / "skydeck" / "tutorials",
        Path(__file__).resolve().parents[4] / "notebooks",
    ):
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    return None


@dataclass
class Delivery:
    """What one delivery did, by tutorial (paths relative to the tutorials folder)."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)  #: newer release written as *.new.ipynb
    unchanged: list[str] = field(default_factory=list)
    kept_deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(items)} {label}"
            for label, items in (
                ("copied", self.copied),
                ("updated", self.updated),
                ("offered beside edited copies", self.offered),
                ("unchanged", self.unchanged),
                ("left deleted", self.kept_deleted),
            )
            if items
        ]
        return ", ".join(parts) or "no tutorials"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_notebooks(source: Path) -> list[str]:
    """The tutorials under ``source`` (hidden and ``_private`` paths skipped), '/'-separated."""
    if not source.is_dir():
        raise FileNotFoundError(
            f"The tutorials folder {source} does not exist; set {SOURCE_ENV} to a folder "
            "of notebooks, or to nothing to use the installed tutorials."
        )
    found = []
    for path in sorted(source.rglob("*.ipynb")):
        relative = path.relative_to(source)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        if path.name.endswith(NEW_SUFFIX):
            continue
        found.append(relative.as_posix())
    return found


def _read_manifest(target: Path) -> dict[str, str]:
    try:
        data = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tutorial-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_name(relative: str) -> str:
    """Where a newer release of an edited tutorial is offered: ``a/01_x.ipynb`` ->
    ``a/01_x.new.ipynb``."""
    return relative[: -len(".ipynb")] + NEW_SUFFIX


def deliver(source: Path, home: Path, subdir: str = SUBDIR) -> Delivery:
    """Bring the tutorials of ``source`` into ``home/subdir`` (rules in the module doc)."""
    target = home / subdir
    manifest = _read_manifest(target)
    done = Delivery()
    for relative in shipped_notebooks(source):
        shipped = (source / relative).read_bytes()
        shipped_digest = hashlib.sha256(shipped).hexdigest()
        copy = target / relative
        if not copy.exists():
            if relative in manifest:
                done.kept_deleted.append(relative)
                continue
            _write_atomic(copy, shipped)
            manifest[relative] = shipped_digest
            done.copied.append(relative)
            continue
        current = _digest(copy)
        if current == shipped_digest:
            manifest[relative] = shipped_digest
            done.unchanged.append(relative)
        elif manifest.get(relative) == current:
            _write_atomic(copy, shipped)
            manifest[relative] = shipped_digest
            done.updated.append(relative)
        else:
            # Edited by the user (or not ours): offer the new release beside it.
            offer = new_name(relative)
            offer_path = target / offer
            if offer_path.exists():
                existing = _digest(offer_path)
                if existing == shipped_digest:
                    continue
                if manifest.get(offer) != existing:
                    continue  # the user edited the offered copy too: leave it alone
            _write_atomic(offer_path, shipped)
            manifest[offer] = shipped_digest
            done.offered.append(relative)
    if manifest != _read_manifest(target):
        _write_atomic(
            target / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        )
    return done


def _resolve_source(source: str | Path | None) -> Path | None:
    if source == "":
        return None
    return Path(source) if source is not None else default_source()


def lab_environment(source: str | Path | None = None) -> dict[str, str]:
    """``SKYDECK_TUTORIALS_DIR`` for the lab, so its Tutorials menu offers the same folder."""
    folder = _resolve_source(source)
    return {SOURCE_ENV: str(folder)} if folder is not None else {}


def deliver_for_spawn(home: str | Path, source: str | Path | None = None) -> Delivery | None:
    """The spawner's hook: deliver into ``home``, logging instead of failing the spawn.

    ``source`` ``None`` means `default_source`; an empty string disables delivery.
    """
    folder = _resolve_source(source)
    if folder is None:
        log.info("No tutorials to deliver (set %s to a folder of notebooks)", SOURCE_ENV)
        return None
    try:
        done = deliver(folder, Path(home))
    except OSError as error:
        # A lab without tutorials is better than no lab: say why and carry on.
        log.warning("Could not deliver the tutorials from %s into %s: %s", folder, home, error)
        return None
    log.info("Tutorials for %s: %s", home, done.summary())
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m skydeck.hub.tutorials --home DIR [--source DIR]`` (e.g. an init container)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, type=Path, help="the user's home directory")
    parser.add_argument("--source", type=Path, default=None, help="folder of tutorial notebooks")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    if source is None:
        parser.error(f"no tutorials found; pass --source or set {SOURCE_ENV}")
    done = deliver(source, args.home)
    print(done.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
