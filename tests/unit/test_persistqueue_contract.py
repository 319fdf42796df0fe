"""What store/file.py relies on inside persist-queue. An upgrade that changes any of it fails here,
in CI, before it can reach a user's queue file (pyproject.toml allows only tested versions)."""

from __future__ import annotations

import sqlite3
import threading

import persistqueue
import persistqueue.serializers.json
from persistqueue.sqlackqueue import AckStatus

from octoprint_tracking_queued.store import schema
from octoprint_tracking_queued.store.file import DB_FILE


def test_table_name_and_columns(tmp_path):
    q = persistqueue.SQLiteAckQueue(
        str(tmp_path), name=schema.QUEUE_NAME, db_file_name=DB_FILE, multithreading=True, auto_resume=False
    )
    try:
        tables = {row[0] for row in q._getter.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert schema.TABLE in tables
        columns = [row[1] for row in q._getter.execute(f"PRAGMA table_info(`{schema.TABLE}`)")]
        assert columns == schema.PQ_COLUMNS
        # AUTOINCREMENT: rowids are never reused, so the order of rows is the order of puts.
        sql = q._getter.execute("SELECT sql FROM sqlite_master WHERE name = ?", (schema.TABLE,)).fetchone()[0]
        assert "AUTOINCREMENT" in sql.upper()
    finally:
        q.close()


def test_two_connections_in_wal_mode(tmp_path):
    q = persistqueue.SQLiteAckQueue(
        str(tmp_path), name=schema.QUEUE_NAME, db_file_name=DB_FILE, multithreading=True, auto_resume=False
    )
    try:
        assert isinstance(q._putter, sqlite3.Connection) and isinstance(q._getter, sqlite3.Connection)
        assert q._putter is not q._getter  # one for the durable insert, one for the worker
        assert q._putter.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert isinstance(q.tran_lock, type(threading.Lock()))
    finally:
        q.close()


def test_statuses():
    assert (int(AckStatus.inited), int(AckStatus.ready), int(AckStatus.unack), int(AckStatus.ack_failed)) == (
        0,
        1,
        2,
        9,
    )


def test_json_serializer_is_there():
    # Never pickle: a tampered queue file must not run code.
    assert hasattr(persistqueue.serializers.json, "dumps")
