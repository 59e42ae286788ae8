"""The Skydeck data directory: where the embedded platform keeps its state.

Layout (created on first start)::

    <data_dir>/
      credentials.json     the admin's login, generated on first start (mode 0600)
      hub/                 jupyterhub.sqlite, cookie secret, hub logs
      home/<user>/         each user's home directory
      services/<name>/     state of the managed services (TAP jobs, gateway db, ...)
      release/             the published data release (see ``skydeck.catalog.release``)
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class DataDirError(RuntimeError):
    """The data directory cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Credentials:
    """The admin's login in the embedded default, generated on first start.

    Other users get their own password from ``skydeck users add`` (or sign up and
    wait for an admin's approval); none is kept here.
    """

    admin_user: str
    admin_password: str


@dataclass(frozen=True)
class DataDir:
    """Paths inside one Skydeck data directory."""

    root: Path

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    @property
    def home_root(self) -> Path:
        return self.root / "home"

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @property
    def release_dir(self) -> Path:
        return self.root / "release"

    @property
    def credentials_path(self) -> Path:
        return self.root / "credentials.json"

    def service_dir(self, name: str) -> Path:
        return self.services_dir / name

    def prepare(self) -> None:
        """Create the directory tree, failing clearly when it is not writable."""
        try:
            for path in (self.root, self.hub_dir, self.home_root, self.services_dir):
                path.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise DataDirError(
                f"the data directory {self.root} is not writable ({error.strerror}); "
                "choose another with --data-dir"
            ) from error

    def load_or_create_credentials(self, admin_user: str = "admin") -> tuple[Credentials, bool]:
        """The stored credentials, generating them on first use.

        Returns the credentials and whether they were created just now (so the
        caller prints them once).
        """
        path = self.credentials_path
        if path.exists():
            data = json.loads(path.read_text())
            # Files written before per-user logins also hold a shared user password, now unused.
            return Credentials(data["admin_user"], data["admin_password"]), False
        creds = Credentials(admin_user=admin_user, admin_password=secrets.token_urlsafe(32))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(creds.__dict__, stream, indent=2)
        return creds, True
