"""An S3 server on loopback for tests: moto's server mode.

``s3_server`` (session) starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a
free port; ``s3_bucket`` (function) creates a fresh bucket and points the process
environment (``S3_ENDPOINT_URL``, ``AWS_*``) at the server for the test's duration,
which is how lsst-resources / boto3 / s3fs find it.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str = "skydeck-test"
    secret_key: str = "skydeck-test-secret"
    region: str = "us-east-1"

    def environment(self) -> dict[str, str]:
        """Environment variables that point S3 clients at this server."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def storage_options(self) -> dict[str, object]:
        """s3fs/fsspec storage options naming this server explicitly (no environment needed)."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"region_name": self.region},
        }

    def upload(self, local: Path, bucket: str, prefix: str) -> str:
        """Copy the directory ``local`` to ``s3://<bucket>/<prefix>/``; returns that URI."""
        import s3fs

        fs = s3fs.S3FileSystem(**self.storage_options())
        fs.put(str(local) + "/", f"{bucket}/{prefix}/", recursive=True)
        return f"s3://{bucket}/{prefix}"

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        name = name or "skydeck-" + secrets.token_hex(4)
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on loopback for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the environment points S3 clients at the server meanwhile."""
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    return s3_server.create_bucket()
