"""The hub's proxy holds the door for everyone (issue 15, finding 2).

Large bodies stream through both ways, a request may take longer than 20 s, and one
user's pile of long polls neither queues nor refuses another user's requests.  The
upstream is a managed test service (``support.upstream``) behind the real proxy that
``skydeck up`` starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from support.hub import RunningHub, free_port
from support.upstream import CHUNK, SERVICE, upstream_config

pytestmark = pytest.mark.slow

#: Larger than the 100 MB body cap of the Python proxy this replaced.
LARGE_MB = 130
#: Longer than the 20 s after which the Python proxy answered 503.
LONG_S = 23
#: One user's simultaneous long polls (the Python proxy forwarded about 10 at once).
POLLS = 50


@dataclass
class Proxied:
    hub: RunningHub
    port: int  # the upstream's own port, to look behind the proxy

    @property
    def url(self) -> str:
        return f"{self.hub.url}/services/{SERVICE}"

    def in_flight(self) -> int:
        response = requests.get(
            f"http://127.0.0.1:{self.port}/services/{SERVICE}/inflight", timeout=10
        )
        return int(response.text)


@pytest.fixture(scope="module")
def proxied(hub_factory, tmp_path_factory) -> Proxied:
    port = free_port()
    config = upstream_config(tmp_path_factory.mktemp("upstream") / "upstream_config.py", port)
    return Proxied(hub_factory(extra_config=[config]), port)


def test_large_response_streams_through(proxied: Proxied) -> None:
    received = 0
    with requests.get(f"{proxied.url}/bytes?mb={LARGE_MB}", stream=True, timeout=120) as response:
        assert response.status_code == 200, response.text[:200]
        for chunk in response.iter_content(CHUNK):
            received += len(chunk)
    assert received == LARGE_MB * CHUNK


def test_large_upload_streams_through(proxied: Proxied) -> None:
    def body() -> Iterator[bytes]:
        block = bytes(CHUNK)
        for _ in range(LARGE_MB):
            yield block

    response = requests.post(f"{proxied.url}/upload", data=body(), timeout=120)
    assert response.status_code == 200, response.text[:200]
    assert response.text == str(LARGE_MB * CHUNK)


def test_request_longer_than_20_s_is_not_cut(proxied: Proxied) -> None:
    response = requests.get(f"{proxied.url}/sleep?s={LONG_S}", timeout=120)
    assert response.status_code == 200, response.text[:200]
    assert response.text == f"slept {LONG_S}"


def test_one_users_long_polls_do_not_hold_the_door(proxied: Proxied) -> None:
    hub = proxied.hub
    mallory = {"Authorization": f"token {hub.user_token('mallory')}"}
    bob = hub.user_token("bob")

    def poll(_: int) -> requests.Response:
        return requests.get(f"{proxied.url}/sleep?s=30", headers=mallory, timeout=180)

    with ThreadPoolExecutor(POLLS) as pool:
        polls = [pool.submit(poll, i) for i in range(POLLS)]
        # Hang guard, not a time bound: wait until the upstream holds every poll.
        guard = time.monotonic() + 25
        held = proxied.in_flight()
        while held < POLLS and time.monotonic() < guard:
            time.sleep(0.2)
            held = proxied.in_flight()
        # Another user, while the polls are open: the hub API and a small request.
        api = hub.api("GET", "/user", token=bob, timeout=120)
        small = requests.get(
            f"{proxied.url}/sleep?s=0", headers={"Authorization": f"token {bob}"}, timeout=120
        )
        still_open = proxied.in_flight()
        results = [future.result() for future in polls]
    assert held == POLLS, f"the upstream saw only {held} of {POLLS} simultaneous polls"
    assert api.status_code == 200, api.text[:200]
    assert api.json()["name"] == "bob"
    assert small.status_code == 200, small.text[:200]
    # Bob's requests were answered while the polls were still open.
    assert still_open == POLLS
    assert [r.status_code for r in results] == [200] * POLLS
