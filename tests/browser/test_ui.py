"""The wizard step and the queue inspector, driven in headless Chromium against a real server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, QUIET, offline, wait_status
from tools.basedir import PLUGIN_ID
from tools.receiver import respond

# The bundled plugin "on", but pointed at a closed loopback port should it ever send.
BUNDLED_ON = {"plugins": {"tracking": {"enabled": True, "server": "http://127.0.0.1:9/track/{id}/{event}/"}}}


def open_inspector(page: Page) -> None:
    page.click("#navbar_show_settings")
    page.click('#settings_dialog a[href="#settings_plugin_tracking_queued"]')
    expect(page.locator("#tracking_queued_inspector")).to_be_visible()


def test_wizard_needs_a_decision_and_enable_turns_bundled_off(octoprint_factory, page):
    server = octoprint_factory(
        plugin_settings={"enabled": None},
        extra_config={"server": {"firstRun": True}, **BUNDLED_ON},
        show_wizards=[PLUGIN_ID],
    )
    login(page, server)
    step = page.locator("#wizard_plugin_tracking_queued")
    expect(page.locator("#wizard_dialog")).to_be_visible()
    for _ in range(5):  # first run: "Start" and other steps come before ours
        if step.is_visible():
            break
        page.click("#wizard_dialog .button-next")
    expect(step).to_be_visible()
    expect(page.locator("#tracking_queued_wizard_bundled")).to_be_visible()
    screenshot(page, "wizard_step")

    # No decision: moving on is refused with a message and our step stays.
    page.click("#wizard_dialog .button-next")
    message = page.locator(".modal", has_text="Please decide on anonymous usage tracking (queued)")
    expect(message).to_be_visible()
    message.locator(".btn").first.click()
    expect(message).to_be_hidden()
    # bootstrap-modal drops the closed dialog's overlay a little later; it would eat clicks
    expect(page.locator(".modal-scrollable")).to_have_count(1)
    expect(step).to_be_visible()

    page.click("#tracking_queued_wizard_enable")
    result = page.locator("#tracking_queued_wizard_result span")  # both outcomes are there, one hidden
    expect(result.filter(has_text="is enabled")).to_be_visible()
    expect(result.filter(has_text="bundled Anonymous Usage Tracking plugin has been turned off")).to_be_visible()
    saved = server.api("GET", "/api/settings").json()["plugins"]
    assert saved[PLUGIN_ID]["enabled"] is True
    assert saved["tracking"]["enabled"] is False

    # Decided: the rest of the wizard (OctoPrint's own steps) can be walked through and
    # finished. Forced clicks: the dialog re-centres as its steps change height, and a
    # click aimed mid-move lands on the modal's backdrop.
    finish = page.locator("#wizard_dialog .button-finish")
    for _ in range(10):
        if finish.is_visible():
            break
        page.click("#wizard_dialog .button-next", force=True)
    for box in page.locator("#wizard_firstrun_end input[type=checkbox]").all():
        expect(box).to_be_visible()  # the last step shows a moment after its Finish button
        box.check(force=True)  # OctoPrint's own "I have read and understood this"
    finish.click()  # not forced: Playwright waits until the dialog holds still
    expect(page.locator("#wizard_dialog")).to_be_hidden()
    assert server.read_config()["server"]["seenWizards"][PLUGIN_ID] == 1


def test_pending_events_appear_live_and_flush_sends_them(octoprint_factory, receiver, page):
    server = octoprint_factory(plugin_settings=PRINTS)
    offline(server, receiver)
    login(page, server)
    open_inspector(page)
    expect(page.locator("#tracking_queued_empty")).to_be_visible()

    for _ in range(3):
        server.fire_event("PrintDone", DONE)
    rows = page.locator("#tracking_queued_records tr.tracking_queued_record")
    expect(rows).to_have_count(3)  # pushed by plugin messages: no reload
    expect(page.locator("#tracking_queued_pending")).to_have_text("3")
    expect(page.locator("#tracking_queued_state")).to_have_text(
        re.compile(r"^Backing off until \d\d:\d\d:\d\d \(.+\)$")
    )

    rows.first.click()
    params = page.locator("#tracking_queued_records tr.tracking_queued_params").first
    expect(params).to_be_visible()
    first = server.api("GET", "/api/plugin/tracking_queued", params={"records": "pending", "limit": 1}).json()
    expect(params.locator("pre")).to_contain_text(f'"event_id": "{first["records"][0]["id"]}"')
    page.evaluate("PNotify.removeAll()")  # OctoPrint's achievement pop-ups would hide the table
    expect(page.locator(".ui-pnotify")).to_have_count(0)
    params.locator("pre").scroll_into_view_if_needed()
    screenshot(page, "inspector_pending")

    receiver.start()
    page.click("#tracking_queued_flush")
    expect(page.locator("#tracking_queued_empty")).to_be_visible()
    expect(page.locator("#tracking_queued_pending")).to_have_text("0")
    assert receiver.wait_event("print_done", count=3, timeout=10)


def test_clear_asks_and_empties_the_failed_list(octoprint_factory, receiver, page):
    server = octoprint_factory(plugin_settings=PRINTS)
    assert receiver.wait_event("ping", timeout=20)
    receiver.behaviour = respond(400)  # the server refuses: records end up failed
    server.fire_event("PrintDone", DONE)
    server.fire_event("PrintDone", DONE)
    wait_status(server, lambda s: s["failed"] == 2)

    login(page, server)
    open_inspector(page)
    page.click("#tracking_queued_scope_failed")
    expect(page.locator("#tracking_queued_records tr.tracking_queued_record")).to_have_count(2)

    page.click("#tracking_queued_clear")
    dialog = page.locator(".modal", has_text="Clear the tracking queue?")
    expect(dialog).to_contain_text("2 failed events will be deleted")
    dialog.locator(".btn-danger", has_text="Delete").click()
    expect(page.locator("#tracking_queued_empty")).to_contain_text("No failed events")
    expect(page.locator("#tracking_queued_failed")).to_have_text("0")
    assert wait_status(server, lambda s: s["failed"] == 0)["cleared"] == 2


def test_settings_words_come_from_the_plugin(octoprint_factory, receiver, page):
    server = octoprint_factory(plugin_settings=QUIET)  # the harness pings once a day
    login(page, server)
    assert receiver.wait_event("webui_load", timeout=20)  # sent by the page-load view model
    open_inspector(page)
    expect(page.locator("#tracking_queued_ping")).to_have_text("Ping every day with the uptime (always on)")
    expect(page.locator("#settings_plugin_tracking_queued input[data-bind^='checked: events.']")).to_have_count(12)
    expect(page.locator("#settings_plugin_tracking_queued label", has_text="Web interface loaded")).to_be_visible()
    state = page.locator("#tracking_queued_state")
    expect(state).to_have_text("Idle: nothing to send")
    expect(state).to_have_class(re.compile(r"\btext-success\b"))
