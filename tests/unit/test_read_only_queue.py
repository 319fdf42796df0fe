"""store/view.py: a read-only look at a queue another process owns, and the exact parameters each record's request carries."""

import sqlite3

import pytest

from octoprint_tracking_queued.delivery import with_sent_params
from octoprint_tracking_queued.store import QueueMissing, open_queue


def rec(n):
    return {
        "id": f"r{n}",
        "event": "print_done",
        "params": {"n": n},
        "post": False,
        "created": 1000.5 + n,
        "attempts": 0,
        "last_error": None,
    }


def test_with_sent_params_adds_what_the_request_carries():
    [shown] = with_sent_params([rec(1)])
    assert shown["sent"] == {"n": 1, "event_time": 1001, "event_id": "r1"}
    assert with_sent_params([{"event": None, "params": {}}])[0]["sent"] is None


def test_read_only_queue_reads_without_touching_in_flight_rows(tmp_path):
    owner = open_queue(str(tmp_path))
    for n in range(3):
        owner.put(rec(n))
    in_flight = owner.next()
    reader = open_queue(str(tmp_path), read_only=True)
    try:
        # In flight is the owner's memory, never written: a reader sees every row pending.
        stats = reader.stats()
        assert (stats["pending"], stats["in_flight"]) == (3, 0)
        page = reader.page("pending", 0, 10)
        assert [(r["id"], r["status"]) for r in page] == [("r0", "pending"), ("r1", "pending"), ("r2", "pending")]
        assert owner.stats()["in_flight"] == 1
        # A view has no way to write; its one connection refuses writes too.
        assert not hasattr(reader, "clear") and not hasattr(reader, "put")
        with pytest.raises(sqlite3.OperationalError):
            reader.qf.getter.execute("DELETE FROM tq_counters")
    finally:
        reader.close()
    owner.ack(in_flight)  # still ours: the reader did not resume it
    assert owner.stats()["delivered"] == 1
    owner.close()


def test_missing_database(tmp_path):
    with pytest.raises(QueueMissing):
        open_queue(str(tmp_path), read_only=True)
    assert list(tmp_path.iterdir()) == []
