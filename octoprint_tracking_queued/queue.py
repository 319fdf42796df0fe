"""The durable FIFO of tracking records: persist-queue's SQLiteAckQueue in the plugin's data folder.

Row states (persist-queue's): ready/inited = pending, unack = in flight, ack_failed = failed
(dead letter). Delivered rows are deleted at once: persist-queue keeps acked rows forever by
default, and tens of thousands of them slow down every `get`.
Counters that must outlive a restart (delivered, dropped, ...) live in a table of the same file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional
from urllib.parse import quote

import persistqueue
import persistqueue.serializers.json
from persistqueue.sqlackqueue import AckStatus

DB_FILE = "queue.db"
QUEUE_NAME = "records"
_TABLE = f"ack_queue_{QUEUE_NAME}"
_EXPECTED_COLUMNS = ["_id", "data", "timestamp", "status"]
_OWN_TABLES = {_TABLE, "tq_counters", "sqlite_sequence"}
PENDING, IN_FLIGHT, FAILED = "pending", "in_flight", "failed"
_STATUS_NAMES = {
    int(AckStatus.inited): PENDING,
    int(AckStatus.ready): PENDING,
    int(AckStatus.unack): IN_FLIGHT,
    int(AckStatus.ack_failed): FAILED,
}
SCOPES = {
    "pending": f"status < {AckStatus.ack_failed}",
    "failed": f"status = {AckStatus.ack_failed}",
    "all": "1",
}
COUNTERS = ("delivered", "dropped_cap", "dropped_age", "undecodable", "cleared", "store_failed")

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")


@dataclass
class Entry:
    """A record taken from the queue for sending."""

    rowid: int
    record: dict


class QueueUnusable(Exception):
    """The database file cannot serve as our queue (corrupt, foreign or read-only)."""


class QueueMissing(Exception):
    """There is no queue database yet: nothing was ever tracked in this basedir."""


class _ReadOnlyConnections:
    """Stands in for the persist-queue object of a reader: one read-only connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._getter = self._putter = conn
        self.tran_lock = threading.Lock()

    def close(self) -> None:
        self._getter.close()


def _check_schema(conn: sqlite3.Connection, require_table: bool = True, integrity: bool = True) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    foreign = tables - _OWN_TABLES
    if foreign:
        raise QueueUnusable(f"it holds foreign tables ({', '.join(sorted(foreign))})")
    if require_table or _TABLE in tables:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info(`{_TABLE}`)")]
        if columns != _EXPECTED_COLUMNS:
            raise QueueUnusable(f"its queue table has the columns {columns}")
    if not integrity:
        return
    status = conn.execute("PRAGMA quick_check").fetchone()[0]
    if status != "ok":
        raise QueueUnusable(f"the integrity check says {status!r}")


def _inspect(path: str) -> None:
    """Checks an existing file read-only, before persist-queue creates its table in it:
    a file that is not ours must be moved aside as it was, not with our table added."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise QueueUnusable(str(error)) from error
    try:
        _check_schema(conn, require_table=False)
    except sqlite3.DatabaseError as error:
        raise QueueUnusable(str(error)) from error
    finally:
        conn.close()


def _check_usable(q: persistqueue.SQLiteAckQueue) -> None:
    conn = q._putter
    try:
        # _inspect read the whole file once already; one integrity pass per start is enough.
        _check_schema(conn, integrity=False)
        with conn:  # also proves the file is writable
            conn.execute("CREATE TABLE IF NOT EXISTS tq_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    except sqlite3.DatabaseError as error:
        raise QueueUnusable(str(error)) from error


class TrackingQueue:
    """Durable FIFO with caps, counters and a dead letter list. Safe to use from several threads."""

    def __init__(
        self,
        folder: str,
        max_records: int = 10000,
        max_age_days: int = 30,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
    ) -> None:
        """`read_only`: look at a queue another process owns (the command line beside the
        server): no resuming of its in-flight rows, no recovery, every write fails."""
        self.folder = folder
        self.max_records = max_records
        self.max_age_days = max_age_days
        self._clock = clock
        self._lock = threading.RLock()
        self.recovered: Optional[str] = None  # why a bad file was moved aside, for the status
        self.store_error: Optional[str] = None  # set while records cannot be stored
        self._unsaved_failures = 0  # store failures not yet counted on disk
        self.memory_only = False  # no usable file: records live in memory until restart
        self._q = self._open_read_only() if read_only else self._open()
        self._rows = self._count("1")

    # ~~ opening and recovery

    def _connect(self, folder: Optional[str] = None) -> persistqueue.SQLiteAckQueue:
        q = persistqueue.SQLiteAckQueue(
            folder or self.folder,
            name=QUEUE_NAME,
            db_file_name=DB_FILE,
            multithreading=True,
            timeout=5.0,
            serializer=persistqueue.serializers.json,
            auto_resume=True,  # in-flight rows of a crashed run are pending again
        )
        for conn in {id(q._putter): q._putter, id(q._getter): q._getter}.values():
            # Truncate the WAL after checkpoints so it never grows on the card.
            conn.execute("PRAGMA journal_size_limit = 1048576")
        return q

    def _open(self) -> persistqueue.SQLiteAckQueue:
        q = None
        try:
            _inspect(os.path.join(self.folder, DB_FILE))
            q = self._connect()
            _check_usable(q)
            return q
        except (sqlite3.DatabaseError, QueueUnusable) as error:
            if q is not None:
                q.close()
            problem = error
        try:
            moved = self._move_aside()
            q = self._connect()
            _check_usable(q)
            self.recovered = (
                f"The queue database was unusable ({problem}); it was moved to {moved} "
                f"and a new, empty queue was started."
            )
        except (OSError, sqlite3.DatabaseError, QueueUnusable) as error:
            # Nothing on disk can be used (read-only folder, ...): keep tracking in memory
            # rather than failing to load; the status tells the user to fix the folder.
            self.memory_only = True
            q = self._connect(":memory:")
            _check_usable(q)
            self.recovered = (
                f"The queue database was unusable ({problem}) and could not be moved aside "
                f"or replaced ({error}); records are kept in memory until OctoPrint restarts."
            )
        logger.warning(self.recovered)
        return q

    def _open_read_only(self) -> _ReadOnlyConnections:
        path = os.path.join(self.folder, DB_FILE)
        if not os.path.exists(path):
            raise QueueMissing(path)
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        return _ReadOnlyConnections(conn)

    def _move_aside(self) -> str:
        path = os.path.join(self.folder, DB_FILE)
        stem = f"{path}.unusable-{time.strftime('%Y%m%d-%H%M%S')}"
        target, n = stem, 1
        while any(os.path.exists(target + s) for s in ("", "-wal", "-shm")):
            target, n = f"{stem}-{n}", n + 1  # never replace an earlier bad file
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, target + suffix)
        return target

    def close(self) -> None:
        with self._lock:
            self._q.close()

    # ~~ low level

    def _write(self, *statements: tuple[str, tuple], counter: Optional[str] = None) -> int:
        """Runs statements in one transaction; returns the rows the first changed.

        With `counter`, that counter grows by the same number in the same transaction.
        """
        with self._lock, self._q.tran_lock:
            conn = self._q._putter
            with conn:
                changed = conn.execute(*statements[0]).rowcount
                for statement in statements[1:]:
                    conn.execute(*statement)
                if counter and changed > 0:
                    conn.execute(
                        "INSERT INTO tq_counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (counter, changed),
                    )
            return changed

    def _count(self, where: str) -> int:
        with self._lock:
            return self._q._getter.execute(f"SELECT COUNT(*) FROM `{_TABLE}` WHERE {where}").fetchone()[0]

    # ~~ producer side (OctoPrint's event thread: keep it to one commit)

    def put(self, record: dict) -> bool:
        """Stores a record durably. False when it could not be stored (counted and logged once)."""
        with self._lock:
            try:
                self._q.put(record)
            except sqlite3.Error as error:
                self._unsaved_failures += 1
                if self.store_error is None:
                    logger.error(
                        "Cannot store tracking records (%s); counting them as lost until storing works again",
                        error,
                    )
                self.store_error = str(error)
                return False
            self._rows += 1
            if self.store_error is not None:
                logger.info("Storing tracking records works again; %d could not be stored", self._unsaved_failures)
                self.store_error = None
            if self._unsaved_failures:
                self._save_store_failures()
            if self._rows > self.max_records:
                self._drop_oldest(self._rows - self.max_records)
            return True

    def _save_store_failures(self) -> None:
        try:
            self._write(
                ("INSERT OR IGNORE INTO tq_counters (name, value) VALUES ('store_failed', 0)", ()),
                ("UPDATE tq_counters SET value = value + ? WHERE name = 'store_failed'", (self._unsaved_failures,)),
            )
            self._unsaved_failures = 0
        except sqlite3.Error:
            pass  # stays in memory and is tried again on the next put

    def _drop_oldest(self, count: int) -> None:
        dropped = self._write(
            (
                f"DELETE FROM `{_TABLE}` WHERE _id IN (SELECT _id FROM `{_TABLE}` "
                f"WHERE status != {AckStatus.unack} ORDER BY _id LIMIT ?)",
                (count,),
            ),
            counter="dropped_cap",
        )
        self._rows -= dropped

    def expire(self) -> int:
        """Drops records older than max_age_days; returns how many."""
        cutoff = self._clock() - self.max_age_days * 86400
        with self._lock:
            dropped = self._write(
                (f"DELETE FROM `{_TABLE}` WHERE timestamp < ? AND status != {AckStatus.unack}", (cutoff,)),
                counter="dropped_age",
            )
            self._rows -= dropped
            return dropped

    # ~~ consumer side (the worker)

    def next(self) -> Optional[Entry]:
        """The oldest pending record, now in flight; rows that cannot be decoded are dead-lettered."""
        with self._lock:
            while True:
                row = self._q._getter.execute(
                    f"SELECT _id, data FROM `{_TABLE}` WHERE status < {AckStatus.unack} ORDER BY _id LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                rowid, data = row
                record = decode(data)
                if record is None:
                    logger.warning("Dead-lettering queue row %d: it cannot be decoded", rowid)
                    self._write(
                        (f"UPDATE `{_TABLE}` SET status = {AckStatus.ack_failed} WHERE _id = ?", (rowid,)),
                        counter="undecodable",
                    )
                    continue
                self._write((f"UPDATE `{_TABLE}` SET status = {AckStatus.unack} WHERE _id = ?", (rowid,)))
                return Entry(rowid, record)

    def ack(self, entry: Entry) -> None:
        """Delivered: the row goes, the delivered counter grows, in one transaction."""
        with self._lock:
            self._rows -= self._write((f"DELETE FROM `{_TABLE}` WHERE _id = ?", (entry.rowid,)), counter="delivered")

    def _set(self, entry: Entry, status: str, reason: str) -> None:
        entry.record["attempts"] = int(entry.record.get("attempts") or 0) + 1
        entry.record["last_error"] = reason
        entry.record["last_attempt"] = self._clock()
        self._write(
            (
                f"UPDATE `{_TABLE}` SET data = ?, status = ? WHERE _id = ?",
                (json.dumps(entry.record).encode("utf-8"), int(status), entry.rowid),
            )
        )

    def retry_later(self, entry: Entry, reason: str) -> None:
        """Not delivered this time: back to pending at its place at the head of the queue."""
        self._set(entry, AckStatus.ready, reason)

    def reject(self, entry: Entry, reason: str) -> None:
        """The server refused it for good: kept as failed (dead letter) with the reason."""
        self._set(entry, AckStatus.ack_failed, reason)

    # ~~ management

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = {PENDING: 0, IN_FLIGHT: 0, FAILED: 0}
            oldest = None
            for status, count, first in self._q._getter.execute(
                f"SELECT status, COUNT(*), MIN(timestamp) FROM `{_TABLE}` GROUP BY status"
            ):
                name = _STATUS_NAMES.get(int(status))
                if name:
                    counts[name] += count
                if name in (PENDING, IN_FLIGHT) and first is not None:
                    oldest = first if oldest is None else min(oldest, first)
            counters = dict.fromkeys(COUNTERS, 0)
            counters.update(self._q._getter.execute("SELECT name, value FROM tq_counters"))
            counters["store_failed"] += self._unsaved_failures
            self._rows = sum(counts.values())
            return {
                **counts,
                **counters,
                "oldest_pending": oldest,
                "store_error": self.store_error,
                "recovered": self.recovered,
                "max_records": self.max_records,
                "max_age_days": self.max_age_days,
                "disk_bytes": self.disk_bytes(),
            }

    def disk_bytes(self) -> int:
        if self.memory_only:
            return 0
        path = os.path.join(self.folder, DB_FILE)
        return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))

    def page(self, scope: str = "pending", offset: int = 0, limit: int = 50) -> list[dict]:
        """Records of a scope, oldest first, each with its `status`."""
        with self._lock:
            rows = self._q._getter.execute(
                f"SELECT _id, data, status FROM `{_TABLE}` WHERE {SCOPES[scope]} ORDER BY _id LIMIT ? OFFSET ?",
                (int(limit), int(offset)),
            ).fetchall()
        return [_describe(rowid, data, status) for rowid, data, status in rows]

    def count(self, scope: str = "pending") -> int:
        return self._count(SCOPES[scope])

    def iter_records(self, scope: str = "all", batch: int = 500) -> Iterator[dict]:
        offset = 0
        while True:
            rows = self.page(scope, offset, batch)
            yield from rows
            if len(rows) < batch:
                return
            offset += batch

    def clear(self, scope: str) -> int:
        """Removes the records of a scope; returns how many."""
        with self._lock:
            removed = self._write((f"DELETE FROM `{_TABLE}` WHERE {SCOPES[scope]}", ()), counter="cleared")
            self._rows -= removed
            return removed

    def requeue_failed(self) -> int:
        """Failed records become pending again (they keep their place by age)."""
        return self._write(
            (
                f"UPDATE `{_TABLE}` SET status = {AckStatus.ready} WHERE status = {AckStatus.ack_failed}",
                (),
            )
        )


def decode(data: Any) -> Optional[dict]:
    """A stored row's record, or None when it is not one of ours."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        record = json.loads(data)
    except (ValueError, TypeError):
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("event"), str)
        or not isinstance(record.get("params"), dict)
    ):
        return None
    return record


def _describe(rowid: int, data: Any, status: Any) -> dict:
    record = decode(data) or {"event": None, "params": {}, "last_error": "cannot be decoded"}
    return {**record, "rowid": rowid, "status": _STATUS_NAMES.get(int(status), "unknown")}
