"""The whole quota path on PostgreSQL: hub hooks and quota service share one database."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests

from skydeck.hub.quota.store import QuotaStore
from support.hub import RunningHub

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_hub_and_service_on_postgres(
    hub_factory: Callable[..., RunningHub], postgres_url: str, tmp_path
) -> None:
    release = tmp_path / "empty-release"
    release.mkdir()
    (release / "manifest.json").write_text(json.dumps({"catalogs": {}}))
    hub = hub_factory(release=release, env={"SKYDECK_QUOTA_DB_URL": postgres_url})
    admin = {"Authorization": f"token {hub.admin_token}"}
    base = f"{hub.url}/services/quota/api/"
    deadline = time.monotonic() + 60
    while requests.get(base + "policy", headers=admin, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"quota service not up; see {hub.log_path}"
        time.sleep(0.3)
    try:
        hub.ensure_user("pg-lee")
        body = {"quota": {"lab": {"spawn": False}}, "reason": "postgres check"}
        put = requests.put(base + "users/pg-lee/override", json=body, headers=admin, timeout=30)
        assert put.status_code == 200, put.text
        # The hub's spawn hook reads the same PostgreSQL database and refuses.
        refused = hub.api("POST", "/users/pg-lee/server")
        assert refused.status_code == 403 and "disabled" in refused.json()["message"]
        store = QuotaStore(postgres_url)
        try:
            entry = store.audit_log(limit=1)[0]
            assert (entry.action, entry.target, entry.reason) == (
                "set-override",
                "user:pg-lee",
                "postgres check",
            )
            assert store.get_override("pg-lee") is not None
        finally:
            store.close()
        assert not (hub.data_dir / "services" / "quota" / "quota.sqlite").exists()
    finally:
        hub.stop()
