"""The one quota client: names encoded, failures closed, every refusal with Retry-After.

The quota service here is a stand-in on loopback that answers like
``skydeck.hub.quota`` for a few users (the real service is exercised through the
hub in ``test_hub_services.py``); what is under test is the client's HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from skydeck.service import (
    UNAVAILABLE,
    QuotaClient,
    QuotaUnavailable,
    RateLimited,
)
from support.hub import free_port

#: user -> their tap quota; everyone else is unknown (404), like a name the hub lacks.
QUOTAS = {
    "odd?name#x": {"maxrec": 7},
    "odd": {"maxrec": 1},
    "slash/name": {"maxrec": 9},
}


class _StandIn(BaseHTTPRequestHandler):
    paths: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _user(self) -> tuple[str, str]:
        self.paths.append(self.path)
        parts = self.path.split("?")[0].split("/")  # /api/users/<user>/<what>[/<service>]
        return unquote(parts[3]), "/".join(parts[4:])

    def do_GET(self) -> None:
        user, what = self._user()
        if what != "quota" or user not in QUOTAS:
            self._send(404, {"message": f"no hub user named {user!r}"}, {})
        else:
            self._send(200, {"user": user, "quota": {"tap": QUOTAS[user]}}, {})

    def do_POST(self) -> None:
        user, what = self._user()
        if user == "greedy?":
            self._send(
                429,
                {"allowed": False, "limit": 2, "remaining": 0, "reset": 17, "message": "slow down"},
                {"Retry-After": "17"},
            )
        elif user == "greedy-no-header":
            self._send(429, {"allowed": False, "limit": 2, "remaining": 0, "reset": 0}, {})
        elif user in QUOTAS and what == "rate/cutouts":
            self._send(200, {"allowed": True, "limit": 5, "remaining": 4, "reset": 60}, {})
        else:
            self._send(503, {"message": "hub unavailable"}, {})


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_user_names_are_encoded(stand_in: str) -> None:
    client = QuotaClient(stand_in, "service-token")
    # "odd?name#x" once became ".../users/odd?name#x/quota": user "odd", or a 404 and
    # the fallback; encoded, it is its own user
    assert client.limits("odd?name#x", "tap") == {"maxrec": 7}
    assert client.limits("slash/name", "tap") == {"maxrec": 9}
    assert "/api/users/odd%3Fname%23x/quota" in _StandIn.paths
    decision = client.hit_rate("odd?name#x", "cutouts")
    assert decision.allowed and decision.headers()["X-RateLimit-Remaining"] == "4"
    assert "/api/users/odd%3Fname%23x/rate/cutouts" in _StandIn.paths


def test_failures_are_closed(stand_in: str) -> None:
    client = QuotaClient(stand_in, "service-token")
    for ask in (lambda: client.limits("nobody", "tap"), lambda: client.hit_rate("x", "tap")):
        with pytest.raises(QuotaUnavailable) as refused:
            ask()
        assert refused.value.message == UNAVAILABLE
        assert refused.value.status == 503 and refused.value.headers()["Retry-After"] == "60"
    down = QuotaClient(f"http://127.0.0.1:{free_port()}/", "service-token", timeout=5)
    with pytest.raises(QuotaUnavailable, match="try again in a minute"):
        down.limits("odd", "tap")
    with pytest.raises(QuotaUnavailable):
        down.hit_rate("odd", "tap")


def test_rate_refusals_carry_retry_after(stand_in: str) -> None:
    client = QuotaClient(stand_in, "service-token")
    with pytest.raises(RateLimited) as limited:
        client.hit_rate("greedy?", "tap")
    assert limited.value.status == 429
    assert limited.value.headers()["Retry-After"] == "17"
    assert "slow down" in limited.value.message and "retry after 17 s" in limited.value.message
    with pytest.raises(RateLimited) as limited:
        client.hit_rate("greedy-no-header", "tap")
    assert int(limited.value.headers()["Retry-After"]) >= 1
