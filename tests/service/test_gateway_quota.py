"""dask-gateway sizes clusters through the one quota client: names encoded, closed on failure.

Runs in a subprocess: importing ``dask_gateway_server`` rewrites traitlets' global
logging setup (see ``skydeck.hub.gateway``). The quota service is a stand-in on
loopback answering one user's ``dask`` quota.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from skydeck.service import UNAVAILABLE
from support.hub import free_port

SCRIPT = """
import asyncio, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dask_gateway_server.backends.base import PublicException
from skydeck.hub._gateway_backend import SkydeckGatewayBackend

class StandIn(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        known = self.path == "/services/quota/api/users/odd%3Fname%23x/quota"
        body = json.dumps({"quota": {"dask": {"clusters": 5, "workers": 2}}}).encode()
        self.send_response(200 if known else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
threading.Thread(target=server.serve_forever, daemon=True).start()
found = {}
backend = SkydeckGatewayBackend()
backend.quota_url = f"http://127.0.0.1:{server.server_port}/services/quota/"
limits = asyncio.run(backend.limits_for("odd?name#x"))
found["odd"] = [limits.max_clusters, limits.max_workers]
backend = SkydeckGatewayBackend()
backend.quota_url = sys.argv[1]
try:
    asyncio.run(backend.limits_for("alice"))
    found["down"] = "sized"
except PublicException as error:
    found["down"] = str(error)
print(json.dumps(found))
"""


def test_clusters_are_sized_by_the_quota_service_or_not_at_all():
    dead = f"http://127.0.0.1:{free_port()}/services/quota/"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), dead],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["odd"] == [5, 2]  # "odd?name#x" is its own user, not "odd"
    assert UNAVAILABLE in found["down"]
