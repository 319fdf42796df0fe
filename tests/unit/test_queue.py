"""store/: the queue's FIFO order across reopen, in-flight rows after a crash, retries, dead letters, caps, bad files and kept counts."""

import os
import sqlite3

from octoprint_tracking_queued.store import DB_FILE, open_queue
from tests.unit.fakes import FakeClocks


def rec(n, created=1000.0):
    return {
        "id": f"r{n}",
        "event": "print_done",
        "params": {"n": n},
        "post": False,
        "created": created,
        "attempts": 0,
        "last_error": None,
    }


def drain(q):
    out = []
    entry = q.next()
    while entry is not None:
        out.append(entry.record["params"]["n"])
        q.ack(entry)
        entry = q.next()
    return out


def test_survives_close_and_reopen_in_order(tmp_path):
    q = open_queue(str(tmp_path))
    for n in range(5):
        assert q.put(rec(n))
    q.close()
    q = open_queue(str(tmp_path))
    assert q.stats()["pending"] == 5
    assert drain(q) == [0, 1, 2, 3, 4]
    assert q.stats()["delivered"] == 5
    q.close()
    # delivered rows are gone from the file, the counter stays
    q = open_queue(str(tmp_path))
    assert q.stats()["delivered"] == 5
    assert q.count("all") == 0


def test_in_flight_of_a_crashed_run_is_pending_again(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(1))
    q.put(rec(2))
    assert q.next().record["params"]["n"] == 1
    assert q.stats()["in_flight"] == 1
    del q  # no ack: the process "died"
    q = open_queue(str(tmp_path))
    assert q.stats()["in_flight"] == 0
    assert drain(q) == [1, 2]


def test_retry_keeps_place_and_counts_attempts(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(1))
    q.put(rec(2))
    entry = q.next()
    q.retry_later(entry, "HTTP 503")
    again = q.next()
    assert again.record["params"]["n"] == 1
    assert again.record["attempts"] == 1
    assert again.record["last_error"] == "HTTP 503"


def test_reject_dead_letters_and_requeue_brings_back(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(1))
    q.put(rec(2))
    q.reject(q.next(), "HTTP 404")
    stats = q.stats()
    assert (stats["pending"], stats["failed"]) == (1, 1)
    [failed] = q.page("failed")
    assert failed["last_error"] == "HTTP 404" and failed["status"] == "failed"
    assert q.requeue_failed() == 1
    assert drain(q) == [1, 2]


def test_max_records_drops_oldest_and_counts(tmp_path):
    q = open_queue(str(tmp_path), max_records=10)
    for n in range(25):
        q.put(rec(n))
    stats = q.stats()
    assert stats["pending"] == 10
    assert stats["dropped_cap"] == 15
    assert drain(q) == list(range(15, 25))


def test_max_age_drops_old_records(tmp_path):
    clocks = FakeClocks()
    q = open_queue(str(tmp_path), max_age_days=1, clocks=clocks)
    q.put(rec(1))
    q.put(rec(2))
    assert q.expire() == 0
    clocks.advance(2 * 86400)
    assert q.expire() == 2
    assert q.stats()["dropped_age"] == 2
    assert q.next() is None


def test_undecodable_row_is_dead_lettered_and_never_blocks(tmp_path):
    q = open_queue(str(tmp_path))
    q.put(rec(1))
    q.close()
    conn = sqlite3.connect(os.path.join(tmp_path, DB_FILE))
    with conn:
        conn.execute("INSERT INTO ack_queue_records (data, timestamp, status) VALUES (?, 0, 1)", (b"\xff\xfe garbage",))
        conn.execute("INSERT INTO ack_queue_records (data, timestamp, status) VALUES (?, 0, 1)", (b'{"event": 1}',))
    conn.close()
    q = open_queue(str(tmp_path))
    q.put(rec(2))
    assert drain(q) == [1, 2]
    stats = q.stats()
    assert stats["undecodable"] == 2
    assert stats["failed"] == 2
    assert [r["last_error"] for r in q.page("failed")] == ["cannot be decoded"] * 2


def test_page_and_clear_scopes(tmp_path):
    q = open_queue(str(tmp_path))
    for n in range(7):
        q.put(rec(n))
    q.reject(q.next(), "HTTP 400")
    assert [r["params"]["n"] for r in q.page("pending", offset=2, limit=3)] == [3, 4, 5]
    assert q.count("pending") == 6
    assert q.clear("failed") == 1
    assert q.clear("pending") == 6
    assert q.stats()["cleared"] == 7


def test_corrupt_file_is_moved_aside(tmp_path):
    (tmp_path / DB_FILE).write_bytes(b"this is not a database" * 100)
    q = open_queue(str(tmp_path))
    assert q.recovered and "kept as" in q.recovered
    assert q.put(rec(1))
    aside = [p for p in os.listdir(tmp_path) if ".unusable-" in p]
    assert aside and (tmp_path / aside[0]).read_bytes().startswith(b"this is not")


def test_foreign_schema_is_moved_aside(tmp_path):
    conn = sqlite3.connect(os.path.join(tmp_path, DB_FILE))
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    q = open_queue(str(tmp_path))
    assert "foreign tables" in q.recovered
    assert q.put(rec(1)) and drain(q) == [1]


def test_disk_full_is_counted_and_recovers(tmp_path, caplog):
    q = open_queue(str(tmp_path))
    q.put(rec(0))
    q.cap_file(0)
    big = rec(1)
    big["params"]["blob"] = "x" * 20000
    assert q.put(big) is False
    assert q.put(big) is False
    assert q.stats()["store_error"]
    assert sum("Cannot store" in r.message for r in caplog.records) == 1
    q.cap_file(None)
    assert q.put(rec(2))
    stats = q.stats()
    assert stats["store_error"] is None
    assert stats["store_failed"] == 2


def test_damage_deep_in_the_file_is_found_by_verify_salvaged_and_moved_aside(tmp_path):
    q = open_queue(str(tmp_path))
    q.put_many(dict(rec(n), params={"n": n, "pad": "x" * 500}) for n in range(400))
    q.close()
    path = tmp_path / DB_FILE
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle : middle + 4096] = b"\xa5" * 4096  # one page of table data destroyed
    path.write_bytes(bytes(data))
    q = open_queue(str(tmp_path))  # opening reads only the schema: fast, and it works
    assert q.recovered is None
    q.verify()  # the worker's first step
    assert q.recovered and "was damaged" in q.recovered and "kept as" in q.recovered
    stats = q.stats()
    assert 0 < stats["salvaged"] < 400 and stats["salvaged"] + stats["unreadable"] == 400
    assert q.count("all") == stats["salvaged"] and q.put(rec(1))
    sent = drain(q)
    assert sent[-1] == 1 and sent[:-1] == sorted(sent[:-1]) and len(sent) == stats["salvaged"] + 1
    assert any(".unusable-" in name for name in os.listdir(tmp_path))


def test_verify_corrects_counts_that_went_wrong(tmp_path, caplog):
    q = open_queue(str(tmp_path))
    q.put_many(rec(n) for n in range(5))
    q.ledger.removed -= 45  # as if a bug had miscounted: 50 rows
    q.verify()
    assert q.stats()["pending"] == 5
    assert "corrected" in caplog.text
