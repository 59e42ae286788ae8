"""The TAP service starts before a release exists, says so, and serves it once published."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from support.tap import TapRelease, start_tap_server

pytestmark = pytest.mark.slow


def test_tap_waits_for_the_release_then_serves_it(tap_release: TapRelease, tmp_path) -> None:
    release = tmp_path / "release"  # nothing published here yet
    server = start_tap_server(release, tmp_path / "tap-data")
    try:
        status = requests.get(server.url + "/availability", timeout=30)
        assert status.status_code == 200
        assert ">false<" in status.text
        refused = server.sync("SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object")
        assert refused.status_code == 503
        assert "skydeck data build" in refused.text
        # Publish: the next query is answered without restarting the service.
        release.symlink_to(Path(str(tap_release.layout.root)), target_is_directory=True)
        answered = server.sync("SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object")
        assert answered.status_code == 200, answered.text
        assert "<TABLE" in answered.text
    finally:
        server.stop()
