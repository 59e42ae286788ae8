"""The checks a bot runs: TAP through pyvo, a SODA cutout, lsdb and dask-gateway in its lab,
every tutorial in its lab's kernel, and the clean-up of what these leave behind.

Each check raises `CheckFailed` saying what went wrong, where, and what to do.
Services are reached where a user reaches them, ``<hub>/services/<name>/``, with
the bot's own token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from skydeck.hub.check._lab import CellError, KernelError, LabError, LabKernel, run_notebook
from skydeck.hub.check._report import CheckFailed

#: Where each service lives below the hub's URL, and the name the hub gives it.
SERVICES = {"tap": "tap", "cutouts": "cutouts", "dask": "dask-gateway"}

#: The table a TAP check prefers (the release's main catalog), else the first published one.
PREFERRED_TABLES = ("dp02_dc2_catalogs.Object",)


def service_hint(service: str, status: int | None) -> str:
    """What to do when ``service`` answered ``status`` (None: no answer at all)."""
    if status in (502, 503, 504, None):
        return f"is the {service} service running? see the hub log"
    if status == 404:
        return f"the hub has no {service} service at this path: is it configured?"
    if status in (401, 403):
        return (
            f"the bot's token was refused: the 'user' role needs access:services!service={service}"
        )
    if status == 429:
        return f"{service} rate-limits the bot: lower --users or raise its rate limit"
    if status is not None and status >= 500:
        return f"the {service} service failed: see its log (the hub log)"
    return f"the {service} service refused the request: see the message"


def service_failure(
    label: str, service: str, url: str, status: int | None, text: str = ""
) -> CheckFailed:
    """``<label> answered 503 at /services/tap/sync: <what it said>``, with a hint."""
    path = urlsplit(url).path or url
    answer = f"answered {status} at {path}" if status is not None else f"did not answer at {path}"
    if "<html" in text[:500].lower():  # a proxy's or the hub's error page, not the service
        body = "the hub's Not Found page" if status == 404 else ""
    elif re.match(r"\d{3} (Client|Server) Error", text):  # requests' own wording: no news
        body = ""
    else:
        body = " ".join(text.split())[:200]
    return CheckFailed(
        f"{label} {answer}" + (f": {body}" if body else ""),
        where=url,
        hint=service_hint(service, status),
        detail=text[:4000],
    )


@dataclass
class Services:
    """The bot's HTTP client of the platform's services, with its token."""

    hub_url: str
    token: str
    http_timeout: float = 60
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers["Authorization"] = f"token {self.token}"

    def url(self, service: str, path: str = "") -> str:
        return f"{self.hub_url.rstrip('/')}/services/{SERVICES.get(service, service)}/{path}"

    def request(
        self, label: str, service: str, method: str, path: str, **kwargs: Any
    ) -> requests.Response:
        url = self.url(service, path)
        kwargs.setdefault("timeout", self.http_timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as error:
            raise CheckFailed(
                f"{label} did not answer ({type(error).__name__})",
                where=f"{method} {url}",
                hint=service_hint(SERVICES.get(service, service), None),
            ) from None


# TAP ------------------------------------------------------------------------------------------
class Tap:
    """The TAP query set, through pyvo as users run it: sync, async, upload."""

    def __init__(self, services: Services) -> None:
        import pyvo

        self.services = services
        self.url = services.url("tap").rstrip("/")
        self.service = pyvo.dal.TAPService(self.url, session=services.session)
        self.table = ""

    @contextmanager
    def _errors(self, mode: str) -> Iterator[None]:
        import pyvo

        where = f"{self.url}/{mode}"
        try:
            yield
        except pyvo.dal.DALQueryError as error:
            raise CheckFailed(
                f"TAP refused the query: {error.reason}",
                where=where,
                hint="the TAP service answers but cannot run this query: see its log",
            ) from None
        except pyvo.dal.DALServiceError as error:
            status = getattr(error, "code", None)
            raise service_failure(
                "TAP", "tap", getattr(error, "url", None) or where, status, str(error.reason)
            ) from None

    def availability(self) -> str:
        """The VOSI availability document says the service is up."""
        response = self.services.request("TAP", "tap", "GET", "availability")
        if response.status_code != 200:
            raise service_failure("TAP", "tap", response.url, response.status_code, response.text)
        if not re.search(r"<(\w+:)?available>\s*true", response.text):
            raise CheckFailed(
                "TAP says it is not available",
                where=response.url,
                hint="see the TAP service's log (the hub log): is the release readable?",
                detail=response.text[:4000],
            )
        return "available"

    def _table(self) -> str:
        if not self.table:
            names = [
                str(n)
                for n in self.service.run_sync(
                    "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name <> 'TAP_SCHEMA'"
                )["table_name"]
            ]
            if not names:
                raise CheckFailed(
                    "TAP publishes no table besides TAP_SCHEMA",
                    where=f"{self.url}/tables",
                    hint="is a data release served? (skydeck up --release ...)",
                )
            preferred = [n for n in PREFERRED_TABLES if n in names]
            self.table = (preferred or names)[0]
        return self.table

    def sync(self) -> str:
        with self._errors("sync"):
            table = self._table()
            rows = self.service.run_sync(f"SELECT TOP 5 * FROM {table}")
        if len(rows) == 0:
            raise CheckFailed(
                f"SELECT TOP 5 * FROM {table} returned no rows",
                where=f"{self.url}/sync",
                hint="the table is empty: is the release complete?",
            )
        return f"{len(rows)} rows of {table}"

    def async_(self, timeout: float) -> str:
        with self._errors("async"):
            table = self._table()
            job = self.service.submit_job(f"SELECT COUNT(*) AS n FROM {table}")
            try:
                job.run()
                job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=timeout)
                if job.phase != "COMPLETED":
                    raise CheckFailed(
                        f"the async job ended {job.phase}: {job.errorsummary}",
                        where=job.url,
                        hint="see the TAP service's log",
                    )
                n = int(job.fetch_result().to_table()["n"][0])
            finally:
                job.delete()
        return f"{n} rows counted by job"

    def upload(self) -> str:
        from astropy.table import Table

        ids = Table({"id": [1, 2, 3]})
        with self._errors("sync"):
            rows = self.service.run_sync(
                "SELECT COUNT(*) AS n FROM TAP_UPLOAD.bot_ids", uploads={"bot_ids": ids}
            )
        n = int(rows["n"][0])
        if n != 3:
            raise CheckFailed(
                f"TAP counted {n} rows in an uploaded table of 3",
                where=f"{self.url}/sync",
                hint="the upload was not read whole: see the TAP service's log",
            )
        return "an uploaded table of 3 rows read back"

    def delete_jobs(self) -> str:
        """Delete the bot's async jobs left by an interrupted run."""
        response = self.services.request("TAP", "tap", "GET", "async")
        if response.status_code != 200:
            raise service_failure("TAP", "tap", response.url, response.status_code, response.text)
        ids = re.findall(r"<uws:jobref[^>]*\bid=\"([^\"]+)\"", response.text)
        for job_id in ids:
            self.services.request("TAP", "tap", "DELETE", f"async/{quote(job_id)}")
        return f"{len(ids)} job(s) deleted"


# lab-side checks ----------------------------------------------------------------------------
#: Finds an image and a point inside it in the lab's Butler (the cutout service's IDs are
#: Butler dataset IDs; nothing public lists them but the lab's own Butler).
FIND_IMAGE = """
import json
import skydeck.lab as sl
from lsst.sphgeom import LonLat

butler = sl.get_butler()
found = None
for dataset_type in ("deep_coadd", "deepCoadd", "deepCoadd_calexp", "visit_image", "calexp"):
    if dataset_type not in {t.name for t in butler.registry.queryDatasetTypes()}:
        continue
    refs = butler.query_datasets(dataset_type, limit=1, with_dimension_records=True)
    if refs:
        centre = LonLat(refs[0].dataId.region.getBoundingCircle().getCenter())
        found = {"id": str(refs[0].id), "type": dataset_type,
                 "ra": centre.getLon().asDegrees(), "dec": centre.getLat().asDegrees()}
        break
print(json.dumps(found))
"""

#: The size the spawner gave the lab, as the lab sees it.
LAB_SIZE = """
import json, os
memory = os.environ.get("MEM_LIMIT")
print(json.dumps({"size": os.environ.get("SKYDECK_LAB_SIZE"), "cpu": os.environ.get("CPU_LIMIT"),
                  "memory_gib": round(int(memory) / 2**30, 1) if memory else None}))
"""

OPEN_CATALOG = """
import json
import skydeck.lab as sl

names = list(sl.list_catalogs().index)
name = "Object" if "Object" in names else names[0]
catalog = sl.open_catalog(name)
rows = len(catalog.head(5))
assert rows > 0, f"{name} gave no rows"
print(json.dumps({"catalog": name, "rows": rows, "partitions": catalog.npartitions}))
"""

DASK_GATEWAY = """
import json, warnings
import skydeck.lab as sl

with warnings.catch_warnings():
    # A LocalCluster inside the lab would hide a broken gateway.
    warnings.simplefilter("error", sl.LocalClusterWarning)
    client = sl.get_dask_client(n_workers=1)
try:
    total = client.submit(sum, [1, 2, 3]).result(timeout=120)
    assert total == 6, total
    workers = len(client.scheduler_info()["workers"])
finally:
    stopped = sl.shutdown_dask_clusters()
print(json.dumps({"workers": workers, "stopped": stopped}))
"""


def run_in_lab(kernel: LabKernel, code: str, what: str, timeout: float) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON line) in the lab's kernel."""
    try:
        out = kernel.execute(code, timeout=timeout)
    except KernelError as error:
        raise CheckFailed(
            error.last_line,
            where=f"{what}, in the lab's kernel ({kernel.server_url})",
            hint="run the same in a notebook of that lab to see it; the traceback is in --json",
            detail=error.traceback,
        ) from None
    except (LabError, TimeoutError) as error:
        raise CheckFailed(
            str(error).splitlines()[0],
            where=f"{what}, in the lab {kernel.server_url}",
            hint="the lab's kernel is not answering: see the lab's log (the hub log locally)",
        ) from None
    lines = [line for line in out.stdout.splitlines() if line.startswith(("{", "null"))]
    found: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return found or {}


def cutout(kernel: LabKernel, services: Services, timeout: float) -> str:
    """Find an image in the lab's Butler, then cut it through the SODA service."""
    image = run_in_lab(kernel, FIND_IMAGE, "finding an image in the Butler", timeout)
    if not image:
        raise CheckFailed(
            "the lab's Butler holds no coadd or visit image",
            where="skydeck.lab.get_butler() in the lab",
            hint="is the release built with images? (skydeck data build)",
        )
    radius = 10 / 3600  # a 20 arcsec stamp
    response = services.request(
        "the cutout service",
        "cutouts",
        "GET",
        "sync",
        params={"ID": image["id"], "CIRCLE": f"{image['ra']} {image['dec']} {radius}"},
    )
    if response.status_code != 200:
        raise service_failure(
            "the cutout service", "cutouts", response.url, response.status_code, response.text
        )
    if not response.content.startswith(b"SIMPLE"):
        raise CheckFailed(
            f"the cutout is not a FITS file ({response.headers.get('content-type')})",
            where=response.url,
            hint="see the cutout service's log",
        )
    return f"{len(response.content) // 1024} KiB FITS from {image['type']}"


def lsdb(kernel: LabKernel, timeout: float) -> str:
    found = run_in_lab(kernel, OPEN_CATALOG, "skydeck.lab.open_catalog", timeout)
    return f"{found.get('rows')} rows of {found.get('catalog')}"


def dask(kernel: LabKernel, timeout: float) -> str:
    found = run_in_lab(kernel, DASK_GATEWAY, "skydeck.lab.get_dask_client", timeout)
    return f"a cluster of {found.get('workers')} worker(s) started and stopped"


def delete_clusters(services: Services) -> str:
    """Stop the bot's dask-gateway clusters (a kernel that died may leave one running)."""
    headers = {"Authorization": f"jupyterhub {services.token}"}
    label = "dask-gateway"
    response = services.request(label, "dask", "GET", "api/v1/clusters/", headers=headers)
    if response.status_code != 200:
        raise service_failure(
            label, "dask-gateway", response.url, response.status_code, response.text
        )
    names = list(response.json())
    for name in names:
        services.request(label, "dask", "DELETE", f"api/v1/clusters/{name}", headers=headers)
    return f"{len(names)} cluster(s) stopped"


# tutorials -------------------------------------------------------------------------------------
#: Folder of the home that the spawner delivers the tutorials into.
TUTORIALS_DIR = "tutorials"


def list_tutorials(server_url: str, token: str, wanted: list[str] | None) -> list[str]:
    """The tutorials delivered to the lab's ``~/tutorials`` (only those starting with one
    of ``wanted``, if given), through the Jupyter contents API."""
    url = f"{server_url}/api/contents/{TUTORIALS_DIR}"
    try:
        response = requests.get(
            url, headers={"Authorization": f"token {token}"}, params={"content": 1}, timeout=60
        )
    except requests.RequestException as error:
        raise CheckFailed(
            f"the lab did not answer ({type(error).__name__})",
            where=url,
            hint="see the lab's log",
        ) from None
    if response.status_code == 404:
        raise CheckFailed(
            "the lab has no ~/tutorials folder",
            where=url,
            hint="the spawner delivers the tutorials at start: see the hub log",
        )
    if response.status_code != 200:
        raise CheckFailed(
            f"the lab answered {response.status_code} listing the tutorials",
            where=url,
            hint="see the lab's log",
        )
    names = sorted(
        item["name"]
        for item in response.json().get("content", [])
        if item.get("type") == "notebook" and not item["name"].endswith(".new.ipynb")
    )
    if wanted:
        names = [n for n in names if any(n.startswith(w) for w in wanted)]
    if not names:
        raise CheckFailed(
            "no tutorial to run" + (f" matching {','.join(wanted)}" if wanted else ""),
            where=url,
            hint="check --tutorials, or the delivery of tutorials (hub log)",
        )
    return [f"{TUTORIALS_DIR}/{n}" for n in names]


def tutorial(server_url: str, token: str, path: str, cell_timeout: float) -> str:
    """Run one tutorial top to bottom in a fresh kernel of the lab."""
    try:
        run = run_notebook(server_url, token, path, timeout=cell_timeout)
    except CellError as error:
        raise CheckFailed(
            error.last_line,
            where=f"{path}, cell {error.index}",
            hint=f"open {path} in a lab and run that cell to see it",
            detail=str(error),
        ) from None
    except (LabError, TimeoutError) as error:
        raise CheckFailed(
            str(error).splitlines()[0],
            where=f"{path} in {server_url}",
            hint="the lab's kernel is not answering: see the lab's log (the hub log locally)",
        ) from None
    return f"{len(run.cells)} cells"
