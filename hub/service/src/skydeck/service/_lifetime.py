"""A managed service stops when the hub that started it is gone.

JupyterHub stops its managed services when it shuts down, but a hub killed outright
(SIGKILL, out of memory) cannot: its services would live on, re-parented to init and
holding their ports. A service started with `exit_with_parent` notices the change of
parent and stops itself gracefully, as the hub would have stopped it.
"""

from __future__ import annotations

import os
import signal
import threading
import time


def exit_with_parent(
    period: float = 2.0, signum: signal.Signals = signal.SIGTERM
) -> threading.Thread:
    """Signal this process once its parent process is gone (checked every ``period`` s).

    uvicorn shuts down cleanly on SIGTERM; a tornado service that stops on
    ``KeyboardInterrupt`` (as the hub stops it) asks for ``signal.SIGINT``. The watcher
    is a daemon thread, so it never keeps the process alive.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
