"""Playwright (Debian's Chromium, headless) against a real OctoPrint from the integration harness."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

# The harness's fixtures (octoprint_factory, receiver, outbound_guard, ...) come from
# tests/conftest.py; the launch options keep Chromium on loopback.
from tests.harness.browser import chromium_launch_options
from tests.harness.fixtures import TEST_OUTPUT
from tools.basedir import ADMIN_PASSWORD, ADMIN_USER
from tools.guard import OutboundGuard
from tools.server import OctoPrintServer

SCREENSHOTS = TEST_OUTPUT / "screenshots"
# What a page waits for often crosses OctoPrint: the wizard's Finish saves every setting, then
# finishes the wizard, then fades the dialog out. With the matrix's two lanes on 2 cores that
# took more than Playwright's 5 s for an assertion once; waits are as long as the page's.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser(outbound_guard: OutboundGuard) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, **chromium_launch_options(outbound_guard))
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1300}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


# OctoPrint's pop-ups (achievements for the prints a test fires) come and go on their own
# and would cover the tab; hidden only in the picture, the page keeps them.
_NO_POPUPS = ".ui-pnotify { display: none !important; }"


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), style=_NO_POPUPS)
    return path


def login(page: Page, server: OctoPrintServer) -> None:
    """Open the web interface as the admin and wait until OctoPrint finished starting up."""
    page.goto(server.url + "/login?redirect=%2F")
    page.fill("#login-user", ADMIN_USER)
    page.fill("#login-password", ADMIN_PASSWORD)
    page.click("#login-button")
    page.wait_for_url(server.url + "/")
    page.wait_for_function("window.OctoPrint && OctoPrint.coreui && OctoPrint.coreui.startedUp === true")
