"""Salvage (store/salvage.py): a 1,000-record queue file with N garbled pages gives back every
row that can still be read from it, in its place, with its id, times and destinations; all of
them are then delivered, and the damaged file is kept byte for byte.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3

import pytest

from octoprint_tracking_queued.catalogue import traits
from octoprint_tracking_queued.clock import Clocks
from octoprint_tracking_queued.delivery import Delivered
from octoprint_tracking_queued.store import DB_FILE, open_queue, schema
from octoprint_tracking_queued.store.boots import Boots
from octoprint_tracking_queued.store.file import QueueDamaged
from octoprint_tracking_queued.store.opener import open_file
from octoprint_tracking_queued.worker import Worker
from tests.harness.damage import garble, readable, record
from tests.unit.fakes import FakeClocks

QUEUE_LOGGER = "octoprint.plugins.tracking_queued.queue"
RECORDS = 1000
ROW = "SELECT _id, data, timestamp, event, rank, boot, mono, observed, need, dead FROM ack_queue_records"


def rows(path: str) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {row[0]: row for row in conn.execute(ROW)}
    finally:
        conn.close()


def times(q) -> dict:
    return {r["rowid"]: (r["event_time"], r["time_uncertain"]) for r in q.iter_records("all")}


def damaged_queue(folder: str, pages: int, seed: int, clocks: FakeClocks):
    """1,000 pending records (one a dead letter) made in an earlier boot, then a reboot with a
    stale wall clock, N pages garbled; returns the rows and their event times as they were,
    and the ids still readable."""
    q = open_queue(folder, max_records=RECORDS * 2, clocks=clocks)
    q.put_many(record(n) for n in range(RECORDS))
    q.reject(q.next(), "HTTP 400")  # id 1: a dead letter stays one
    q.ack(q.next())  # id 2: delivered, counted since install, gone
    clocks.advance(600)
    q.close()
    clocks.reboot("boot-2", wall=1_600_000_000.0)  # fake-hwclock: far behind
    q = open_queue(folder, max_records=RECORDS * 2, clocks=clocks)
    when = times(q)
    q.close()
    path = os.path.join(folder, DB_FILE)
    before = rows(path)
    garble(path, pages, seed)
    return before, when, readable(path, RECORDS)


@pytest.mark.parametrize("pages, seed", [(1, 1), (3, 1), (3, 2), (3, 3), (8, 4)])
def test_every_readable_record_is_salvaged_in_place_and_delivered(tmp_path, caplog, pages, seed):
    caplog.set_level(logging.DEBUG, logger=QUEUE_LOGGER)
    clocks = FakeClocks()
    before, when, can_read = damaged_queue(str(tmp_path), pages, seed, clocks)
    assert 0 < len(can_read) < RECORDS - 1

    q = open_queue(str(tmp_path), max_records=RECORDS * 2, clocks=clocks)
    q.verify()  # the worker's first step finds the damage
    stats = q.stats()
    assert stats["salvaged"] == len(can_read)
    assert stats["unreadable"] == RECORDS - 1 - len(can_read)  # 999 were in the file
    assert stats["delivered"] == 1  # the counts since install go on
    kept = [p for p in os.listdir(tmp_path) if ".unusable-" in p]
    # Kept as it was when it was moved (this run had written its boot into it): the salvage
    # reads a scratch copy, so the kept file still gives every readable row.
    assert len(kept) == 1 and readable(str(tmp_path / kept[0]), RECORDS) == can_read
    # One sentence, no path, no report; the report is in the log at DEBUG only.
    named = re.fullmatch(
        rf"queue\.db was damaged(?: \((\d+) pages?\))?; {len(can_read)} records saved, "
        rf"{RECORDS - 1 - len(can_read)} unreadable; the damaged file is kept as {re.escape(kept[0])}\.",
        stats["recovered"],
    )
    assert named
    # The pages the integrity check names (its interior pages may be named too), unless the
    # check itself breaks off on the damage.
    assert named.group(1) is None or pages <= int(named.group(1)) <= pages + 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [stats["recovered"]]
    assert any(
        "integrity check of the replaced queue.db" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.DEBUG
    )

    # Ids, order, times and destinations as they were: the rows are the same rows.
    after = rows(str(tmp_path / DB_FILE))
    assert sorted(after) == can_read
    assert all(after[rowid] == before[rowid] for rowid in can_read)
    assert times(q) == {rowid: when[rowid] for rowid in can_read}  # the earlier boot's times hold

    # Every salvaged record is delivered, oldest first; the dead letter stays one.
    sent = []

    def send(rec):
        sent.append(rec["params"]["n"])
        return Delivered(204)

    clock = [0.0]
    worker = Worker(q, send, lambda: None, clock=lambda: clock[0], rand=lambda: 0.0)
    while (worker.run_once() or 0) < 300:
        pass
    expected = [before[rowid][0] - 1 for rowid in can_read if rowid != 1]
    assert sent == expected
    assert q.stats()["failed"] == (1 in can_read)
    q.close()
    # Reopened: the new file is sound and the counts stayed.
    q = open_queue(str(tmp_path))
    q.verify()
    assert q.recovered is None and q.stats()["salvaged"] == len(can_read)
    q.close()


def test_a_file_that_is_not_a_database_salvages_nothing(tmp_path):
    (tmp_path / DB_FILE).write_bytes(os.urandom(8192))
    q = open_queue(str(tmp_path))
    assert q.recovered.startswith("queue.db could not be used (")
    assert q.recovered.endswith("; a new queue was started and the file is kept as " + q.recovered.rsplit(" ", 1)[1])
    assert q.stats()["salvaged"] == 0 and q.stats()["unreadable"] == 0
    q.close()


def test_a_damaged_file_of_schema_2_is_salvaged_as_schema_3(tmp_path):
    """A v2 file found damaged while it is migrated at start: its rows come over with their
    one destination, the dead letter dead."""
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "data", "queue-v2.db"), tmp_path / DB_FILE)
    conn = sqlite3.connect(tmp_path / DB_FILE)
    old = conn.execute("SELECT _id, status FROM ack_queue_records ORDER BY _id").fetchall()
    conn.close()
    qf, recovered = open_file(str(tmp_path), Boots(Clocks()), traits, QueueDamaged("test", "page 9: broken"))
    got = qf.getter.execute("SELECT _id, need, dead, status FROM ack_queue_records ORDER BY _id").fetchall()
    qf.close()
    assert [row[0] for row in got] == [row[0] for row in old]
    assert {(row[1], row[2]) for row in got} <= {(1, 0), (1, 1)}
    assert [row[2] for row in got] == [int(status == schema.V2_FAILED) for _, status in old]
    assert f"{len(old)} records saved, 0 unreadable" in recovered
