"""End to end: each plugin's visible effect and main action in a real JupyterLab.

Headless Debian chromium through Playwright (`support.browser`: screenshots of
failing tests go to test-artifacts/).  The TAP and quota services are stand-ins
on loopback serving fixed VOSI / UWS / quota documents (see conftest.py).
"""

from __future__ import annotations

import re

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import Lab, StandIns

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def notebook(page: Page) -> Locator:
    """The notebook in the current main-area tab."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")


def toast(page: Page, text: str) -> Locator:
    return page.locator(".jp-toast-message", has_text=text)


def open_lab(page: Page, lab: Lab, path: str = "lab") -> None:
    page.goto(lab.lab_url(path) + "&reset")
    page.locator("#jp-main-dock-panel").wait_for()
    page.locator(".jp-skydeck-status").wait_for()


def open_tutorial_notebook(page: Page, lab: Lab, name: str) -> None:
    """Copy a tutorial through the API and open it, so a notebook is current."""
    lab.api("POST", "tutorials/open", json={"path": name, "overwrite": True}).raise_for_status()
    open_lab(page, lab, f"lab/tree/tutorials/{name}")
    notebook(page).locator(".jp-Cell").first.wait_for()
    notebook(page).locator(".jp-Cell").last.click()


def active_cell_text(page: Page) -> str:
    return notebook(page).locator(".jp-Cell.jp-mod-active .cm-content").inner_text()


def side_tab(page: Page, widget_id: str) -> None:
    page.locator(f'.jp-SideBar [data-id="{widget_id}"]').click()
    page.locator(f"#{widget_id}").wait_for(state="visible")


def test_tutorials_menu_launcher_and_edit_protection(page: Page, services_lab: Lab) -> None:
    open_lab(page, services_lab)
    launcher = page.locator(".jp-Launcher-section", has_text="Skydeck Tutorials")
    expect(launcher.locator(".jp-LauncherCard")).to_have_count(3)
    expect(launcher).to_contain_text("Introduction to Skydeck")

    page.locator(".lm-MenuBar-itemLabel", has_text="Tutorials").click()
    page.locator("#jp-skydeck-tutorials-menu .lm-Menu-itemLabel", has_text="TAP and ADQL").click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(
        "02-tap.ipynb"
    )
    copy = services_lab.home / "tutorials" / "02-tap.ipynb"
    assert services_lab.tutorials is not None
    assert copy.read_bytes() == (services_lab.tutorials / "02-tap.ipynb").read_bytes()

    # The user edits the copy; opening it again asks before replacing it.
    edited = nbformat.read(copy, as_version=4)
    edited.cells.append(nbformat.v4.new_code_cell("edited_by_me = True"))
    nbformat.write(edited, copy)
    page.locator(".lm-MenuBar-itemLabel", has_text="Tutorials").click()
    item = page.locator("#jp-skydeck-tutorials-menu .lm-Menu-itemLabel", has_text="TAP and ADQL")
    expect(item).to_have_text("TAP and ADQL basics (edited)")
    item.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("You have edited this tutorial")
    dialog.locator("button", has_text="Replace with fresh copy").click()
    expect(toast(page, "edited copy was kept")).to_be_visible()
    backups = list(copy.parent.glob("02-tap.edited-*.ipynb"))
    assert len(backups) == 1 and "edited_by_me" in backups[0].read_text()
    assert "edited_by_me" not in copy.read_text()


def test_catalog_browser_filter_and_insert_query(page: Page, services_lab: Lab) -> None:
    open_tutorial_notebook(page, services_lab, "01-introduction.ipynb")
    side_tab(page, "jp-skydeck-catalog")
    panel = page.locator("#jp-skydeck-catalog")
    tables = panel.locator(".jp-skydeck-table")
    expect(tables).to_have_count(3)
    expect(panel).to_contain_text("Coadd objects detected on the deep coadds")

    panel.locator(".jp-skydeck-catalog-filter").fill("nJy")
    expect(tables).to_have_count(1)
    row = panel.locator('[data-column="g_psfFlux"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("phot.flux;em.opt.B")
    expect(panel.locator('[data-column="coord_ra"]')).to_have_count(0)

    cells_before = notebook(page).locator(".jp-Cell").count()
    panel.locator(".jp-skydeck-insert").click()
    expect(notebook(page).locator(".jp-Cell")).to_have_count(cells_before + 1)
    text = active_cell_text(page)
    assert "FROM dp02_dc2_catalogs.Object" in text
    assert "get_tap_service().search(query)" in text


def test_query_history_rerun_and_load(page: Page, services_lab: Lab, standins: StandIns) -> None:
    open_tutorial_notebook(page, services_lab, "01-introduction.ipynb")
    side_tab(page, "jp-skydeck-history")
    jobs = page.locator("#jp-skydeck-history .jp-skydeck-job")
    expect(jobs).to_have_count(2)
    newest = jobs.first
    expect(newest.locator(".jp-skydeck-phase")).to_have_text("COMPLETED")
    expect(newest.locator(".jp-skydeck-job-rows")).to_have_text("5 rows")
    expect(newest.locator(".jp-skydeck-job-query")).to_contain_text("SELECT TOP 5 objectId")
    expect(jobs.nth(1).locator(".jp-skydeck-load-result")).to_be_disabled()

    created = len(standins.created)
    newest.locator(".jp-skydeck-rerun").click()
    expect(toast(page, "submitted again")).to_be_visible()
    assert len(standins.created) == created + 1
    assert standins.created[-1]["QUERY"] == [
        "SELECT TOP 5 objectId, coord_ra FROM dp02_dc2_catalogs.Object"
    ]

    page.locator("#jp-skydeck-history .jp-skydeck-job").first.locator(
        ".jp-skydeck-load-result"
    ).click()
    expect(notebook(page).locator(".jp-Cell.jp-mod-active .cm-content")).to_contain_text(
        "AsyncTAPJob"
    )
    assert f"{standins.tap_url}async/job-done" in active_cell_text(page)


def test_status_bar_figures_and_keep_alive(page: Page, services_lab: Lab) -> None:
    open_lab(page, services_lab)
    status = page.locator(".jp-skydeck-status")
    expect(status.locator(".jp-skydeck-status-memory")).to_have_text(
        re.compile(r"^Mem .+ / 4 GiB$")
    )
    expect(status.locator(".jp-skydeck-status-dask")).to_have_text("Dask 3 / 8 workers")
    expect(status.locator(".jp-skydeck-status-storage")).to_have_text("Home 1.5 GiB / 20 GiB")
    keep_alive = status.locator(".jp-skydeck-keepalive")
    expect(keep_alive).to_be_visible()
    expect(keep_alive).to_contain_text("Keep alive")
    with page.expect_response(lambda r: "/skydeck/api/keepalive" in r.url) as response:
        keep_alive.click()
    assert response.value.status == 200


def test_everything_degrades_without_services(page: Page, bare_lab: Lab) -> None:
    open_lab(page, bare_lab)
    status = page.locator(".jp-skydeck-status")
    expect(status.locator(".jp-skydeck-status-memory")).to_have_text(
        re.compile(r"^Mem .+ / no limit$")
    )
    expect(status.locator(".jp-skydeck-status-storage")).to_have_text(
        re.compile(r"^Home .+ / no limit$")
    )
    expect(status.locator(".jp-skydeck-status-dask")).to_have_text("Dask —")
    expect(status.locator(".jp-skydeck-keepalive")).to_be_hidden()

    side_tab(page, "jp-skydeck-catalog")
    expect(page.locator("#jp-skydeck-catalog .jp-skydeck-message")).to_contain_text(
        "could not be reached"
    )
    side_tab(page, "jp-skydeck-history")
    expect(page.locator("#jp-skydeck-history .jp-skydeck-message")).to_contain_text(
        "query history is not available"
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="Tutorials").click()
    expect(page.locator("#jp-skydeck-tutorials-menu")).to_contain_text("No tutorials are installed")


def _type_in_first_cell(page: Page, text: str) -> None:
    notebook(page).locator(".jp-Cell").last.locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.type(text)
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_have_class(
        re.compile("jp-mod-dirty")
    )


def _run_save_and_logout(page: Page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-itemLabel", has_text="Save All and Log Out").click()


def test_save_all_and_log_out(page: Page, services_lab: Lab) -> None:
    open_tutorial_notebook(page, services_lab, "01-introduction.ipynb")
    _type_in_first_cell(page, "  # saved before logout")
    _run_save_and_logout(page)
    page.wait_for_url("**/fake-hub/logout")
    copy = services_lab.home / "tutorials" / "01-introduction.ipynb"
    assert "# saved before logout" in copy.read_text()


def test_save_all_without_a_hub(page: Page, bare_lab: Lab) -> None:
    work = nbformat.v4.new_notebook()
    work.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    work.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(work, bare_lab.home / "work.ipynb")
    open_lab(page, bare_lab, "lab/tree/work.ipynb")
    notebook(page).locator(".jp-Cell").first.wait_for()
    _type_in_first_cell(page, "  # kept")
    _run_save_and_logout(page)
    expect(page.locator(".jp-Dialog")).to_contain_text("no hub to log out of")
    assert "# kept" in (bare_lab.home / "work.ipynb").read_text()
