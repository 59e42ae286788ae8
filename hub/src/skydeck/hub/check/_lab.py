"""Run code and notebooks in the kernel of a running lab, as JupyterLab does.

Only public interfaces: the lab's Jupyter server REST API (sessions, kernels,
contents) and the kernel websocket, both reached through the hub's proxy with a
token of the lab's user.  So the same client works against a local ``skydeck up``
and a Kubernetes deployment.

>>> with LabKernel("https://skydeck.example/user/alice", token).start() as kernel:  # doctest: +SKIP
...     kernel.execute("1 + 1").result
'2'
>>> run_notebook(url, token, "tutorials/01_getting_started.ipynb")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

#: The kernel every Skydeck lab offers (the only one it allows).
DEFAULT_KERNEL = "skydeck"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LabError(RuntimeError):
    """The lab's Jupyter server refused a request or the kernel stopped answering."""


class KernelError(RuntimeError):
    """Code raised an exception in the kernel; the message carries its traceback."""

    def __init__(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self.ename = ename
        self.evalue = evalue
        self.traceback = _ANSI.sub("", "\n".join(traceback)) or f"{ename}: {evalue}"
        super().__init__(self.traceback)

    @property
    def last_line(self) -> str:
        """``ename: evalue``, the line a summary table shows."""
        return f"{self.ename}: {self.evalue}"


class CellError(KernelError):
    """A notebook cell raised; says which notebook and cell, with the traceback."""

    def __init__(self, notebook: str, index: int, source: str, error: KernelError) -> None:
        self.notebook = notebook
        self.index = index
        self.source = source
        super().__init__(error.ename, error.evalue, [error.traceback])
        self.args = (f"{notebook}, cell {index}:\n{_indent(source)}\nraised:\n{error.traceback}",)


@dataclass
class Execution:
    """What one ``execute`` printed and returned."""

    stdout: str = ""
    stderr: str = ""
    #: ``text/plain`` of the execute result (the value of the last expression), if any.
    result: str | None = None
    #: MIME bundle of the last result or display.
    data: dict[str, Any] = field(default_factory=dict)
    #: Every output, as nbformat output dictionaries.
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class NotebookRun:
    """A notebook executed top to bottom in a lab."""

    path: str
    seconds: float
    #: One `Execution` per code cell, in order.
    cells: list[Execution]


class LabKernel:
    """One kernel in a running lab, driven over HTTP and the kernel websocket.

    ``server_url`` is the lab's URL through the hub's proxy, e.g.
    ``http://127.0.0.1:8000/user/alice``; ``token`` a token of the lab's user (or
    one with ``access:servers`` on it).
    """

    def __init__(self, server_url: str, token: str, *, http_timeout: float = 60) -> None:
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.http_timeout = http_timeout
        self.kernel_id = ""
        self.session_id = ""
        self._client_session = uuid.uuid4().hex
        self._ws: ClientConnection | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the lab's Jupyter server REST API (``path`` below ``/api``)."""
        kwargs.setdefault("timeout", self.http_timeout)
        return requests.request(
            method, f"{self.server_url}/api{path}", headers=self.headers, **kwargs
        )

    def _ok(self, response: requests.Response, what: str) -> Any:
        if not response.ok:
            raise LabError(
                f"{what}: the lab at {self.server_url} answered {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json()

    def start(self, kernel_name: str = DEFAULT_KERNEL, path: str | None = None) -> LabKernel:
        """Start a kernel; with ``path`` (a notebook's path in the lab) as a session of
        that notebook, so the kernel's working directory is the notebook's folder."""
        if path is not None:
            session = self._ok(
                self.request(
                    "POST",
                    "/sessions",
                    json={
                        "path": path,
                        "name": posixpath.basename(path),
                        "type": "notebook",
                        "kernel": {"name": kernel_name},
                    },
                ),
                f"starting a {kernel_name} kernel for {path}",
            )
            self.session_id = session["id"]
            self.kernel_id = session["kernel"]["id"]
        else:
            kernel = self._ok(
                self.request("POST", "/kernels", json={"name": kernel_name}),
                f"starting a {kernel_name} kernel",
            )
            self.kernel_id = kernel["id"]
        ws_url = re.sub(r"^http", "ws", self.server_url, count=1)
        try:
            self._ws = connect(
                f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self._client_session}",
                additional_headers=self.headers,
                open_timeout=self.http_timeout,
                max_size=None,
                legacy=True,
            )
        except Exception:
            self.shutdown()
            raise
        return self

    def execute(self, code: str, timeout: float = 300) -> Execution:
        """Run ``code``; raises `KernelError` with the traceback if it raises."""
        if self._ws is None:
            raise LabError("the kernel is not started: call start() first")
        msg_id = uuid.uuid4().hex
        try:
            self._ws.send(json.dumps(self._execute_request(msg_id, code)))
        except ConnectionClosed as closed:
            raise self._closed(closed, code) from None
        out = Execution()
        error: KernelError | None = None
        started = time.monotonic()
        for msg in self._messages(started + timeout, code):
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.outputs.append({"output_type": "stream", **content})
                if content["name"] in ("stdout", "stderr"):
                    setattr(out, content["name"], getattr(out, content["name"]) + content["text"])
            elif kind in ("execute_result", "display_data"):
                out.outputs.append({"output_type": kind, **content})
                out.data = content["data"]
                if kind == "execute_result":
                    out.result = content["data"].get("text/plain")
            elif kind == "error":
                out.outputs.append({"output_type": "error", **content})
                error = KernelError(content["ename"], content["evalue"], content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        out.seconds = time.monotonic() - started
        if error is not None:
            raise error
        return out

    def _execute_request(self, msg_id: str, code: str) -> dict[str, Any]:
        return {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "skydeck-check",
                "session": self._client_session,
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

    def _messages(self, deadline: float, code: str) -> Iterator[dict[str, Any]]:
        assert self._ws is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the kernel did not finish in time running:\n{_indent(code)}")
            try:
                raw = self._ws.recv(timeout=remaining)
            except TimeoutError:
                continue  # the deadline check above says what ran too long
            except ConnectionClosed as closed:
                raise self._closed(closed, code) from None
            if isinstance(raw, bytes):
                continue  # binary frames carry buffers (widgets) that no check reads
            msg = json.loads(raw)
            if msg.get("msg_type") == "status" and msg["content"]["execution_state"] == "dead":
                raise LabError(f"the kernel died (out of memory?) while running:\n{_indent(code)}")
            yield msg

    def _closed(self, closed: ConnectionClosed, code: str) -> LabError:
        return LabError(
            f"the lab at {self.server_url} closed the kernel's connection ({closed}) "
            f"running:\n{_indent(code)}\nWas the lab stopped or culled?"
        )

    def shutdown(self) -> None:
        """Close the websocket and stop the kernel (and its session).

        A lab that is already gone has nothing left to stop: that is not an error
        (so a failure of the code that ran is what the caller sees).
        """
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        path = f"/sessions/{self.session_id}" if self.session_id else f"/kernels/{self.kernel_id}"
        if self.session_id or self.kernel_id:
            with contextlib.suppress(requests.RequestException):
                self.request("DELETE", path)
        self.session_id = self.kernel_id = ""

    def __enter__(self) -> LabKernel:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def read_notebook(server_url: str, token: str, path: str) -> dict[str, Any]:
    """The notebook at ``path`` in the lab (nbformat 4 JSON), through the contents API."""
    kernel = LabKernel(server_url, token)
    model = kernel._ok(
        kernel.request("GET", f"/contents/{quote(path)}", params={"type": "notebook"}),
        f"reading {path}",
    )
    content: dict[str, Any] = model["content"]
    return content


def run_notebook(
    server_url: str,
    token: str,
    path: str,
    timeout: float = 300,
    kernel_name: str | None = None,
) -> NotebookRun:
    """Run the notebook at ``path`` in the lab, cell by cell, in a fresh kernel whose
    working directory is the notebook's folder.

    Stops at the first failing cell with `CellError` (notebook, cell number, source
    and traceback).  ``timeout`` is per cell; ``kernel_name`` defaults to the
    notebook's own kernelspec.  The notebook file is not changed.
    """
    notebook = read_notebook(server_url, token, path)
    spec = notebook.get("metadata", {}).get("kernelspec", {})
    name = kernel_name or spec.get("name") or DEFAULT_KERNEL
    started = time.monotonic()
    cells: list[Execution] = []
    with LabKernel(server_url, token).start(name, path=path) as kernel:
        for index, cell in enumerate(notebook.get("cells", []), start=1):
            if cell.get("cell_type") != "code":
                continue
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            try:
                cells.append(kernel.execute(source, timeout))
            except KernelError as error:
                raise CellError(path, index, source, error) from None
    return NotebookRun(path, time.monotonic() - started, cells)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
