"""store/: per-destination delivery: the mask new records are for, batches taken and settled in
one transaction, a record kept until every destination that needs it has it, and an opt-out
that takes only its own destination's backlog."""

from __future__ import annotations

from octoprint_tracking_queued.store import BIT, COLLECTOR, TRACKING, open_queue

BOTH = BIT[TRACKING] | BIT[COLLECTOR]


def rec(n: int) -> dict:
    return {"id": f"r{n}", "event": "print_done", "params": {"n": n}, "post": False, "created": 1000.0 + n}


def numbers(entries) -> list:
    return [entry.record["params"]["n"] for entry in entries]


def counts(q, dest: str) -> tuple:
    s = q.stats(dest)
    return s["pending"], s["in_flight"], s["failed"], s["delivered"]


def test_a_record_leaves_only_when_every_destination_that_needs_it_has_it(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(0))  # made while only the public server was on
    q.set_destinations(BOTH)
    q.put(rec(1))
    assert (q.count("pending", TRACKING), q.count("pending", COLLECTOR)) == (2, 1)
    q.ack(q.next_batch(TRACKING, 10))
    assert q.ledger.rows == 1 and (counts(q, TRACKING), counts(q, COLLECTOR)) == ((0, 0, 0, 2), (1, 0, 0, 0))
    q.ack(q.next_batch(COLLECTOR, 10))
    assert q.ledger.rows == 0 and counts(q, COLLECTOR) == (0, 0, 0, 1)
    assert not q.ledger.recount(q.qf.getter)  # the kept counts are the table's
    q.close()


def test_a_batch_is_the_oldest_records_in_flight_then_settled_together(tmp_path):
    q = open_queue(str(tmp_path))
    q.set_destinations(BIT[COLLECTOR])
    q.put_many([rec(n) for n in range(250)])
    batch = q.next_batch(COLLECTOR, 100)
    assert numbers(batch) == list(range(100)) and counts(q, COLLECTOR) == (150, 100, 0, 0)
    assert [r["status"] for r in q.page("pending", 0, 101, dest=COLLECTOR)][99:] == ["in_flight", "pending"]
    q.retry_later(batch, "HTTP 503")
    assert numbers(q.next_batch(COLLECTOR, 3)) == [0, 1, 2]  # its place at the head kept
    again = q.next_batch(COLLECTOR, 100)
    assert again[0].attempts == 1 and again[0].record["last_error"] == "HTTP 503"
    q.reject(again, "HTTP 400")
    assert counts(q, COLLECTOR) == (150, 0, 100, 0)
    q.close()


def test_a_batch_stops_at_its_byte_limit_but_never_sends_nothing(tmp_path):
    q = open_queue(str(tmp_path))
    q.set_destinations(BIT[COLLECTOR])
    q.put_many([rec(n) for n in range(10)])
    one_row = len(q.qf.getter.execute("SELECT data FROM ack_queue_records LIMIT 1").fetchone()[0])
    assert len(q.next_batch(COLLECTOR, 10, max_bytes=3 * one_row)) == 3
    assert len(q.next_batch(COLLECTOR, 10, max_bytes=1)) == 1
    q.close()


def test_one_destination_failing_never_holds_the_other(tmp_path):
    q = open_queue(str(tmp_path))
    q.set_destinations(BOTH)
    q.put_many([rec(n) for n in range(5)])
    q.reject(q.next_batch(COLLECTOR, 5), "HTTP 400")
    assert numbers(q.next_batch(TRACKING, 5)) == [0, 1, 2, 3, 4]
    q.ack(q.next_batch(TRACKING, 5))
    assert counts(q, TRACKING) == (0, 0, 0, 5) and counts(q, COLLECTOR) == (0, 0, 5, 0)
    assert q.requeue_failed(COLLECTOR) == 5 and counts(q, COLLECTOR) == (5, 0, 0, 0)
    q.close()


def test_opting_out_of_the_public_server_keeps_what_the_collector_still_needs(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(0))  # the public server's only: deleted with the opt-out
    q.set_destinations(BOTH)
    q.put(rec(1))
    assert q.clear("all", dest=TRACKING) == 2
    assert q.ledger.rows == 1 and numbers(q.next_batch(COLLECTOR, 10)) == [1]
    assert q.next_batch(TRACKING, 10) == []
    q.close()


def test_the_mask_of_new_records_survives_a_restart(tmp_path):
    q = open_queue(str(tmp_path))
    q.set_destinations(BIT[COLLECTOR])
    q.put(rec(0))
    q.close()
    q = open_queue(str(tmp_path))
    q.put(rec(1))
    assert (q.count("pending", TRACKING), q.count("pending", COLLECTOR)) == (0, 2)
    q.close()


def test_caps_and_eviction_count_per_destination(tmp_path):
    q = open_queue(str(tmp_path), max_records=10)
    q.put_many([rec(n) for n in range(5)])  # the public server's only
    q.set_destinations(BIT[COLLECTOR])
    q.put_many([rec(n) for n in range(5, 10)])  # the collector's only
    q.set_destinations(BOTH)
    q.put_many([rec(n) for n in range(10, 17)])  # at the cap: the 7 oldest go
    tracking, collector = q.stats(TRACKING), q.stats(COLLECTOR)
    assert (tracking["dropped_cap"], collector["dropped_cap"]) == (5, 2)
    assert (tracking["pending"], collector["pending"]) == (7, 10)
    assert q.ledger.rows == 10 and not q.ledger.recount(q.qf.getter)
    q.close()


def test_finding_a_destinations_oldest_row_skips_what_only_the_other_needs(tmp_path):
    q = open_queue(str(tmp_path))
    q.put_many([rec(n) for n in range(300)])  # the public server's only
    q.set_destinations(BOTH)
    q.put_many([rec(n) for n in range(300, 303)])
    steps = []
    q.qf.getter.set_progress_handler(lambda: steps.append(1), 100)
    assert numbers(q.next_batch(COLLECTOR, 1)) == [300]
    q.retry_later(q.next_batch(COLLECTOR, 1), "HTTP 503")
    walked, steps[:] = len(steps), []
    assert numbers(q.next_batch(COLLECTOR, 3)) == [300, 301, 302] and q.stats(COLLECTOR)["oldest_pending"]
    assert len(steps) < walked / 2, "the second look starts where the first found its row"
    q.reject(q.next_batch(COLLECTOR, 3), "HTTP 400")
    assert q.next_batch(COLLECTOR, 3) == [] and q.stats(COLLECTOR)["oldest_pending"] is None
    assert q.requeue_failed(COLLECTOR) == 3  # live again below where it looked last
    assert numbers(q.next_batch(COLLECTOR, 3)) == [300, 301, 302]
    q.qf.getter.set_progress_handler(None, 0)
    q.close()
