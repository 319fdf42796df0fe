"""Schema 2 to 3: a queue file written by the previous release (tests/data/queue-v2.db, made by
its own code, see tests/data/make_queue_v2.py) keeps every record, its state and its counts."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from octoprint_tracking_queued.store import DB_FILE, open_queue, schema

V2_FILE = Path(__file__).parent.parent / "data" / "queue-v2.db"


def upgraded(tmp_path):
    shutil.copy(V2_FILE, tmp_path / DB_FILE)
    return open_queue(str(tmp_path), max_records=6)


def test_records_states_and_counts_survive_the_upgrade(tmp_path):
    q = upgraded(tmp_path)
    try:
        stats = q.stats()
        assert (stats["pending"], stats["failed"], stats["delivered"], stats["dropped_cap"]) == (4, 1, 1, 2)
        assert stats["by_event"]["dropped_cap"] == {"webui_load": 1, "ping": 1}
        rows = [(r["id"], r["status"], r.get("attempts"), r.get("last_error")) for r in q.page("all", limit=10)]
        assert rows == [
            ("r1", "failed", 1, "HTTP 400"),
            ("r2", "pending", 1, "HTTP 503"),
            ("r3", "pending", 0, None),
            ("r4", "pending", 0, None),
            ("r5", "pending", 0, None),
        ]
        entry = q.next()
        assert (entry.record["id"], entry.record["attempts"]) == ("r2", 1)
        q.retry_later(entry, "timeout")
        assert q.next().record["attempts"] == 2  # the tries go on from where schema 2 left them
    finally:
        q.close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION == 3
    conn.close()


def test_the_upgrade_runs_once_and_dead_letters_can_be_requeued(tmp_path):
    upgraded(tmp_path).close()
    q = open_queue(str(tmp_path), max_records=6)
    try:
        assert (q.count("pending"), q.count("failed"), q.stats()["delivered"]) == (4, 1, 1)
        assert q.requeue_failed() == 1
        assert [r["id"] for r in q.page("pending", limit=10)] == ["r1", "r2", "r3", "r4", "r5"]
    finally:
        q.close()
