"""The hub hands SKYDECK_TAP_DATABASE_URL on to TAP: async jobs then live in PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from skydeck.catalog.tap.service import hub_service
from support.tap import TapRelease, start_tap_server

pytestmark = pytest.mark.postgres


def test_hub_service_forwards_the_job_database_to_postgres(
    postgres_url: str,
    tap_release: TapRelease,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skydeck.hub.services import ServiceContext

    context = ServiceContext(
        name="tap", port=4321, data_dir=tmp_path, state_dir=tmp_path / "tap",
        release_dir=Path(str(tap_release.layout.root)), public_url="http://127.0.0.1:1",
        hub_api_url="http://127.0.0.1:2/hub/api",
    )  # fmt: skip
    monkeypatch.delenv("SKYDECK_TAP_DATABASE_URL", raising=False)
    assert "SKYDECK_TAP_DATABASE_URL" not in hub_service(context)["environment"]
    with monkeypatch.context() as patch:
        patch.setenv("SKYDECK_TAP_DATABASE_URL", postgres_url)
        environment = hub_service(context)["environment"]
    assert environment["SKYDECK_TAP_DATABASE_URL"] == postgres_url

    # the service started with that environment keeps its UWS jobs in PostgreSQL
    server = start_tap_server(
        context.release_dir,
        context.state_dir,
        env={"SKYDECK_TAP_DATABASE_URL": environment["SKYDECK_TAP_DATABASE_URL"]},
    )
    try:
        created = requests.post(
            server.url + "/async",
            data={"LANG": "ADQL", "QUERY": "SELECT TOP 3 objectId FROM Object", "PHASE": "RUN"},
            allow_redirects=False,
            timeout=30,
        )
        assert created.status_code == 303, created.text
        job_id = created.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        engine = sa.create_engine(postgres_url)
        try:
            deadline = time.monotonic() + 60
            phase = None
            while time.monotonic() < deadline:
                with engine.connect() as connection:
                    phase = connection.execute(
                        sa.text("SELECT phase FROM tap_jobs WHERE job_id = :id"), {"id": job_id}
                    ).scalar_one_or_none()
                if phase in {"COMPLETED", "ERROR"}:
                    break
                time.sleep(0.3)
            assert phase == "COMPLETED"
        finally:
            engine.dispose()
        assert not (context.state_dir / "jobs.sqlite3").exists()
    finally:
        server.stop()
