"""The queue's file: persist-queue's insides, our connections and their pragmas, the check of a
file found on disk, moving a bad file aside and the in-memory stand-in.

The only module that touches persist-queue's privates (`_putter`, `_getter`, `_count`);
tests/unit/test_persistqueue_contract.py pins them.

Durability budget: one fsync per record (issue 20 pins it). The insert commits on `putter`
with `synchronous=FULL`: one fsync, before the event handler returns. The worker's writes commit
on `getter` with `synchronous=NORMAL`: no fsync of their own. An acknowledgement that is only in
the page cache is lost with the power, and its record goes out again (`event_id` tells the
duplicate apart), never lost. So that a power cut in a long drain cannot re-send a whole backlog,
the worker fsyncs the WAL every `SYNC_EVERY` settled records (`sync_wal`): at most that many
duplicates per cut, for 1/SYNC_EVERY of an fsync per record. Nothing is synced when the worker
runs out of work: the next insert's FULL commit makes every earlier acknowledgement durable too
(one WAL), and a lone event must not cost a second fsync.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from typing import Iterator, Optional
from urllib.parse import quote

import persistqueue
import persistqueue.serializers.json

from . import schema

DB_FILE = "queue.db"
SUFFIXES = ("", "-wal", "-shm")
# SQLite checkpoints the WAL at 1,000 pages (4 KiB each, plus 24 bytes per frame): ~4 MB.
WAL_LIMIT = 5 * 1024 * 1024
# Outside a clear: zero only what costs no extra write (see `connect`).
SECURE_DELETE = "FAST"
PUTTER_SYNC, GETTER_SYNC = "FULL", "NORMAL"
# Settled records between two fsyncs of the WAL by the worker (see above).
SYNC_EVERY = 32
# The integrity check stops after this many findings (SQLite's default, 100, names too few pages).
CHECK_LINES = 10000


class QueueUnusable(Exception):
    """The database file cannot serve as our queue (corrupt, foreign or read-only)."""


class QueueDamaged(QueueUnusable):
    """SQLite finds the file damaged: its rows are salvaged before it is moved aside."""

    def __init__(self, message: str, report: str = "") -> None:
        super().__init__(message)
        self.report = report  # the integrity check's full text: for the log at DEBUG only


def pages_named(report: str) -> int:
    """The pages an integrity check's report names (0: none)."""
    return len(set(re.findall(r"\bpage (\d+)", report, flags=re.IGNORECASE)))


class QueueMissing(Exception):
    """There is no queue database yet: nothing was ever tracked in this basedir."""


class _Storage(persistqueue.SQLiteAckQueue):
    """persist-queue's queue without its count of the table at open: we keep our own counts,
    and counting 100,000 rows would read the whole file while OctoPrint starts."""

    def _count(self) -> int:
        return 0


class QueueFile:
    """The two connections of an open queue file (one, read-only, for a reader) and its lock."""

    def __init__(self, folder: str, putter: sqlite3.Connection, getter: sqlite3.Connection, owner=None) -> None:
        self.folder = folder
        self.putter = putter  # the producer's durable insert
        self.getter = getter  # the worker's writes and every read
        self.lock = threading.RLock()
        self.memory_only = folder == ":memory:"
        self._owner = owner  # persist-queue's object, closed with us

    @property
    def path(self) -> str:
        return os.path.join(self.folder, DB_FILE)

    @classmethod
    def connect(cls, folder: str) -> QueueFile:
        """Opens (or creates) the file through persist-queue, which creates its table."""
        q = _Storage(
            folder,
            name=schema.QUEUE_NAME,
            db_file_name=DB_FILE,
            multithreading=True,
            timeout=5.0,
            serializer=persistqueue.serializers.json,
            # Nothing is marked in flight on disk; the migration resumes old rows.
            auto_resume=False,
        )
        for conn, sync in ((q._putter, PUTTER_SYNC), (q._getter, GETTER_SYNC)):
            # The WAL is cut back to this after a checkpoint, so it never grows on the card;
            # no lower than what it reaches between checkpoints, or every checkpoint cuts it
            # and the next commits grow the file again, which makes their fsync dearer.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            conn.execute(f"PRAGMA synchronous = {sync}")
            # Debian's SQLite zeroes every deleted row by default: an extra write of each
            # delivered record's pages. FAST zeroes only what costs no extra I/O; an
            # opt-out's clear overwrites everything it deletes (`erasing`).
            conn.execute(f"PRAGMA secure_delete = {SECURE_DELETE}")
        return cls(folder, q._putter, q._getter, q)

    @classmethod
    def read_only(cls, folder: str) -> QueueFile:
        """A look at a queue another process owns: one read-only connection, every write fails."""
        path = os.path.join(folder, DB_FILE)
        if not os.path.exists(path):
            raise QueueMissing(path)
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        if conn.execute("PRAGMA user_version").fetchone()[0] < schema.VERSION:
            conn.close()
            raise QueueUnusable("it was written by an older version of the plugin; start OctoPrint once to upgrade it")
        return cls(folder, conn, conn)

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()
        else:
            self.getter.close()

    @contextlib.contextmanager
    def erasing(self) -> Iterator[sqlite3.Connection]:
        """The worker's connection while it deletes for good: the bytes of what it deletes are
        overwritten in the file, and the WAL is emptied after, so nothing is left on the card
        (a plain DELETE only marks pages free)."""
        conn = self.getter
        conn.execute("PRAGMA secure_delete = ON")
        try:
            yield conn
        finally:
            conn.execute(f"PRAGMA secure_delete = {SECURE_DELETE}")
        if not self.memory_only:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def sync_wal(self) -> None:
        """Makes every commit so far durable: one fdatasync of the WAL (SQLite's own fd is not
        ours, but the data is the file's). Never raises: a failed sync is a later duplicate."""
        if self.memory_only:
            return
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
        except OSError:
            return  # no WAL: checkpointed and synced by SQLite
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def disk_bytes(self) -> int:
        if self.memory_only:
            return 0
        return sum(os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s))

    def cap(self, grow: Optional[int] = 0) -> None:
        """Lets new records grow the file by `grow` pages at most (None: no cap), as a full disk
        would; for tests and benchmarks."""
        with self.lock:
            pages = self.putter.execute("PRAGMA page_count").fetchone()[0]
            self.putter.execute(f"PRAGMA max_page_count = {1073741823 if grow is None else pages + int(grow)}")


def check_schema(conn: sqlite3.Connection, require_table: bool = True, integrity: bool = True) -> None:
    """Raises QueueUnusable unless the file is a queue of ours (any version) and, with
    `integrity`, SQLite finds it sound."""
    tables = schema.tables(conn)
    foreign = tables - schema.OWN_TABLES
    if foreign:
        raise QueueUnusable(f"it holds foreign tables ({', '.join(sorted(foreign))})")
    if require_table or schema.TABLE in tables:
        columns = schema.columns(conn)
        if columns not in schema.known_columns():
            raise QueueUnusable(f"its queue table has the columns {columns}")
    if not integrity:
        return
    report = "\n".join(row[0] for row in conn.execute(f"PRAGMA quick_check({CHECK_LINES})"))
    if report != "ok":
        raise QueueDamaged("the integrity check failed", report)


def inspect(path: str, integrity: bool = False) -> None:
    """Checks an existing file read-only, before persist-queue creates its table in it: a file
    that is not ours must be moved aside as it was, not with our table added.

    The integrity check reads the whole file, so it runs in the worker (`Writer.verify`), not
    while OctoPrint starts."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise QueueUnusable(str(error)) from error
    try:
        check_schema(conn, require_table=False, integrity=integrity)
    except sqlite3.DatabaseError as error:
        raise classify(error) from error
    finally:
        conn.close()


def classify(error: sqlite3.DatabaseError) -> QueueUnusable:
    """SQLite's error on opening a file: damage (salvage what is left) or not a queue at all."""
    text = str(error)
    if "malformed" in text or "corrupt" in text:
        return QueueDamaged(text)
    return QueueUnusable(text)


def move_aside(folder: str) -> str:
    """Renames a bad file (and its WAL and shm) out of the way, never over an earlier one."""
    path = os.path.join(folder, DB_FILE)
    stem = f"{path}.unusable-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = stem, 1
    while any(os.path.exists(target + s) for s in SUFFIXES):
        target, n = f"{stem}-{n}", n + 1
    for suffix in SUFFIXES:
        if os.path.exists(path + suffix):
            os.replace(path + suffix, target + suffix)
    return target


def decode(data: object) -> Optional[dict]:
    """A stored row's record, or None when it is not one of ours."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        record = json.loads(data)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("event"), str)
        or not isinstance(record.get("params"), dict)
    ):
        return None
    return record
