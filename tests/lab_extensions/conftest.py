"""Fixtures for the lab extension's tests: real ``jupyter lab`` processes on loopback.

Two labs per session: ``services_lab`` talks to small stand-in TAP and quota
servers (fixed VOSI / UWS / quota documents, see `StandIns`) and has tutorials;
``bare_lab`` has no quota service, a TAP URL nobody answers at, and no tutorials,
to check that everything degrades with a clear message.

Why not labs spawned through the hub (the rule for lab-side tests): the extension's
panels are checked against fixed VOSI / UWS / quota documents and against services
that are absent or dead, states a real hub does not produce on demand.  The same
extension in a lab spawned by ``skydeck up`` with the real TAP and quota services is
tested in test_platform.py.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import nbformat
import pytest
import requests

DATA = Path(__file__).resolve().parents[1] / "data" / "lab_extensions"
SERVICE_TOKEN = "skydeck-test-user-token"
GIB = 1024**3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StandIns:
    """Loopback HTTP server answering like the TAP and quota services (fixed documents)."""

    url: str
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)
    created: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def tap_url(self) -> str:
        return self.url + "/services/tap/"

    @property
    def quota_url(self) -> str:
        return self.url + "/services/quota/"


QUOTA_STATUS: dict[str, Any] = {
    "user": "alice",
    "quota": {
        "user": "alice",
        "groups": [],
        "unlimited": False,
        "sources": ["default"],
        "quota": {
            "lab": {"spawn": True, "cpu": 2.0, "memory_gib": 4.0, "sizes": None},
            "dask": {"clusters": 2, "workers": 4, "cores": 4.0, "memory_gib": 16.0},
            "storage": {"soft_gib": 10.0, "hard_gib": 20.0},
        },
        "sizes": [],
        "override": None,
        "contact": "the Skydeck admins",
    },
    "usage": {
        "running": [
            {
                "source": "lab",
                "key": "alice",
                "cpu": 2,
                "memory_gib": 4,
                "size": None,
                "started_at": "2026-11-25T09:00:00Z",
            },
            {
                "source": "dask",
                "key": "c1",
                "cpu": 2,
                "memory_gib": 8,
                "size": None,
                "started_at": "2026-11-25T09:10:00Z",
                "workers": 3,
            },
        ],
        "budget": {
            "window_days": 30,
            "cpu_hours": 1.0,
            "memory_gib_hours": 2.0,
            "cpu_hours_limit": 500.0,
            "memory_gib_hours_limit": 2000.0,
        },
        "storage": {"used_gib": 1.5, "soft_gib": 10.0, "hard_gib": 20.0},
    },
    "spawn": {"allowed": True, "reason": None},
    "warnings": [],
}


def _job_xml(job_id: str, base: str, query: str, phase: str, created: str) -> str:
    return (
        (DATA / "job.xml")
        .read_text()
        .format(id=job_id, base=base, query=query, phase=phase, created=created)
    )


def _make_handler(state: StandIns) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str, content_type: str = "text/xml") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self, method: str, body: str = "") -> bool:
            auth = self.headers.get("Authorization", "")
            state.requests.append((method, self.path, auth, body))
            if auth != f"token {SERVICE_TOKEN}":
                self._send(403, '{"message": "bad token"}', "application/json")
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorized("GET"):
                return
            path = self.path.split("?", 1)[0]
            tap = "/services/tap/"
            if path == tap + "tables":
                self._send(200, (DATA / "tables.xml").read_text())
            elif path == tap + "async":
                self._send(200, (DATA / "jobs.xml").read_text().format(base=state.tap_url))
            elif path == tap + "async/job-done":
                query = "SELECT TOP 5 objectId, coord_ra FROM dp02_dc2_catalogs.Object"
                self._send(
                    200,
                    _job_xml("job-done", state.tap_url, query, "COMPLETED", "2026-11-25T09:30:00Z"),
                )
            elif path == tap + "async/job-failed":
                self._send(
                    200,
                    _job_xml(
                        "job-failed",
                        state.tap_url,
                        "SELECT nonsense",
                        "ERROR",
                        "2026-11-24T08:00:00Z",
                    ),
                )
            elif path == "/services/quota/api/status":
                self._send(200, json.dumps(QUOTA_STATUS), "application/json")
            else:
                self._send(404, "<error>no such path</error>")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if not self._authorized("POST", body):
                return
            if self.path.split("?", 1)[0] == "/services/tap/async":
                state.created.append(parse_qs(body))
                self.send_response(303)
                self.send_header("Location", f"{state.tap_url}async/job-new{len(state.created)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(404, "<error>no such path</error>")

    return Handler


@pytest.fixture(scope="session")
def standins() -> Iterator[StandIns]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = StandIns(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _make_handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def write_tutorial(path: Path, title: str, text: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }  # fmt: skip
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n{text}\n\n## Learning goals\n- one"),
        nbformat.v4.new_code_cell("print('hello from the tutorial')"),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


@dataclass
class Lab:
    """A ``jupyter lab`` process with the Skydeck extension, for one test session."""

    url: str
    token: str
    home: Path
    tutorials: Path | None
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/skydeck/api/{path}", headers=headers, **kwargs)

    def server_status(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/status", headers=self.headers, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def lab_url(self, path: str = "lab") -> str:
        return f"{self.url}/{path}?token={self.token}"


def start_lab(root: Path, env_extra: dict[str, str], args: list[str]) -> Lab:
    home = root / "home"
    home.mkdir(parents=True)
    port = free_port()
    token = secrets.token_hex(16)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTERHUB_", "SKYDECK_", "JUPYTER_", "MEM_LIMIT"))
    }
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        IPYTHONDIR=str(root / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
        **env_extra,
    )
    # No "would you like news?" toast over the page.
    notification = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = root / "lab.log"
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    command = [
        jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={home}",
        "--ServerApp.open_browser=False", "--allow-root",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
        *args,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, home,
              Path(env_extra["SKYDECK_TUTORIALS_DIR"]) if env_extra.get("SKYDECK_TUTORIALS_DIR")
              else None, log, process)  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{lab.url}/api/status", headers=lab.headers, timeout=2).ok:
                return lab
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"jupyter lab did not start in 90 s:\n{log.read_text()[-4000:]}")


def stop_lab(lab: Lab) -> None:
    lab.process.terminate()
    try:
        lab.process.wait(8)
    except subprocess.TimeoutExpired:
        lab.process.kill()
        lab.process.wait()


@pytest.fixture(scope="session")
def services_lab(tmp_path_factory: pytest.TempPathFactory, standins: StandIns) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("services-lab")
    tutorials = root / "tutorials-source"
    write_tutorial(
        tutorials / "01-introduction.ipynb",
        "Introduction to Skydeck",
        "Where things are and how to use them.",
    )
    write_tutorial(tutorials / "02-tap.ipynb", "TAP and ADQL basics", "Queries with pyvo.")
    write_tutorial(tutorials / "extra" / "03-routes.ipynb", "Route test tutorial", "For tests.")
    (tutorials / ".ipynb_checkpoints").mkdir()
    write_tutorial(tutorials / ".ipynb_checkpoints" / "hidden.ipynb", "Hidden", "Never listed.")
    lab = start_lab(
        root,
        {
            "SKYDECK_TUTORIALS_DIR": str(tutorials),
            "SKYDECK_TAP_URL": standins.tap_url,
            "SKYDECK_QUOTA_URL": standins.quota_url,
            "SKYDECK_IDLE_TIMEOUT": "3600",
        },
        [f"--SkydeckLabConfig.api_token={SERVICE_TOKEN}",
         "--SkydeckLabConfig.keepalive_warning=3600",
         # What jupyterhub-singleuser tells JupyterLab, so "log out" has a hub to go to.
         "--ServerApp.tornado_settings="
         "{'hub_prefix': '/fake-hub/', 'hub_host': '', 'user': 'alice'}"],
    )  # fmt: skip
    yield lab
    stop_lab(lab)


@pytest.fixture(scope="session")
def bare_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("bare-lab")
    empty = root / "no-tutorials"
    empty.mkdir()
    lab = start_lab(
        root,
        {
            "SKYDECK_TUTORIALS_DIR": str(empty),
            "SKYDECK_TAP_URL": f"http://127.0.0.1:{free_port()}/services/tap/",
        },
        [],
    )
    # Something to measure before anyone asks (the measured size is cached for a minute).
    (lab.home / "data.bin").write_bytes(b"x" * 3_000_000)
    yield lab
    stop_lab(lab)
