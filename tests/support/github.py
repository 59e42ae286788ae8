"""A small local stand-in of GitHub's OAuth endpoints and user/org/team API, on 127.0.0.1.

It speaks the part of GitHub that oauthenticator's ``GitHubOAuthenticator`` uses,
laid out as GitHub Enterprise Server lays it out, so pointing the authenticator's
``github_url`` at it is enough (the API is then at ``<github_url>/api/v3``):

- ``GET /login/oauth/authorize``: a sign-in page (pick an account, press "Authorize");
  ``POST`` redirects back to the app's ``redirect_uri`` with ``code`` and ``state``;
- ``POST /login/oauth/access_token``: code -> token (checks client id and secret);
- ``GET /api/v3/user``, ``/api/v3/user/emails``, ``/api/v3/user/teams``;
- ``GET /api/v3/orgs/<org>/members/<user>`` and
  ``/api/v3/orgs/<org>/teams/<team>/members/<user>``: 204 for members, 404 otherwise.

Accounts, organizations and teams live in plain Python objects that a test may
change between two logins (e.g. to check that team membership is synced again).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest


@dataclass
class GitHubAccount:
    """One GitHub user: organizations it belongs to and its teams as ``(org, team_slug)``."""

    login: str
    id: int
    name: str = ""
    email: str | None = None
    orgs: set[str] = field(default_factory=set)
    teams: set[tuple[str, str]] = field(default_factory=set)

    def user_model(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "name": self.name or self.login,
            "email": self.email,
            "type": "User",
        }

    def team_models(self) -> list[dict[str, Any]]:
        return [
            {
                "slug": team,
                "name": team.replace("-", " ").title(),
                "organization": {"login": org},
            }
            for org, team in sorted(self.teams)
        ]


@dataclass
class FakeGitHub:
    """The stand-in's state and its server; ``url`` is what ``github_url`` should be."""

    client_id: str = field(default_factory=lambda: "Iv1." + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    accounts: dict[str, GitHubAccount] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # code -> login
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> login
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/v3"

    def add_account(
        self,
        login: str,
        orgs: set[str] | None = None,
        teams: set[tuple[str, str]] | None = None,
        email: str | None = None,
    ) -> GitHubAccount:
        teams = set(teams or ())
        # Like GitHub: a team member is a member of the team's organization.
        account = GitHubAccount(
            login=login,
            id=1000 + len(self.accounts),
            email=email,
            orgs=set(orgs or ()) | {org for org, _ in teams},
            teams=teams,
        )
        self.accounts[login] = account
        return account

    def token_for(self, login: str) -> str:
        """An access token for ``login``, as the token endpoint would hand out."""
        token = "gho_" + secrets.token_hex(16)
        self.tokens[token] = login
        return token

    def start(self) -> FakeGitHub:
        stand_in = self

        class Handler(_Handler):
            github = stand_in

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; the request list is in ``FakeGitHub.requests``."""

    # --- helpers -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", content_type: str = "", **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if "json" in self.headers.get("Content-Type", ""):
            return {k: str(v) for k, v in json.loads(raw or "{}").items()}
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _account(self) -> GitHubAccount | None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        login = self.github.tokens.get(token.strip())
        return self.github.accounts.get(login) if login else None

    # --- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.github.requests.append(f"GET {parts.path}")
        if parts.path == "/login/oauth/authorize":
            self._authorize_page(query)
            return
        if not parts.path.startswith("/api/v3/"):
            self._json(404, {"message": "Not Found"})
            return
        account = self._account()
        if account is None:
            self._json(401, {"message": "Bad credentials"})
            return
        segments = parts.path.removeprefix("/api/v3/").strip("/").split("/")
        match segments:
            case ["user"]:
                self._json(200, account.user_model())
            case ["user", "emails"]:
                email = account.email or f"{account.login}@users.noreply.example"
                self._json(200, [{"email": email, "primary": True, "verified": True}])
            case ["user", "teams"]:
                self._json(200, account.team_models())
            case ["orgs", org, "members", login]:
                member = self.github.accounts.get(login)
                self._send(204 if member and org in member.orgs else 404)
            case ["orgs", org, "teams", team, "members", login]:
                member = self.github.accounts.get(login)
                self._send(204 if member and (org, team) in member.teams else 404)
            case _:
                self._json(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        self.github.requests.append(f"POST {parts.path}")
        form = {**{k: v[0] for k, v in parse_qs(parts.query).items()}, **self._form()}
        if parts.path == "/login/oauth/authorize":
            self._authorize(form)
        elif parts.path == "/login/oauth/access_token":
            self._access_token(form)
        else:
            self._json(404, {"message": "Not Found"})

    def _authorize_page(self, query: dict[str, str]) -> None:
        if query.get("client_id") != self.github.client_id:
            self._send(400, b"unknown client_id", "text/plain")
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        options = "".join(
            f'<option value="{html.escape(login)}">{html.escape(login)}</option>'
            for login in sorted(self.github.accounts)
        )
        page = f"""<!doctype html><html><head><title>Sign in to GitHub (stand-in)</title></head>
<body><h1>Sign in to GitHub</h1>
<form method="post" action="/login/oauth/authorize">{hidden}
<label>Account <select name="login" id="login">{options}</select></label>
<button type="submit" id="authorize">Authorize</button></form></body></html>"""
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _authorize(self, form: dict[str, str]) -> None:
        login = form.get("login", "")
        if form.get("client_id") != self.github.client_id or login not in self.github.accounts:
            self._send(400, b"unknown client_id or account", "text/plain")
            return
        code = secrets.token_hex(10)
        self.github.codes[code] = login
        redirect = form["redirect_uri"]
        sep = "&" if "?" in redirect else "?"
        location = redirect + sep + urlencode({"code": code, "state": form.get("state", "")})
        self._send(302, Location=location)

    def _access_token(self, form: dict[str, str]) -> None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":  # oauthenticator's basic_auth = True
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            form = {**form, "client_id": client_id, "client_secret": client_secret}
        if (
            form.get("client_id") != self.github.client_id
            or form.get("client_secret") != self.github.client_secret
        ):
            self._json(200, {"error": "incorrect_client_credentials"})
            return
        login = self.github.codes.pop(form.get("code", ""), None)
        if login is None:
            self._json(200, {"error": "bad_verification_code"})
            return
        token = self.github.token_for(login)
        self._json(200, {"access_token": token, "token_type": "bearer", "scope": "read:org"})


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A fresh GitHub stand-in on a free loopback port, stopped after the test."""
    github = FakeGitHub().start()
    yield github
    github.stop()


@pytest.fixture(scope="module")
def module_github() -> Iterator[FakeGitHub]:
    """A GitHub stand-in shared by one test module (e.g. with a hub started once)."""
    github = FakeGitHub().start()
    yield github
    github.stop()
