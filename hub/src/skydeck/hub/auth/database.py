"""The hub database, opened outside the hub (``skydeck users add``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session


@contextmanager
def hub_session(path: Path) -> Iterator[Session]:
    """A session on the embedded hub's SQLite database at ``path`` (must exist).

    Only rows are written (the hub owns the schema and its upgrades); SQLite's
    locking makes this safe while the hub runs.
    """
    if not path.exists():
        raise FileNotFoundError(f"no hub database at {path}")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
