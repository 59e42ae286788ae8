"""Headless Chromium (Debian's ``chromium``) driven by Playwright.

Browser downloads do not work on our machines, so Playwright launches the
system Chromium through ``executable_path``.  A failing test leaves a
screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str:
    path = os.environ.get("SKYDECK_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError("Debian's chromium is not installed: apt-get install -y chromium")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module.

    Not per session: while Playwright's sync API is open, the main thread has a
    running event loop, so every asyncio test after the first browser test would
    fail ("Cannot run the event loop while another loop is running").
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash.setdefault(_failed_key, report.failed)
    return report


_failed_key = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; screenshot kept on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    if request.node.stash.get(_failed_key, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.nodeid.replace("/", "_").replace("::", "-")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
