"""What the queue inspector counts and dates: records replaced and dropped per tracking event,
the connectivity verdict in force, true event times (and uncertain ones), and paging by key."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from octoprint_tracking_queued.clock import Clocks
from octoprint_tracking_queued.store import open_queue
from tests.browser.conftest import login, screenshot
from tests.harness.api import DONE, PRINTS, QUIET, wait_status

DAY = 86400


def open_inspector(page: Page) -> None:
    page.click("#navbar_show_settings")
    page.click('#settings_dialog a[href="#settings_plugin_tracking_queued"]')
    expect(page.locator("#tracking_queued_inspector")).to_be_visible()


def closed_port() -> int:
    """A loopback port nothing listens on: OctoPrint's connectivity check then says offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_inspector_counts_replaced_and_dropped_per_event_and_shows_the_verdict(
    octoprint_factory, receiver, browser: Browser, page: Page
):
    receiver.stop()
    check = {"enabled": True, "host": "127.0.0.1", "port": closed_port(), "name": "", "interval": 3600}
    server = octoprint_factory(
        plugin_settings={
            **QUIET,
            "events": {**QUIET["events"], "printjob": True},
            "queue": {"max_records": 10},
            # believed offline, the worker tries a record only every max_delay: none in flight
            # (spared by the cap) until Flush now
            "retry": {"initial_delay": 600, "max_delay": 600},
        },
        extra_config={"server": {"onlineCheck": check}},
    )
    wait_status(server, lambda s: s["worker"]["connectivity"] == "offline" and s["in_flight"] == 0)
    login(page, server)  # the page load is queued: a webui_load record (and the start's ping)
    wait_status(server, lambda s: s["pending"] + s["in_flight"] == 2)
    other = browser.new_context(viewport={"width": 1280, "height": 1300}, locale="en-US")
    try:  # the same browser and OS in another session: its page load replaces the first
        login(other.new_page(), server)
        wait_status(server, lambda s: s["superseded"] == 1)
    finally:
        other.close()
    for _ in range(11):  # 1 ping + 1 webui_load + 11 prints: three over the limit of ten
        server.fire_event("PrintDone", DONE)
    s = wait_status(server, lambda s: s["dropped_cap"] == 3)
    # page loads go first, then heartbeats, then the oldest of the rest
    assert s["by_event"]["dropped_cap"] == {"webui_load": 1, "ping": 1, "print_done": 1}

    open_inspector(page)
    expect(page.locator("#tracking_queued_pending")).to_have_text("10")
    expect(page.locator("#tracking_queued_superseded")).to_have_text(
        "1 by a newer record of the same kind (webui_load 1)"
    )
    expect(page.locator("#tracking_queued_dropped")).to_have_text(
        "3 over the limit of 10 records (ping 1, print_done 1, webui_load 1), 0 older than 30 days, "
        "0 could not be stored"
    )
    expect(page.locator("#tracking_queued_cleared")).to_have_text("0 by Clear or by turning tracking off")
    connectivity = page.locator("#tracking_queued_connectivity")
    expect(connectivity).to_have_text(
        "Offline, as OctoPrint's connectivity check says: one record is tried now and then"
    )
    screenshot(page, "inspector_counts")

    # The tracking server is reachable although the check still says offline: Flush now gets
    # through, and the worker goes by that.
    receiver.start()
    page.click("#tracking_queued_flush")
    expect(connectivity).to_have_text(
        "OctoPrint's connectivity check says offline, but the tracking server was reached: sending"
    )
    assert receiver.wait_event("print_done", count=10, timeout=30)
    expect(page.locator("#tracking_queued_pending")).to_have_text("0")


def prefill_from_an_earlier_boot(folder: Path, stale_by: float) -> float:
    """One record made in another boot whose wall clock, `stale_by` seconds behind, was never
    confirmed (no time sync, never seen to step), as on a Pi without network; its created time."""
    clocks = Clocks(
        wall=lambda: time.time() - stale_by, boot_id=lambda: "earlier-boot-" + uuid.uuid4().hex, synced=lambda: False
    )
    folder.mkdir(parents=True, exist_ok=True)
    queue = open_queue(str(folder), clocks=clocks)
    created = clocks.wall()
    queue.put(record("from_earlier_boot", created))
    queue.close()
    return created


def record(event: str, created: float) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "event": event,
        "params": {},
        "post": False,
        "created": created,
        "attempts": 0,
        "last_error": None,
    }


def test_uncertain_times_are_marked_and_the_pager_walks_by_key(octoprint_factory, receiver, page: Page):
    receiver.stop()
    server = octoprint_factory(plugin_settings=PRINTS, start=False)
    created = prefill_from_an_earlier_boot(server.data_folder, stale_by=3 * DAY)
    queue = open_queue(str(server.data_folder))  # this boot's clocks: these times are certain
    queue.put_many([record(f"backlog_{n:02d}", time.time()) for n in range(44)])
    queue.close()
    server.start()
    wait_status(server, lambda s: s["pending"] + s["in_flight"] == 46)  # and the start's ping

    login(page, server)
    open_inspector(page)
    rows = page.locator("#tracking_queued_records tr.tracking_queued_record")
    expect(rows).to_have_count(20)
    stale = page.evaluate("t => formatDate(t, {seconds: true})", int(created))
    first = rows.first.locator(".tracking_queued_when")
    expect(first).to_contain_text(stale)  # the time it was recorded with, 3 days behind
    expect(first.locator(".tracking_queued_uncertain")).to_be_visible()
    expect(first.locator(".tracking_queued_uncertain")).to_have_text("time uncertain")
    expect(rows.nth(1).locator(".tracking_queued_uncertain")).to_be_hidden()
    oldest = page.locator("#tracking_queued_oldest")
    expect(oldest).to_contain_text(stale)
    expect(oldest.locator(".tracking_queued_uncertain")).to_be_visible()

    pager = page.locator("#tracking_queued_page")
    events = rows.locator("td:nth-child(3) code")

    def shows(text: str, first_event: str, last_event: str) -> None:
        expect(pager).to_have_text(text)
        expect(events.first).to_have_text(first_event)
        expect(events.last).to_have_text(last_event)

    shows("1–20 of 46", "from_earlier_boot", "backlog_18")
    page.click("#tracking_queued_last")
    shows("27–46 of 46", "backlog_25", "ping")
    page.click("#tracking_queued_prev")
    shows("7–26 of 46", "backlog_05", "backlog_24")
    page.click("#tracking_queued_prev")  # fewer than a page before it: the first page
    shows("1–20 of 46", "from_earlier_boot", "backlog_18")
    page.click("#tracking_queued_next")
    shows("21–40 of 46", "backlog_19", "backlog_38")
    screenshot(page, "inspector_pager")
    server.fire_event("PrintDone", DONE)  # the list changed: a middle page's place is a guess now
    expect(pager).to_have_text("about 21–40 of 47")
    page.click("#tracking_queued_next")  # a short page after the key: the end, known exactly
    shows("41–47 of 47", "backlog_39", "print_done")
    expect(page.locator("#tracking_queued_next").locator("..")).to_have_class("disabled")
    page.click("#tracking_queued_first")
    shows("1–20 of 47", "from_earlier_boot", "backlog_18")
