"""Opting out in the browser: the wizard's Disable says how many records not yet sent it deletes."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, wait_status
from tools.basedir import PLUGIN_ID


def unsent(s: dict) -> int:
    return s["pending"] + s["in_flight"] + s["failed"]


def test_wizard_disable_says_how_many_records_it_deletes(octoprint_factory, receiver, page):
    server = octoprint_factory(plugin_settings=dict(PRINTS, enabled=None), show_wizards=[PLUGIN_ID])
    login(page, server)
    step = page.locator("#wizard_plugin_tracking_queued")
    expect(step).to_be_visible()
    warning = page.locator("#tracking_queued_wizard_optout")
    expect(warning).to_be_hidden()  # undecided: nothing was collected

    # Tracking turned on elsewhere (another tab, the API) while the wizard is open, offline.
    receiver.stop()
    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"enabled": True}}})
    assert response.status_code == 200
    server.fire_event("PrintDone", DONE)
    server.fire_event("PrintDone", DONE)
    count = unsent(wait_status(server, lambda s: s["pending"] + s["in_flight"] == 3))  # and the ping
    expect(warning).to_have_text(f"Disable deletes {count} records not yet sent.")
    screenshot(page, "wizard_opt_out")

    page.click("#tracking_queued_wizard_disable")
    expect(page.locator("#tracking_queued_wizard_result")).to_contain_text("disabled")
    expect(warning).to_be_hidden()
    done = wait_status(server, lambda s: s["enabled"] is False and unsent(s) == 0)
    assert done["cleared"] == count
