"""A newcomer's path: log in through the real login form and reach the Skydeck kernel."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from support.hub import RunningHub

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_login_form_to_lab_launcher(hub: RunningHub, page: Page) -> None:
    password = hub.create_login("dora")  # her own login, as `skydeck users add` gives
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "dora")
    page.fill("#password_input", password)
    page.click("#login_submit")
    # The hub spawns the lab and sends the browser into JupyterLab.
    page.wait_for_url("**/user/dora/lab**", timeout=180_000)
    card = page.locator(".jp-LauncherCard[data-category='Notebook']").first
    expect(card).to_be_visible(timeout=120_000)
    expect(
        page.locator(".jp-LauncherCard[data-category='Notebook'] .jp-LauncherCard-label")
    ).to_have_text(["Skydeck (Python 3.12)"])
    card.click()
    # The notebook opens with the Skydeck kernel and becomes idle.
    expect(page.locator(".jp-Toolbar-kernelName").first).to_have_text("Skydeck (Python 3.12)")
    expect(
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
    ).to_be_attached(timeout=120_000)


def test_wrong_password_is_refused(hub: RunningHub, page: Page) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "mallory")
    page.fill("#password_input", "not-the-password")
    page.click("#login_submit")
    expect(page.locator(".login_error")).to_contain_text("Invalid username or password")
    assert "/hub/login" in page.url
