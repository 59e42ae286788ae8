"""Run code in a real Skydeck kernel of a real lab, through the Jupyter server API.

``LabSession`` creates a kernel with the server's REST API and speaks the
Jupyter messaging protocol over the kernel websocket, the way JupyterLab does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect


class KernelError(AssertionError):
    """The code raised in the kernel; the message carries the traceback."""


@dataclass
class LabSession:
    """One kernel in a user's lab, driven over HTTP and websocket with the user's token."""

    server_url: str  # e.g. http://127.0.0.1:8000/user/alice
    token: str
    kernel_name: str = "skydeck"
    kernel_id: str = ""
    _ws: ClientConnection | None = field(default=None, repr=False)
    _session: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{self.server_url}/api{path}", headers=self.headers, timeout=60, **kwargs
        )

    def start(self) -> LabSession:
        response = self.request("POST", "/kernels", json={"name": self.kernel_name})
        response.raise_for_status()
        self.kernel_id = response.json()["id"]
        ws_url = self.server_url.replace("http://", "ws://", 1)
        self._ws = connect(
            f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self._session}",
            additional_headers=self.headers,
            open_timeout=60,
            max_size=None,
            legacy=True,
        )
        return self

    def execute(self, code: str, timeout: float = 300) -> dict[str, Any]:
        """Run ``code``; returns {'stdout', 'stderr', 'result' (text/plain), 'data'}."""
        assert self._ws is not None, "call start() first"
        msg_id = uuid.uuid4().hex
        self._ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": self._session,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out: dict[str, Any] = {"stdout": "", "stderr": "", "result": None, "data": {}}
        error: dict[str, Any] | None = None
        deadline = time.monotonic() + timeout
        for msg in self._messages(deadline):
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("execute_result", "display_data"):
                out["data"] = content["data"]
                if kind == "execute_result":
                    out["result"] = content["data"].get("text/plain")
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if error is not None:
            raise KernelError("\n".join(error.get("traceback", [])) or error.get("evalue", ""))
        return out

    def _messages(self, deadline: float) -> Iterator[dict[str, Any]]:
        assert self._ws is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("kernel did not answer in time")
            raw = self._ws.recv(timeout=remaining)
            if isinstance(raw, bytes):
                continue  # binary-framed messages carry buffers we do not need
            yield json.loads(raw)

    def shutdown(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self.kernel_id:
            self.request("DELETE", f"/kernels/{self.kernel_id}")
            self.kernel_id = ""
