"""Opting out in the browser: the switch and the wizard's Disable say how many records not yet
sent will be deleted, before anything is deleted; after the save none of them ever leaves."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import API, DONE, PRINTS, status, wait_status
from tools.basedir import PLUGIN_ID
from tools.receiver import respond


def unsent(s: dict) -> int:
    return s["pending"] + s["in_flight"] + s["failed"]


def unsent_ids(server) -> set:
    """The event ids of every record not yet sent, pending and failed."""
    ids = set()
    for scope in ("pending", "failed"):
        page = server.api("GET", API, params={"records": scope, "limit": 200}).json()
        ids |= {record["id"] for record in page["records"]}
    return ids


def open_tab(page: Page) -> None:
    page.click("#navbar_show_settings")
    page.click('#settings_dialog a[href="#settings_plugin_tracking_queued"]')
    expect(page.locator("#tracking_queued_inspector")).to_be_visible()


def save_settings(page: Page) -> None:
    page.click('#settings_dialog [data-test-id="settings-save"]')
    expect(page.locator("#settings_dialog")).to_be_hidden()


def test_switch_warns_before_saving_and_nothing_collected_leaves_after(octoprint_factory, receiver, page):
    server = octoprint_factory(plugin_settings=PRINTS)
    assert receiver.wait_event("ping", timeout=20)
    receiver.behaviour = respond(400)  # refused for good: one failed record
    server.fire_event("PrintDone", DONE)
    wait_status(server, lambda s: s["failed"] == 1)
    receiver.stop()  # and three that wait
    for _ in range(3):
        server.fire_event("PrintDone", DONE)
    wait_status(server, lambda s: s["pending"] + s["in_flight"] == 3)
    collected = unsent_ids(server)
    assert len(collected) == 4

    login(page, server)
    open_tab(page)
    warning = page.locator("#tracking_queued_optout")
    expect(page.locator("#tracking_queued_pending")).to_have_text("3")
    expect(warning).to_be_hidden()
    page.uncheck("#tracking_queued_enabled")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("4 records not yet sent will be deleted when you save.")
    screenshot(page, "settings_opt_out")
    assert unsent(status(server)) == 4  # a warning only: nothing is deleted before the save
    page.check("#tracking_queued_enabled")
    expect(warning).to_be_hidden()  # changed back: nothing to warn about
    page.uncheck("#tracking_queued_enabled")

    save_settings(page)
    done = wait_status(server, lambda s: s["enabled"] is False and unsent(s) == 0)
    assert done["cleared"] == 4
    assert server.wait_for_log("Deleted 4 tracking records not yet sent: opted out")

    # Back online and opted in again: new records go out, none of those collected before.
    receiver.behaviour = None
    receiver.start()
    receiver.clear()
    open_tab(page)
    expect(warning).to_be_hidden()
    page.check("#tracking_queued_enabled")
    save_settings(page)
    wait_status(server, lambda s: s["enabled"] is True)
    server.fire_event("PrintDone", {**DONE, "path": "after.gcode"})
    assert receiver.wait_event("print_done", timeout=20)
    wait_status(server, lambda s: unsent(s) == 0)  # drained, oldest first: an old one would be out by now
    sent = {r["params"].get("event_id") for r in receiver.requests}
    assert sent and not sent & collected
    assert [r["event"] for r in receiver.requests].count("print_done") == 1


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
    # the result line holds both outcomes, one hidden
    expect(page.locator("#tracking_queued_wizard_result span").filter(has_text="is disabled")).to_be_visible()
    expect(warning).to_be_hidden()
    done = wait_status(server, lambda s: s["enabled"] is False and unsent(s) == 0)
    assert done["cleared"] == count
