"""Coalescing of heartbeats and page loads, eviction by value at the cap, keyset paging."""

from __future__ import annotations

import itertools
import logging

from octoprint_tracking_queued.store import DB_FILE, open_queue
from tests.unit.fakes import FakeClocks

_ids = itertools.count()


def rec(event, **params):
    return {"id": f"r{next(_ids)}", "event": event, "params": params, "post": event == "pong", "created": 1.0}


def webui(browser="Chrome", os_name="Linux"):
    return rec("webui_load", browser_name=browser, browser_version="120", os_name=os_name, os_version="6")


def events(q, scope="pending"):
    return [r["event"] for r in q.page(scope, limit=200)]


def test_a_new_heartbeat_supersedes_the_pending_ones_of_its_kind_only(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    for event in ("startup", "ping", "pong", "ping", "print_done", "ping", "pong", "shutdown", "startup"):
        q.put(rec(event))
    assert events(q) == ["startup", "print_done", "ping", "pong", "shutdown", "startup"]
    stats = q.stats()
    assert stats["superseded"] == 3
    assert stats["by_event"]["superseded"] == {"ping": 2, "pong": 1}


def test_the_heartbeat_being_sent_is_not_superseded(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    q.put(rec("ping", n=1))
    sending = q.next()
    q.put(rec("ping", n=2))
    q.ack(sending)
    assert [r["params"]["n"] for r in q.page()] == [2]
    assert q.stats()["superseded"] == 0


def test_failed_heartbeats_are_not_superseded(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    q.put(rec("ping"))
    q.reject(q.next(), "HTTP 400")
    q.put(rec("ping"))
    assert (q.count("failed"), q.count("pending")) == (1, 1)


def test_page_loads_coalesce_per_browser_and_os(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    for load in (webui(), webui("Firefox"), webui(), webui(os_name="Windows"), webui()):
        q.put(load)
    assert [(r["params"]["browser_name"], r["params"]["os_name"]) for r in q.page()] == [
        ("Firefox", "Linux"),
        ("Chrome", "Windows"),
        ("Chrome", "Linux"),
    ]
    assert q.stats()["by_event"]["superseded"] == {"webui_load": 2}


def test_at_the_cap_page_loads_go_first_then_heartbeats_then_the_oldest(tmp_path):
    q = open_queue(str(tmp_path), max_records=10, clocks=FakeClocks())
    q.put(rec("startup"))
    q.put(rec("commerror_timeout"))
    for browser in "ABCD":
        q.put(webui(browser))
    q.put(rec("ping"))
    q.put(rec("pong"))
    q.put(rec("system_throttled"))
    q.put(rec("print_started"))
    assert q.count("all") == 10
    q.put(rec("print_done"))  # one too many: a page load goes
    q.put(rec("print_failed"))
    assert events(q).count("webui_load") == 2
    for _ in range(4):
        q.put(rec("print_cancelled"))
    # Page loads and heartbeats gone before any real event.
    assert sorted(set(events(q))) == [
        "commerror_timeout",
        "print_cancelled",
        "print_done",
        "print_failed",
        "print_started",
        "startup",
        "system_throttled",
    ]
    q.put(rec("shutdown"))  # only real events left: the oldest goes
    assert events(q)[0] == "commerror_timeout"
    stats = q.stats()
    assert stats["dropped_cap"] == 7
    assert stats["by_event"]["dropped_cap"] == {"webui_load": 4, "ping": 1, "pong": 1, "startup": 1}


def test_the_record_being_sent_is_never_evicted(tmp_path):
    q = open_queue(str(tmp_path), max_records=10, clocks=FakeClocks())
    q.put(webui())
    sending = q.next()
    for n in range(12):
        q.put(rec("print_done", n=n))
    q.ack(sending)
    assert q.stats()["delivered"] == 1
    assert [r["params"]["n"] for r in q.page()] == list(range(3, 12))


def test_keyset_pages_from_both_ends(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    q.put_many(rec("print_done", n=n) for n in range(120))
    first = q.page(limit=50)
    second = q.page(limit=50, after=first[-1]["rowid"])
    last = q.page(limit=50, last=True)
    before_last = q.page(limit=50, before=last[0]["rowid"])
    assert [r["params"]["n"] for r in first] == list(range(50))
    assert [r["params"]["n"] for r in second] == list(range(50, 100))
    assert [r["params"]["n"] for r in last] == list(range(70, 120))
    assert [r["params"]["n"] for r in before_last] == list(range(20, 70))
    assert q.page(limit=50, offset=100)[0]["params"]["n"] == 100


def test_every_offset_page_is_the_slice_of_the_whole_scope(tmp_path):
    # Offsets past the middle are walked from the end: the same rows, in the same order.
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    q.put_many(rec("print_done", n=n) for n in range(23))
    for _ in range(3):
        q.reject(q.next(), "HTTP 404")
    q.retry_later(q.next(), "HTTP 503")  # pending again, at the head
    sending = q.next()  # in flight: still on the pending pages
    for scope in ("pending", "failed", "all"):
        whole = [r["params"]["n"] for r in q.page(scope, limit=200)]
        for limit in (1, 5, 7):
            for offset in range(len(whole) + 2):
                page = [r["params"]["n"] for r in q.page(scope, offset=offset, limit=limit)]
                assert page == whole[offset : offset + limit], (scope, offset, limit)
    assert q.page("pending", offset=19, limit=5)[-1]["rowid"] == q.page("pending", last=True, limit=1)[0]["rowid"]
    q.ack(sending)


def test_counts_are_kept_not_counted(tmp_path):
    q = open_queue(str(tmp_path), max_records=100, clocks=FakeClocks())
    q.put_many(rec("print_done", n=n) for n in range(150))
    q.reject(q.next(), "HTTP 404")
    q.put(rec("ping"))
    stats = q.stats()
    assert (stats["pending"], stats["failed"], stats["dropped_cap"]) == (99, 1, 51)
    q.close()
    reopened = open_queue(str(tmp_path), max_records=100, clocks=FakeClocks())
    assert {k: reopened.stats()[k] for k in ("pending", "failed", "dropped_cap")} == {
        "pending": 99,
        "failed": 1,
        "dropped_cap": 51,
    }


def test_opting_out_clears_everything_and_counts_it(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    for n in range(3):
        q.put(rec("print_done", n=n))
    q.reject(q.next(), "HTTP 400")
    sending = q.next()
    assert q.clear("all", reason="opted out") == 3
    q.retry_later(sending, "timeout")  # the send in flight failed: nothing comes back
    assert q.next() is None
    assert q.stats()["cleared"] == 3
    assert "opted out" in caplog.text


def test_nothing_of_a_cleared_record_stays_in_the_file(tmp_path):
    q = open_queue(str(tmp_path), clocks=FakeClocks())
    marker = "marker-3f9a1c"
    q.put_many([rec("print_done", file=f"{marker}-{n}") for n in range(50)])
    sending = q.next()
    q.ack(sending)  # the worker's connection has written too
    assert q.clear("all", reason="opted out") == 49
    q.put(rec("startup"))  # the queue goes on working
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(DB_FILE))
    assert marker.encode() not in on_disk
    q.close()
