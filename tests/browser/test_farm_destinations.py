"""The settings tab shows the two destinations, each with its own state and counts, and flushes
the collector's backlog on its own (a real server, headless Chromium, the strict collector stand-in)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, wait_status
from tools.collector import partial_success


def test_the_tab_shows_each_destination_and_flushes_the_collector_alone(octoprint_factory, receiver, collector, page):
    server = octoprint_factory(
        plugin_settings={
            **PRINTS,
            "collector": {"endpoint": collector.url, "headers": {"Authorization": "Bearer ui-secret"}},
        }
    )
    collector.stop()
    for _ in range(2):
        server.fire_event("PrintDone", DONE)
    assert receiver.wait_event("print_done", count=2)
    wait_status(server, lambda s: s["destinations"]["collector"]["worker"]["state"] == "backoff")

    login(page, server)
    page.click("#navbar_show_settings")
    page.click('#settings_dialog a[href="#settings_plugin_tracking_queued"]')
    expect(page.locator("#tracking_queued_destinations_help")).to_contain_text("OpenTelemetry collector")
    public = page.locator("#tracking_queued_destination_tracking")
    farm = page.locator("#tracking_queued_destination_collector")
    expect(public.locator("td").first).to_have_text("Public tracking server")
    expect(public.locator(".tracking_queued_destination_pending")).to_have_text("0")
    expect(farm.locator("td").first).to_have_text("Your OpenTelemetry collector")
    expect(farm.locator(".tracking_queued_destination_pending")).to_have_text("2")
    expect(farm.locator(".tracking_queued_destination_state")).to_have_text(re.compile(r"^Backing off until"))
    assert "ui-secret" not in page.content(), "the collector's headers are never shown"
    # Its records, as the collector will get them, in the table below.
    farm.locator(".tracking_queued_destination_show").click()
    expect(page.locator("#tracking_queued_scope_pending")).to_contain_text("(2)")
    rows = page.locator("#tracking_queued_records tr.tracking_queued_record")
    expect(rows).to_have_count(2)
    rows.first.click()
    sent = page.locator("#tracking_queued_records tr.tracking_queued_params pre").first
    expect(sent).to_contain_text('"eventName": "print_done"')
    page.evaluate("PNotify.removeAll()")
    page.locator("#tracking_queued_destinations").scroll_into_view_if_needed()
    screenshot(page, "destinations")

    collector.start()
    farm.get_by_role("button", name="Flush now").click()
    expect(farm.locator(".tracking_queued_destination_pending")).to_have_text("0")
    expect(page.locator("#tracking_queued_empty")).to_be_visible()
    assert collector.wait_records(2, predicate=lambda r: r["event_name"] == "print_done")

    collector.behaviour = partial_success(1, "attribute too long")
    server.fire_event("PrintDone", DONE)
    partial = farm.locator(".tracking_queued_destination_partial")
    expect(partial).to_have_text("1")
    expect(partial).to_have_attribute("title", "1 rejected: attribute too long")
