"""JupyterHub as ``skydeck up`` runs it: one clean-up that stops everything at once.

JupyterHub's own clean-up (on SIGINT/SIGTERM) stops the managed services one after
another, each waited for with a growing back-off, before it stops the labs, and it runs
once per signal received: two signals (a terminal's Ctrl-C plus ``skydeck up``
forwarding it) made two clean-ups race to stop the same lab, the second failing with
``Failed to stop user: ''``.  Here the clean-up runs once, however many signals arrive,
and first stops every managed service and every lab concurrently; JupyterHub's own
clean-up then finds them stopped and stops the proxy.

After the clean-up the process leaves at once (`main`).  Run as ``python -m
skydeck.hub._hub_app -f CONFIG`` (what `skydeck.hub.supervisor` does); deployments that
run plain ``jupyterhub`` are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from jupyterhub.app import JupyterHub


class SkydeckHub(JupyterHub):
    """JupyterHub whose shutdown is concurrent and runs once."""

    _cleanup_future: asyncio.Future[None] | None = None

    async def cleanup(self) -> None:
        """Shut down once; a second signal waits for the shutdown already running."""
        if self._cleanup_future is None:
            self._cleanup_future = asyncio.ensure_future(self._cleanup_once())
        await asyncio.shield(self._cleanup_future)

    async def _cleanup_once(self) -> None:
        await self._stop_all_at_once()
        await super().cleanup()

    async def _stop_all_at_once(self) -> None:
        """Stop managed services and (if ``cleanup_servers``) labs concurrently."""
        stops: dict[str, Any] = {}
        for service in self._service_map.values():
            if service.managed:
                stops[f"service {service.name}"] = service.stop()
        if self.cleanup_servers:
            for user in self.users.values():
                for name, spawner in list(user.spawners.items()):
                    if spawner.active and not spawner.pending:
                        stops[f"server {user.name}/{name}"] = user.stop(name)
        if not stops:
            return
        self.log.info("Stopping %d services and servers at once...", len(stops))
        started = time.monotonic()

        async def stop(what: str, stopping: Any) -> None:
            try:
                await stopping
            except Exception as error:
                self.log.error("Failed to stop %s: %r", what, error)
            else:
                self.log.info("Stopped %s in %.1f s", what, time.monotonic() - started)

        await asyncio.gather(*(stop(what, stopping) for what, stopping in stops.items()))


def main() -> None:
    """Run the hub; once it has shut down, leave without the interpreter's teardown.

    The teardown is one full garbage collection over everything the hub imported (the
    service factories bring pyarrow, DuckDB, ...): seconds of CPU after the clean-up has
    stopped, saved and logged everything.
    """
    SkydeckHub.launch_instance()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
