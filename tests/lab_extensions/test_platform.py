"""The extension in a lab spawned by a real ``skydeck up``, with the real TAP and quota services.

Unlike the other tests here (stand-in services), this one goes through the hub:
login form, spawned lab, the lab's own hub token, TAP (VOSI tables, UWS job list)
over the synthetic ``tap_release``, and the quota service's status document.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from support.hub import RunningHub
from support.tap import TapRelease

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUERY = "SELECT TOP 3 objectId, coord_ra FROM dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def platform(hub_factory: Callable[..., RunningHub], tap_release: TapRelease) -> RunningHub:
    return hub_factory(release=Path(str(tap_release.layout.root)), timeout=180)


def submit_job(hub: RunningHub, user: str) -> str:
    """Run one async TAP query as ``user`` through the hub; return its job URL."""
    headers = {"Authorization": f"token {hub.user_token(user)}"}
    response = requests.post(
        f"{hub.url}/services/tap/async",
        data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
        headers=headers,
        timeout=60,
        allow_redirects=False,
    )
    assert response.status_code == 303, response.text
    job = response.headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = requests.get(f"{job}/phase", headers=headers, timeout=30).text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            assert phase == "COMPLETED"
            return job
        time.sleep(0.5)
    raise AssertionError(f"TAP job {job} did not finish")


def run_active_cell(page: Page) -> None:
    """Run the notebook's active cell (the one a panel just filled) and stay on it."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("Do not Advance", re.I)).click()


def test_extension_against_the_real_platform(platform: RunningHub, page: Page) -> None:
    user = "erin"
    password = platform.create_login(user)
    job_url = submit_job(platform, user)

    page.goto(f"{platform.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=180_000)
    status = page.locator(".jp-skydeck-status")
    # Limits from the quota service's status document (the default quota).
    expect(status.locator(".jp-skydeck-status-memory")).to_have_text(
        re.compile(r"^Mem .+ / 4 GiB$"), timeout=60_000
    )
    expect(status.locator(".jp-skydeck-status-storage")).to_have_text(
        re.compile(r"^Home .+ / 20 GiB$")
    )
    expect(status.locator(".jp-skydeck-status-dask")).to_have_text("Dask 0 / 4 workers")

    # Tutorials from the repository's notebooks/ (the hub hands the lab the folder).
    launcher = page.locator(".jp-Launcher-section", has_text="Skydeck Tutorials")
    expect(launcher.locator(".jp-LauncherCard").first).to_be_visible()

    # A notebook with the Skydeck kernel to receive the generated cells.
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
    ).to_be_attached(timeout=120_000)

    page.locator('.jp-SideBar [data-id="jp-skydeck-catalog"]').click()
    catalog = page.locator("#jp-skydeck-catalog")
    object_table = catalog.locator('[data-table="dp02_dc2_catalogs.Object"]')
    expect(object_table).to_be_attached()
    catalog.locator(".jp-skydeck-catalog-filter").fill("coord_ra")
    expect(catalog.locator('[data-column="coord_ra"]').first).to_be_visible()
    catalog.locator(".jp-skydeck-catalog-filter").fill("")
    object_table.locator(".jp-skydeck-insert").click()
    # Run only once the inserted code is in the cell (on a loaded machine the menu was
    # faster than the insert, and ran the cell before it held anything).
    active_input = notebook.locator(".jp-Cell.jp-mod-active .jp-InputArea")
    expect(active_input).to_contain_text("get_tap_service")
    run_active_cell(page)
    expect(notebook.locator(".jp-Cell.jp-mod-active .jp-OutputArea")).to_contain_text(
        "Table length=", timeout=120_000
    )

    page.locator('.jp-SideBar [data-id="jp-skydeck-history"]').click()
    job_id = job_url.rstrip("/").rsplit("/", 1)[-1]
    job = page.locator(f'#jp-skydeck-history [data-job="{job_id}"]')
    expect(job.locator(".jp-skydeck-phase")).to_have_text("COMPLETED")
    expect(job.locator(".jp-skydeck-job-query")).to_contain_text("dp02_dc2_catalogs.Object")
    job.locator(".jp-skydeck-load-result").click()
    expect(active_input).to_contain_text("fetch_result")
    run_active_cell(page)
    expect(notebook.locator(".jp-Cell.jp-mod-active .jp-OutputArea")).to_contain_text(
        "Table length=3", timeout=120_000
    )
    jobs_before = page.locator("#jp-skydeck-history .jp-skydeck-job").count()
    page.locator(f'#jp-skydeck-history [data-job="{job_id}"] .jp-skydeck-rerun').click()
    expect(page.locator("#jp-skydeck-history .jp-skydeck-job")).to_have_count(jobs_before + 1)

    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-itemLabel", has_text="Save All and Log Out").click()
    page.wait_for_url("**/hub/login**", timeout=60_000)
