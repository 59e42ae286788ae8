"""A real Skydeck hub for tests: ``skydeck up`` on a free port with a temporary data directory.

The hub runs exactly as a user would start it (the ``skydeck up`` command in a
subprocess), plus one extra config file that registers a test service holding
an admin API token, so tests can drive the REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

EXTRA_CONFIG = """
c.JupyterHub.services.extend([{{"name": "skydeck-test", "api_token": {token!r}}}])
c.JupyterHub.load_roles.extend([{{"name": "admin", "services": ["skydeck-test"]}}])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningHub:
    """A hub started by ``skydeck up`` for one test module or session."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    admin_token: str
    log_path: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.url + "/hub/api"

    @property
    def credentials(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.data_dir / "credentials.json").read_text())
        return data

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Call the hub REST API (``path`` below /hub/api), as admin unless ``token`` is given."""
        headers = kwargs.pop("headers", {})
        if token is not False:
            headers.setdefault("Authorization", f"token {token or self.admin_token}")
        return requests.request(
            method,
            self.api_url + path,
            headers=headers,
            timeout=kwargs.pop("timeout", 60),
            **kwargs,
        )

    def create_login(self, name: str, admin: bool = False) -> str:
        """Give ``name`` its own approved login (the user is created if missing); returns
        the password, for the real login form (``POST /hub/login``)."""
        response = self.api(
            "POST", f"/skydeck/users/{name}/password", json={"admin": True} if admin else {}
        )
        response.raise_for_status()
        password: str = response.json()["password"]
        return password

    def ensure_user(self, name: str, admin: bool = False) -> None:
        response = self.api("GET", f"/users/{name}")
        if response.status_code == 404:
            response = self.api("POST", f"/users/{name}", json={"admin": admin})
            response.raise_for_status()

    def user_token(self, name: str) -> str:
        """An API token of user ``name`` (the user is created if needed)."""
        if name not in self._tokens:
            self.ensure_user(name)
            response = self.api(
                "POST", f"/users/{name}/tokens", json={"note": "skydeck tests", "expires_in": 3600}
            )
            response.raise_for_status()
            self._tokens[name] = response.json()["token"]
        return self._tokens[name]

    def start_server(self, name: str, timeout: float = 180, **options: Any) -> str:
        """Start ``name``'s lab and wait until it answers; returns its URL."""
        self.ensure_user(name)
        response = self.api("POST", f"/users/{name}/server", json=options or None)
        if response.status_code not in (201, 202, 400):
            raise AssertionError(f"spawn failed: {response.status_code} {response.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return f"{self.url}{server['url']}".rstrip("/")
            if (
                server is None
                and model.get("pending") is None
                and time.monotonic() > deadline - timeout + 5
            ):
                raise AssertionError(f"server of {name} did not start; see {self.log_path}")
            time.sleep(0.5)
        raise AssertionError(f"server of {name} not ready in {timeout}s; see {self.log_path}")

    def stop_server(self, name: str, timeout: float = 60) -> None:
        self.api("DELETE", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{name}").json()
            if not model.get("servers") and model.get("pending") is None:
                return
            time.sleep(0.5)
        raise AssertionError(f"server of {name} did not stop in {timeout}s")

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            started = self.descendants()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            # `skydeck up` stops what it started; this only guards the test machine
            # against a hub that had to be killed.
            for proc in started:
                with contextlib.suppress(psutil.Error):
                    proc.kill()


def start_hub(
    data_dir: Path,
    release: Path | None = None,
    extra_config: list[Path] | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    timeout: float = 300,
) -> RunningHub:
    """Run ``skydeck up`` on a free port and wait until the hub API answers.

    JupyterHub starts its managed services one after another and waits for each,
    so on a busy 2-core machine start-up can take a while: the timeout is generous.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    if release is not None and not (data_dir / "release").exists():
        (data_dir / "release").symlink_to(release, target_is_directory=True)
    token = secrets.token_hex(32)
    test_config = data_dir / "test_admin_config.py"
    test_config.write_text(EXTRA_CONFIG.format(token=token))
    port = free_port()
    log_path = data_dir / "skydeck-up.log"
    cmd = [
        sys.executable,
        "-m",
        "skydeck.hub",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--no-release",
        "--config",
        str(test_config),
    ]
    for path in extra_config or []:
        cmd += ["--config", str(path)]
    cmd += args or []
    log = log_path.open("wb")
    # SKYDECK_RELEASE would make `skydeck up` serve that release (`--release`): only when
    # the test asks for it, never inherited from a lab test's environment or the shell.
    inherited = {k: v for k, v in os.environ.items() if k != "SKYDECK_RELEASE"}
    process = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**inherited, **(env or {})},
    )
    hub = RunningHub(
        url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        process=process,
        admin_token=token,
        log_path=log_path,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"skydeck up exited with {process.returncode}:\n{log_path.read_text()}"
            )
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if hub.api("GET", "/", timeout=5).status_code == 200:
                return hub
        time.sleep(0.3)
    hub.stop()
    raise AssertionError(f"hub did not come up in {timeout}s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningHub]]:
    """Start extra hubs (with their own config); all are stopped at the end of the session."""
    hubs: list[RunningHub] = []

    def factory(release: Path | None = None, **kwargs: Any) -> RunningHub:
        hub = start_hub(tmp_path_factory.mktemp("hub"), release=release, **kwargs)
        hubs.append(hub)
        return hub

    yield factory
    for hub in hubs:
        hub.stop()


@pytest.fixture(scope="session")
def hub(hub_factory: Callable[..., RunningHub]) -> RunningHub:
    """A shared hub without a data release (for platform tests that need none)."""
    return hub_factory()


@pytest.fixture(scope="session")
def release_hub(
    hub_factory: Callable[..., RunningHub], request: pytest.FixtureRequest
) -> RunningHub:
    """A shared hub serving the tiny data release (needs the ``tiny_release`` fixture)."""
    layout = request.getfixturevalue("tiny_release")
    return hub_factory(release=Path(str(layout.root)))
