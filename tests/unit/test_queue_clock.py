"""Clock-safe ages and true event times (clock.py through the queue), with fake clocks and boot ids."""

from __future__ import annotations

import sqlite3

from octoprint_tracking_queued import otlp
from octoprint_tracking_queued.store import DB_FILE, open_queue
from tests.unit.fakes import FakeClocks

DAY = 86400.0
TRUE_NOW = 1_790_000_000.0  # the real time, in 2026


def rec(n, created):
    return {"id": f"r{n}", "event": "print_done", "params": {"n": n}, "post": False, "created": created}


def make_queue(tmp_path, clocks, **kwargs):
    return open_queue(str(tmp_path), max_age_days=30, clocks=clocks, **kwargs)


def test_stale_clock_then_ntp_jump_in_the_same_run_drops_nothing_and_dates_truly(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW - 40 * DAY, mono=500.0)  # fake-hwclock restored a 40-day-old time
    q = make_queue(tmp_path, clocks)
    for n in range(3):
        q.put(rec(n, clocks.wall()))
        clocks.advance(10)
    clocks.jump_wall(40 * DAY)  # NTP sync
    clocks.advance(70)
    q.observe()
    assert q.expire() == 0
    entry = q.next()
    # Made 100 s ago by the monotonic clock: its real time, not the stale wall clock's.
    assert entry.event_time == int(clocks.wall() - 100)
    assert entry.time_certain
    assert q.clock_confirmed  # the step was seen


def test_true_times_keep_the_fraction_of_a_second(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW - 40 * DAY, mono=500.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(0, clocks.wall()))
    clocks.advance(0.3)
    q.put(rec(1, clocks.wall()))
    clocks.jump_wall(40 * DAY)
    clocks.advance(0.45)
    q.observe()
    first, second = q.next_batch(limit=2)
    assert abs(first.event_time - (clocks.wall() - 0.75)) < 1e-6
    assert abs(second.event_time - first.event_time - 0.3) < 1e-6


def test_stale_clock_then_restart_in_the_same_boot_keeps_monotonic_ages(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW - 40 * DAY, mono=500.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    q.close()
    clocks.advance(30)
    clocks.jump_wall(40 * DAY)  # OctoPrint restarted after the clock was corrected
    q = make_queue(tmp_path, clocks)
    assert q.expire() == 0
    assert q.next().event_time == int(clocks.wall() - 30)


def test_backward_jump_gives_no_negative_age_and_keeps_order(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    clocks.advance(5)
    clocks.jump_wall(-3 * DAY)
    q.put(rec(2, clocks.wall()))
    stats = q.stats()
    assert stats["oldest_pending_age"] == 5
    assert q.expire() == 0
    first = q.next()
    assert first.record["id"] == "r1" and first.event_time == int(clocks.wall() - 5)
    q.ack(first)
    second = q.next()
    assert second.record["id"] == "r2" and second.event_time == int(clocks.wall())


def test_age_counts_only_observed_time_across_a_reboot(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW, mono=1000.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    clocks.advance(20 * DAY)
    q.observe()
    q.close()
    # Off for 40 days, then booted at 1970 (no fake-hwclock): neither may age the record.
    clocks.reboot("boot-2", wall=60.0)
    q = make_queue(tmp_path, clocks)
    assert q.expire() == 0
    clocks.advance(9 * DAY)
    assert q.expire() == 0
    clocks.advance(2 * DAY)  # 20 + 11 observed days
    assert q.expire() == 1
    assert q.stats()["by_event"]["dropped_age"] == {"print_done": 1}


def test_earlier_boot_with_a_confirmed_clock_is_dated_from_that_boot(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW - 40 * DAY, mono=1000.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))  # made on the stale clock
    clocks.advance(60)
    clocks.jump_wall(40 * DAY)  # NTP fixed it in the same boot...
    q.observe()
    q.close()
    clocks.reboot("boot-2", wall=TRUE_NOW + 5 * DAY)  # ...and it is sent after a reboot
    q = make_queue(tmp_path, clocks)
    entry = q.next()
    assert entry.time_certain
    assert entry.event_time == int(TRUE_NOW - 40 * DAY + 40 * DAY)  # the true time of its event


def test_earlier_boot_never_confirmed_keeps_its_recorded_time_marked_uncertain(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW - 40 * DAY, mono=1000.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    q.close()
    clocks.reboot("boot-2", wall=TRUE_NOW, synced=True)
    q = make_queue(tmp_path, clocks)
    entry = q.next()
    assert (entry.event_time, entry.time_certain) == (int(TRUE_NOW - 40 * DAY), False)
    [row] = q.page("pending")
    assert row["time_uncertain"] is True
    # The farm's collector is told too, in the record as it is sent.
    assert otlp.log_record(entry.outgoing)["attributes"][-1] == otlp.attribute(otlp.UNCERTAIN, True)


def test_kernel_sync_confirms_the_clock(tmp_path):
    clocks = FakeClocks(wall=TRUE_NOW, mono=1000.0)
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    clocks.kernel_synced = True
    q.observe()
    q.close()
    clocks.reboot("boot-2", wall=TRUE_NOW + DAY)
    entry = make_queue(tmp_path, clocks).next()
    assert (entry.event_time, entry.time_certain) == (int(TRUE_NOW), True)


def test_schema_1_rows_are_migrated_and_age_from_the_upgrade(tmp_path):
    # A file as the previous version left it: persist-queue's table only, one row in flight.
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute(
        "CREATE TABLE ack_queue_records (_id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB, timestamp FLOAT, status INTEGER)"
    )
    conn.execute("CREATE TABLE tq_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    stale = TRUE_NOW - 40 * DAY
    for n, status in ((1, 2), (2, 1), (3, 9)):
        conn.execute(
            "INSERT INTO ack_queue_records (data, timestamp, status) VALUES (?, ?, ?)",
            (f'{{"id": "r{n}", "event": "ping", "params": {{}}, "created": {stale}}}'.encode(), stale, status),
        )
    conn.execute("INSERT INTO tq_counters VALUES ('delivered', 7)")
    conn.commit()
    conn.close()
    clocks = FakeClocks(wall=TRUE_NOW)
    q = make_queue(tmp_path, clocks)
    stats = q.stats()
    assert (stats["pending"], stats["failed"], stats["delivered"]) == (2, 1, 7)
    assert q.expire() == 0  # 40 days by its wall clock, which may have been wrong
    entry = q.next()
    assert (entry.record["id"], entry.event_time, entry.time_certain) == ("r1", int(stale), False)
    q.ack(entry)
    clocks.advance(31 * DAY)
    assert q.expire() == 2
    q.close()
    assert make_queue(tmp_path, clocks).stats()["pending"] == 0  # opening again changes nothing


def test_in_flight_is_memory_only_so_a_crash_leaves_it_pending(tmp_path):
    clocks = FakeClocks()
    q = make_queue(tmp_path, clocks)
    q.put(rec(1, clocks.wall()))
    assert q.next() is not None and q.stats()["in_flight"] == 1
    del q  # killed while sending
    again = make_queue(tmp_path, clocks)
    assert (again.stats()["pending"], again.stats()["in_flight"]) == (1, 0)
    assert again.next().record["id"] == "r1"
