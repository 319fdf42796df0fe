"""The browser side of the harness: Chromium logs in to a test server with the
fixed credentials, and neither it nor OctoPrint reaches outside hosts."""

import pytest

from tools.basedir import ADMIN_PASSWORD, ADMIN_USER

pytestmark = pytest.mark.browser


def test_chromium_logs_in_and_stays_on_loopback(octoprint_factory, page, outbound_guard, test_output):
    server = octoprint_factory()
    page.goto(server.url + "/")
    page.fill("#login-user", ADMIN_USER)
    page.fill("#login-password", ADMIN_PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#navbar_show_settings", timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.click("#navbar_show_settings")
    page.wait_for_selector("#settings_dialog", state="visible")
    # wait for Bootstrap's fade-in to end, so the screenshot is readable
    page.wait_for_function("getComputedStyle(document.querySelector('#settings_dialog')).opacity === '1'")
    page.screenshot(path=str(test_output / "settings.png"))
    # a leak would also fail the fixture's teardown; say it here with context
    assert outbound_guard.attempts == []
