"""Run code in a real Skydeck kernel of a real lab, through the Jupyter server API.

The client is the product's (`skydeck.hub.check._lab.LabKernel`, which ``skydeck
check`` uses too): a kernel created with the server's REST API and driven over the
kernel websocket through the hub's proxy, the way JupyterLab does.  ``LabSession``
only adapts it to the tests' habit of reading ``execute(...)["stdout"]``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import requests

from skydeck.hub.check._lab import KernelError, LabKernel
from skydeck.hub.quota.model import Policy, Quota, offered_sizes

__all__ = [
    "DEFAULT_OFFERED_SIZES",
    "KernelError",
    "LabKernel",
    "LabSession",
    "sizes_offered",
    "spawn_options",
]

#: The lab sizes the default quota offers a user in no group (the spawn form's menu).
DEFAULT_OFFERED_SIZES = [size.name for size in offered_sizes(Policy(), Quota().lab)]


def sizes_offered(hub_url: str, user: str, token: str) -> list[str]:
    """The sizes the running hub's quota service offers ``user`` (what the spawn form lists)."""
    response = requests.get(
        f"{hub_url}/services/quota/api/users/{user}/quota",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return [size["name"] for size in response.json()["sizes"]]


def spawn_options(size: str, offered: list[str]) -> dict[str, str]:
    """What the spawn form sends for ``size``: ``{"size": ...}`` from its menu, or nothing
    when a single size is offered (then there is no menu and the lab starts at once)."""
    if size not in offered:
        raise AssertionError(f"size {size!r} is not offered: {offered}")
    return {"size": size} if len(offered) > 1 else {}


class LabSession:
    """One kernel in a user's lab, driven over HTTP and websocket with the user's token."""

    def __init__(self, server_url: str, token: str, kernel_name: str = "skydeck") -> None:
        self.kernel = LabKernel(server_url, token)
        self.kernel_name = kernel_name

    @property
    def server_url(self) -> str:
        return self.kernel.server_url

    @property
    def token(self) -> str:
        return self.kernel.token

    @property
    def headers(self) -> dict[str, str]:
        return self.kernel.headers

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.kernel.request(method, path, **kwargs)

    def start(self, path: str | None = None) -> LabSession:
        self.kernel.start(self.kernel_name, path=path)
        return self

    def execute(self, code: str, timeout: float = 300) -> dict[str, Any]:
        """Run ``code``; returns {'stdout', 'stderr', 'result' (text/plain), 'data', ...}."""
        return asdict(self.kernel.execute(code, timeout))

    def shutdown(self) -> None:
        self.kernel.shutdown()
