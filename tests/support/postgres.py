"""A real PostgreSQL server for tests, started from the Debian binaries in a temp dir.

``postgres_server`` (session) runs ``initdb`` + ``pg_ctl`` on a free loopback port;
``postgres_url`` (function) creates a fresh, empty database on it and yields its
SQLAlchemy URL (``postgresql+psycopg://...``).  PostgreSQL refuses to run as root,
so when the tests run as root the server runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/bin")]


def _pg_bin(name: str) -> str:
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found; apt-get install -y postgresql")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "test_" + secrets.token_hex(6)
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, stopped (and its files removed) at the end."""
    root = Path(tempfile.mkdtemp(prefix="skydeck-pg-"))
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "nobody"
        entry = pwd.getpwnam(run_as)
        os.chmod(root, 0o700)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    port = _free_port()

    def run(*cmd: str) -> None:
        result = subprocess.run(
            list(cmd), user=run_as, capture_output=True, text=True, check=False, cwd=root
        )
        if result.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed:\n{result.stdout}\n{result.stderr}")

    run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    run(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
    try:
        yield PostgresServer("127.0.0.1", port, "postgres")
    finally:
        with contextlib.suppress(RuntimeError):
            run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty database (psycopg 3 driver)."""
    return postgres_server.url(postgres_server.create_database())
