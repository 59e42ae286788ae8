"""HTTP handlers under ``<base_url>skydeck/api/``: parse, call a service, answer.

Routes (all need the lab's usual login):

- ``GET  tutorials``              the tutorials and the state of the user's copies
- ``POST tutorials/open``         ``{"path", "overwrite"}``: copy one into the home
- ``GET|POST tap/<path>``         the TAP service (``tables``, ``async``, ``async/<id>``...)
- ``GET  quota``                  the user's quota document, as the quota service gives it
- ``GET  status``                 status-bar figures (does not count as activity)
- ``POST keepalive``              counts as activity, so the idle culler waits
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.base.handlers import APIHandler
from tornado import web

from skydeck.labextension._status import StatusService
from skydeck.labextension._tutorials import TutorialError, TutorialLibrary
from skydeck.labextension._upstream import ServiceUnavailable, Upstream

#: TAP paths the browser may reach through this server (VOSI, sync, UWS async).
TAP_PATHS = re.compile(
    r"^(tables(/[\w.]+)?|capabilities|availability|sync"
    r"|async(/[\w.-]+(/(phase|results(/[\w.-]+)?|parameters|error|quote|executionduration|destruction))?)?)$"
)


class _Base(APIHandler):
    def write_error_json(self, status: int, message: str, **extra: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps({"message": message, **extra}))


class TutorialsHandler(_Base):
    def initialize(self, tutorials: TutorialLibrary, **_: Any) -> None:
        self.tutorials = tutorials

    @web.authenticated
    def get(self) -> None:
        items = [TutorialLibrary.as_json(t) for t in self.tutorials.list()]
        source = str(self.tutorials.source) if self.tutorials.source else None
        self.finish(json.dumps({"source": source, "tutorials": items}))


class OpenTutorialHandler(_Base):
    def initialize(self, tutorials: TutorialLibrary, **_: Any) -> None:
        self.tutorials = tutorials

    @web.authenticated
    def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
            path, overwrite = str(body["path"]), bool(body.get("overwrite", False))
        except (ValueError, KeyError, TypeError):
            self.write_error_json(400, 'Send JSON like {"path": "01-intro.ipynb"}.')
            return
        try:
            opened = self.tutorials.open(path, overwrite=overwrite)
        except TutorialError as error:
            copy = f"{self.tutorials.subdir}/{path}"
            self.write_error_json(error.status, str(error), copy_path=copy)
            return
        self.finish(json.dumps(TutorialLibrary.as_json(opened)))


class TapHandler(_Base):
    def initialize(self, tap: Upstream, **_: Any) -> None:
        self.tap = tap

    async def _forward(self, path: str, method: str) -> None:
        if not TAP_PATHS.match(path) or any(part in (".", "..") for part in path.split("/")):
            self.write_error_json(404, f"{path!r} is not a TAP endpoint this lab passes on.")
            return
        try:
            reply = await self.tap.fetch(
                path,
                method=method,
                body=self.request.body if method == "POST" else None,
                content_type=self.request.headers.get("Content-Type"),
                query=self.request.query,
            )
        except ServiceUnavailable as error:
            self.write_error_json(error.status, str(error), service="tap")
            return
        if reply.status in (301, 302, 303, 307) and reply.location:
            # A new job (POST async) or a finished phase change: say where it went
            # instead of letting the browser follow a link it cannot authenticate to.
            job = urlsplit(reply.location).path.rstrip("/").rsplit("/", 1)[-1]
            self.set_status(201 if method == "POST" and path == "async" else 200)
            self.finish(json.dumps({"location": reply.location, "job_id": job}))
            return
        self.set_status(reply.status)
        self.finish(reply.body, set_content_type=reply.content_type)

    @web.authenticated
    async def get(self, path: str) -> None:
        await self._forward(path, "GET")

    @web.authenticated
    async def post(self, path: str) -> None:
        await self._forward(path, "POST")


class QuotaHandler(_Base):
    def initialize(self, quota: Upstream, quota_path: str, **_: Any) -> None:
        self.quota = quota
        self.quota_path = quota_path

    @web.authenticated
    async def get(self) -> None:
        try:
            reply = await self.quota.fetch(self.quota_path)
        except ServiceUnavailable as error:
            self.write_error_json(error.status, str(error), service="quota")
            return
        self.set_status(reply.status)
        self.finish(reply.body, set_content_type=reply.content_type)


class StatusHandler(_Base):
    #: Polling the status bar is not user activity: the idle culler must still see idleness.
    _track_activity = False

    def initialize(self, status: StatusService, **_: Any) -> None:
        self.status_service = status

    @web.authenticated
    async def get(self) -> None:
        self.finish(json.dumps(await self.status_service.status()))


class KeepAliveHandler(_Base):
    def initialize(self, status: StatusService, **_: Any) -> None:
        self.status_service = status

    @web.authenticated
    def post(self) -> None:
        # APIHandler.prepare has recorded this request as activity already.
        self.finish(json.dumps(self.status_service.culler()))


ROUTES: list[tuple[str, type[APIHandler]]] = [
    ("tutorials", TutorialsHandler),
    ("tutorials/open", OpenTutorialHandler),
    ("tap/(.*)", TapHandler),
    ("quota", QuotaHandler),
    ("status", StatusHandler),
    ("keepalive", KeepAliveHandler),
]
