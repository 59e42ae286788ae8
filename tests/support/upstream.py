"""A test upstream behind the hub's proxy: large bodies, slow answers, long polls.

Registered as a managed JupyterHub service (``/services/upstream/``) by the config
`upstream_config` writes, so requests travel browser -> proxy -> service exactly as
they do to TAP or the cutout service.  Run as a script by the hub::

    python upstream.py PORT

Routes (below the service prefix):

- ``GET bytes?mb=N``: N MiB of zeros, written 1 MiB at a time (a large result);
- ``GET sleep?s=S``: answers ``slept S`` after S seconds (a long sync query, a UWS WAIT);
- ``POST upload``: reads the body as it arrives and answers the byte count (an upload);
- ``GET inflight``: how many ``sleep`` requests are open right now (asked on the service's
  own port, to see how many requests the proxy let through).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

SERVICE = "upstream"
CHUNK = 1 << 20


def upstream_config(path: Path, port: int) -> Path:
    """Write a hub config file that runs this module as the managed service ``upstream``."""
    spec = {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, str(Path(__file__).resolve()), str(port)],
    }
    path.write_text(f"c.JupyterHub.services.append({spec!r})\n")
    return path


def main(port: int) -> None:
    from tornado import web

    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE}/")

    class Bytes(web.RequestHandler):
        async def get(self) -> None:
            megabytes = int(self.get_argument("mb"))
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Length", str(megabytes * CHUNK))
            block = bytes(CHUNK)
            for _ in range(megabytes):
                self.write(block)
                await self.flush()

    sleeping = 0

    class Sleep(web.RequestHandler):
        async def get(self) -> None:
            nonlocal sleeping
            seconds = float(self.get_argument("s"))
            sleeping += 1
            try:
                await asyncio.sleep(seconds)
            finally:
                sleeping -= 1
            self.finish(f"slept {seconds:g}")

    class InFlight(web.RequestHandler):
        def get(self) -> None:
            self.finish(str(sleeping))

    @web.stream_request_body
    class Upload(web.RequestHandler):
        def prepare(self) -> None:
            self.received = 0
            self.request.connection.set_max_body_size(1 << 40)  # type: ignore[attr-defined]

        def data_received(self, chunk: bytes) -> None:
            self.received += len(chunk)

        def post(self) -> None:
            self.finish(str(self.received))

    app = web.Application(
        [
            (prefix + "bytes", Bytes),
            (prefix + "sleep", Sleep),
            (prefix + "upload", Upload),
            (prefix + "inflight", InFlight),
        ]
    )

    async def forever() -> None:
        app.listen(port, "127.0.0.1", idle_connection_timeout=3600, body_timeout=3600)
        await asyncio.Event().wait()

    asyncio.run(forever())


if __name__ == "__main__":
    main(int(sys.argv[1]))
