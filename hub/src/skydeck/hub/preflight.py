"""Checks before ``skydeck up`` starts anything: each failure is one clear line."""

from __future__ import annotations

import errno
import socket
import sys

MIN_PYTHON = (3, 12)


class PreflightError(RuntimeError):
    """A problem that stops ``skydeck up``; the message says what to do."""


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> None:
    if version < MIN_PYTHON:
        found = ".".join(map(str, version))
        raise PreflightError(
            f"Skydeck needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer, found {found}; "
            "install a newer Python and run `uv sync` again"
        )


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PreflightError(
                    f"port {port} on {host} is already in use; stop the program using it "
                    "or choose another port with --port"
                ) from error
            raise PreflightError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
