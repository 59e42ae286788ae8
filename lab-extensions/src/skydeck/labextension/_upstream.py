"""Calls from the lab server to a platform service, with the user's hub token.

The browser cannot call hub services directly without an OAuth round trip, so
the server extension does it for the browser, adding ``Authorization: token``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class ServiceUnavailable(Exception):
    """The service is not configured or could not be reached; the message says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reply:
    """A service's answer, passed on to the browser."""

    status: int
    content_type: str
    body: bytes
    location: str | None = None


class Upstream:
    """One platform service reached over HTTP from the lab server."""

    def __init__(
        self, label: str, env_name: str, base_url: str, token: str, timeout: float
    ) -> None:
        self.label = label
        self.env_name = env_name
        self.base_url = base_url if not base_url or base_url.endswith("/") else base_url + "/"
        self.token = token
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def url(self, path: str) -> str:
        if not self.configured:
            raise ServiceUnavailable(
                f"This lab has no {self.label} service: {self.env_name} is not set "
                "(the hub sets it when the service runs).",
                503,
            )
        return self.base_url + path.lstrip("/")

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        content_type: str | None = None,
        query: str = "",
    ) -> Reply:
        """Send one request; HTTP error answers are returned, not raised."""
        url = self.url(path) + (f"?{query}" if query else "")
        headers = {"Accept": "*/*"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=body if method in ("POST", "PUT") else None,
            follow_redirects=False,
            request_timeout=self.timeout,
            connect_timeout=min(self.timeout, 10.0),
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as error:  # pragma: no cover - raise_error=False
            raise ServiceUnavailable(f"The {self.label} service failed: {error}", 502) from error
        except OSError as error:
            raise ServiceUnavailable(
                f"The {self.label} service at {self.base_url} could not be reached ({error}); "
                "it may be starting or stopped. Try again in a minute.",
                502,
            ) from error
        if response.code == 599:
            raise ServiceUnavailable(
                f"The {self.label} service at {self.base_url} did not answer "
                f"({response.error}). Try again in a minute.",
                504,
            )
        return Reply(
            status=response.code,
            content_type=response.headers.get("Content-Type", "application/octet-stream"),
            body=response.body or b"",
            location=response.headers.get("Location"),
        )
