"""The tutorial library: which tutorials exist and copying them into the home.

Each copy's content hash at copy time is kept in ``<home>/<subdir>/.skydeck-tutorials.json``
so that a later release of a tutorial replaces an untouched copy silently but never
an edited one without asking (the edited copy is then kept as a backup).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

MANIFEST = ".skydeck-tutorials.json"


class TutorialError(Exception):
    """A request about tutorials that cannot be served; the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Tutorial:
    """One tutorial notebook and the state of the user's copy."""

    path: str  #: relative to the tutorials folder, '/'-separated
    title: str
    description: str
    copy_path: str  #: where the copy lives, relative to the server root
    state: str  #: "new" | "current" | "outdated" | "edited"


@dataclass(frozen=True)
class Opened:
    """What opening a tutorial did."""

    path: str
    action: str  #: "copied" | "unchanged" | "updated" | "replaced"
    backup: str | None = None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _describe(notebook: Path) -> tuple[str, str]:
    """Title (first Markdown heading) and description (the paragraph after it)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return notebook.stem, ""
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = [line.strip() for line in text.splitlines()]
        title = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")
        if not title:
            continue
        after = lines[lines.index(next(x for x in lines if x.startswith("#"))) + 1 :]
        paragraph: list[str] = []
        for line in after:
            if not line:
                if paragraph:
                    break
                continue
            if line.startswith("#"):
                break
            paragraph.append(line)
        return title, " ".join(paragraph)[:300]
    return notebook.stem, ""


class TutorialLibrary:
    """Tutorials under ``source``, copied to ``home/subdir`` on request."""

    def __init__(self, source: Path | None, home: Path, subdir: str) -> None:
        self.source = source
        self.home = home
        self.target = home / subdir
        self.subdir = subdir.strip("/")

    def _notebooks(self) -> list[Path]:
        if self.source is None or not self.source.is_dir():
            return []
        found = []
        for path in sorted(self.source.rglob("*.ipynb")):
            relative = path.relative_to(self.source)
            if any(part.startswith(".") or part.startswith("_") for part in relative.parts):
                continue
            found.append(path)
        return found

    def _manifest(self) -> dict[str, str]:
        try:
            data = json.loads((self.target / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _save_manifest(self, manifest: dict[str, str]) -> None:
        self.target.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.target, prefix=".manifest-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=1, sort_keys=True)
        os.replace(tmp, self.target / MANIFEST)

    def _state(self, relative: str, source: Path, manifest: dict[str, str]) -> str:
        copy = self.target / relative
        if not copy.exists():
            return "new"
        copied, fresh = _digest(copy), _digest(source)
        if copied == fresh:
            return "current"
        if manifest.get(relative) == copied:
            return "outdated"  # untouched since we copied it; the source moved on
        return "edited"

    def list(self) -> list[Tutorial]:
        """Every tutorial with the state of the user's copy."""
        if self.source is None:
            return []
        manifest = self._manifest()
        result = []
        for path in self._notebooks():
            relative = path.relative_to(self.source).as_posix()
            title, description = _describe(path)
            result.append(
                Tutorial(
                    path=relative,
                    title=title,
                    description=description,
                    copy_path=f"{self.subdir}/{relative}",
                    state=self._state(relative, path, manifest),
                )
            )
        return result

    def _resolve(self, relative: str) -> Path:
        pure = PurePosixPath(relative)
        if (
            self.source is None
            or not relative
            or pure.is_absolute()
            or ".." in pure.parts
            or pure.suffix != ".ipynb"
        ):
            raise TutorialError(f"{relative!r} is not a tutorial; pick one from the list.", 404)
        source = self.source / pure
        if source not in self._notebooks():
            raise TutorialError(f"There is no tutorial {relative!r}; pick one from the list.", 404)
        return source

    def open(self, relative: str, overwrite: bool = False) -> Opened:
        """Make sure the user has a fresh copy of a tutorial, and say where it is.

        Raises `TutorialError` (409) when the user's copy was edited and
        ``overwrite`` is false; with ``overwrite`` the edited copy is kept as
        ``<name>.edited-<UTC time>.ipynb`` next to the fresh one.
        """
        source = self._resolve(relative)
        manifest = self._manifest()
        state = self._state(relative, source, manifest)
        copy = self.target / relative
        contents_path = f"{self.subdir}/{relative}"
        if state == "current":
            if manifest.get(relative) != _digest(copy):
                manifest[relative] = _digest(copy)
                self._save_manifest(manifest)
            return Opened(contents_path, "unchanged")
        if state == "edited" and not overwrite:
            raise TutorialError(
                f"You have edited your copy of {relative}. Open your copy, or replace it with "
                "the fresh version (your edited copy is then kept as a backup).",
                409,
            )
        backup = None
        if state == "edited":
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            backup_file = copy.with_name(f"{copy.stem}.edited-{stamp}{copy.suffix}")
            copy.rename(backup_file)
            backup = backup_file.relative_to(self.home).as_posix()
        copy.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=copy.parent, prefix=".tutorial-")
        os.close(handle)
        shutil.copyfile(source, tmp)
        os.replace(tmp, copy)
        manifest[relative] = _digest(copy)
        self._save_manifest(manifest)
        action = {"new": "copied", "outdated": "updated", "edited": "replaced"}[state]
        return Opened(contents_path, action, backup)

    @staticmethod
    def as_json(item: Tutorial | Opened) -> dict[str, object]:
        return asdict(item)
