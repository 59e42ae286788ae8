"""A bot user's side of the hub: its credential, the login form, its token, its lab.

Everything goes through public interfaces, as a person with a browser would: the
admin REST route that issues a bot's credential, the login form (with its
``_xsrf`` cookie), the Token page's REST call, the spawn form (the sizes it
offers), the spawn progress stream and the server REST API.
"""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any
from urllib.parse import quote

import requests

from skydeck.hub.check._report import CheckFailed

#: Seconds a bot's API token lives: a crashed run leaves nothing usable behind for long.
TOKEN_SECONDS = 4 * 3600

_OPTION = re.compile(r"<option\b[^>]*\bvalue=[\"']([^\"']+)[\"']", re.IGNORECASE)
_SELECT = re.compile(r"<select\b[^>]*\bname=[\"']size[\"'][^>]*>(.*?)</select>", re.I | re.S)


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", response.text)
        return " ".join(html.unescape(text).split())[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:300]
    return str(body)[:300]


class HubUser:
    """One bot user of the hub at ``url``: a browser-like session plus its own API token."""

    def __init__(self, url: str, name: str, http_timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self.http_timeout = http_timeout
        #: Cookies of the login session, as a browser keeps them.
        self.browser = requests.Session()
        #: No cookies: API calls authenticate with a token only.
        self.client = requests.Session()
        self.token = ""
        self.token_id = ""

    # plumbing ---------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, session: requests.Session | None = None, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.http_timeout)
        url = self.url + path
        try:
            return (session or self.browser).request(method, url, **kwargs)
        except requests.ConnectionError as error:
            raise CheckFailed(
                f"cannot reach the hub ({type(error).__name__})",
                where=f"{method} {url}",
                hint="is the hub running at --hub? is the URL right?",
            ) from None
        except requests.Timeout:
            raise CheckFailed(
                f"the hub did not answer in {self.http_timeout:g} s",
                where=f"{method} {url}",
                hint="the hub is overloaded or stuck: see the hub log",
            ) from None

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the hub REST API (``path`` below ``/hub/api``) with the bot's token."""
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self._request(method, "/hub/api" + path, self.client, headers=headers, **kwargs)

    def _xsrf(self) -> str:
        for cookie in self.browser.cookies:
            if cookie.name == "_xsrf" and cookie.value:
                return cookie.value
        return ""

    @staticmethod
    def _expect(response: requests.Response, codes: tuple[int, ...], what: str, hint: str) -> None:
        if response.status_code not in codes:
            raise CheckFailed(
                f"{what}: the hub answered {response.status_code} {_message(response)}",
                where=f"{response.request.method} {response.url}",
                hint=hint,
            )

    # credential and login ------------------------------------------------------------------
    def issue_password(self, admin_token: str) -> str | None:
        """A fresh password for this bot from the hub's admin route; None if the hub has none.

        ``POST /hub/api/skydeck/users/{name}/password`` creates the user (if needed) with an
        approved login and answers ``{"name", "password"}``.
        """
        path = f"/hub/api/skydeck/users/{quote(self.name)}/password"
        response = self._request(
            "POST",
            path,
            self.client,
            headers={"Authorization": f"token {admin_token}"},
            json={},
        )
        if response.status_code == 404 and "skydeck" not in response.text.lower():
            return None
        self._expect(
            response,
            (200, 201),
            "the bot's credential could not be issued",
            "the --token must belong to an admin or to the skydeck-check role "
            "(see `skydeck check --help`)"
            if response.status_code in (401, 403)
            else "see the hub log",
        )
        password: str = response.json()["password"]
        return password

    def login(self, password: str) -> None:
        """Log in through the login form, as a browser does (``_xsrf`` cookie and field)."""
        page = self._request("GET", "/hub/login")
        self._expect(page, (200,), "the login page did not load", "see the hub log")
        if 'name="password"' not in page.text and "name='password'" not in page.text:
            raise CheckFailed(
                "the login page has no password form (OAuth login?)",
                where=page.url,
                hint="skydeck check logs in through the login form; run it against a hub "
                "with form login or give the bots another way in",
            )
        response = self._request(
            "POST",
            "/hub/login",
            data={"username": self.name, "password": password, "_xsrf": self._xsrf()},
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise CheckFailed(
                f"the login form refused {self.name}: {response.status_code} "
                f"{_message(response)[:160]}",
                where=f"POST {self.url}/hub/login",
                hint="is the bot's password right (--password), is the user approved?",
            )
        # Load the home page: it proves the session works and refreshes _xsrf for the user.
        home = self._request("GET", "/hub/home", allow_redirects=False)
        if home.status_code != 200 or self.name not in home.text:
            raise CheckFailed(
                f"logged in, but the home page answered {home.status_code}",
                where=f"GET {self.url}/hub/home",
                hint="the session cookie is not accepted: see the hub log",
            )

    def create_token(self) -> None:
        """A short-lived API token, made with the login session as on the Token page."""
        response = self._request(
            "POST",
            f"/hub/api/users/{quote(self.name)}/tokens",
            json={"note": "skydeck check", "expires_in": TOKEN_SECONDS},
            headers={"X-XSRFToken": self._xsrf()},
        )
        self._expect(response, (200, 201), "the bot could not make itself a token", "hub log")
        body = response.json()
        self.token, self.token_id = body["token"], body["id"]

    def delete_token(self) -> None:
        if self.token_id:
            response = self.api("DELETE", f"/users/{quote(self.name)}/tokens/{self.token_id}")
            self._expect(response, (204, 404), "the bot's token could not be deleted", "hub log")
        self.token = self.token_id = ""

    def logout(self) -> None:
        self._request("GET", "/hub/logout", allow_redirects=True)
        self.browser.cookies.clear()

    # labs ------------------------------------------------------------------------------------
    @property
    def server_url(self) -> str:
        """The bot's lab through the hub's proxy."""
        return f"{self.url}/user/{quote(self.name)}"

    def server(self) -> dict[str, Any]:
        response = self.api("GET", f"/users/{quote(self.name)}")
        self._expect(response, (200,), "the bot's user model could not be read", "hub log")
        model: dict[str, Any] = response.json()
        return model

    def offered_sizes(self) -> list[str]:
        """The sizes the spawn form offers; ``[""]`` when there is no form (one size).

        Opening the spawn page without a form starts the lab (JupyterHub's behaviour):
        `wait_ready` then finds it starting.
        """
        page = self._request("GET", f"/hub/spawn/{quote(self.name)}", allow_redirects=False)
        if page.status_code in (302, 303):
            return [""]
        self._expect(page, (200,), "the spawn page did not load", "see the hub log")
        found = _SELECT.search(page.text)
        if found is None:
            refusal = re.search(r'id="quota-refusal"[^>]*>(.*?)</div>', page.text, re.S)
            if refusal:
                raise CheckFailed(
                    f"the spawn page refuses the bot: {html.unescape(refusal.group(1)).strip()}",
                    where=page.url,
                    hint="give the bot users a quota that allows labs "
                    "(`skydeck quota`), e.g. a group for the bots",
                )
            return [""]
        return [html.unescape(v) for v in _OPTION.findall(found.group(1))]

    def spawn(self, size: str) -> None:
        """Submit the spawn form with ``size`` (empty: start the default right away)."""
        if not size:
            return
        page = self._request("GET", f"/hub/spawn/{quote(self.name)}", allow_redirects=False)
        if page.status_code != 200:
            return  # no form: the GET already started the only size
        response = self._request(
            "POST",
            f"/hub/spawn/{quote(self.name)}",
            data={"size": size, "_xsrf": self._xsrf()},
            allow_redirects=False,
        )
        if response.status_code not in (200, 302, 303):
            raise CheckFailed(
                f"the spawn form refused size {size!r}: {response.status_code} "
                f"{_message(response)[:200]}",
                where=f"POST {self.url}/hub/spawn/{self.name}",
                hint="see the hub log for the spawner's error",
            )

    def wait_ready(self, timeout: float) -> None:
        """Follow the spawn progress stream (as the spawn-pending page does) until ready."""
        path = f"/users/{quote(self.name)}/server/progress"
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.api("GET", path, stream=True, timeout=(10, timeout))
            if response.status_code != 200:
                self._expect(response, (200,), "the spawn progress could not be read", "hub log")
            for raw in response.iter_lines(decode_unicode=True):
                if not raw or not raw.startswith("data:"):
                    continue
                last = json.loads(raw[5:])
                if last.get("ready"):
                    response.close()
                    return
                if last.get("failed"):
                    response.close()
                    raise CheckFailed(
                        f"the lab did not start: {last.get('message', 'spawn failed')}",
                        where=f"{self.url}/hub/spawn-pending/{self.name}",
                        hint="see the hub log for the spawner's error",
                    )
            response.close()
            # The stream ends without an event when no spawn is pending: look at the model.
            model = self.server()
            if model.get("servers", {}).get("", {}).get("ready"):
                return
            if model.get("pending") is None and not model.get("servers"):
                raise CheckFailed(
                    "the lab is not starting (no spawn pending, no server)",
                    where=f"{self.url}/hub/api/users/{self.name}",
                    hint="see the hub log: the spawn may have been refused",
                )
            time.sleep(1)
        raise CheckFailed(
            f"the lab was not ready in {timeout:g} s (last: {last.get('message', 'nothing')})",
            where=f"{self.url}/hub/spawn-pending/{self.name}",
            hint="the machine may be overloaded; see the hub log, or raise --spawn-timeout",
        )

    def stop(self, timeout: float) -> None:
        """Stop the bot's lab and wait until the hub says it is gone."""
        response = self.api("DELETE", f"/users/{quote(self.name)}/server")
        self._expect(response, (202, 204, 400), "the lab could not be stopped", "hub log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server()
            if not model.get("servers") and model.get("pending") is None:
                return
            time.sleep(0.5)
        raise CheckFailed(
            f"the lab did not stop in {timeout:g} s",
            where=f"DELETE {self.url}/hub/api/users/{self.name}/server",
            hint="see the hub log: the spawner could not stop the lab",
        )

    def has_server(self) -> bool:
        model = self.server()
        return bool(model.get("servers")) or model.get("pending") is not None
