"""The durable FIFO of tracking records: persist-queue's SQLiteAckQueue in the plugin's data folder.

This is the one module that knows persist-queue's insides. persist-queue creates and opens
the file (its table `ack_queue_records`: _id, data, timestamp, status, and its two
connections); the queue adds its own columns, tables and indexes (schema version 2 in
`PRAGMA user_version`) and writes its own statements, because an insert must supersede
heartbeats and evict by value in the same transaction.

Durability budget: one fsync per record. The insert commits on a connection with
`synchronous=FULL`; everything the worker writes afterwards (acknowledge, retry, reject)
commits on a `synchronous=NORMAL` connection, which survives a crash of the process (WAL)
and at worst, after a power cut, sends a record a second time (`event_id` tells the
duplicate apart), never loses one. A record in flight is marked in memory only: after a
crash every row that is still there is pending again.

Row states: pending (persist-queue's inited/ready), failed (ack_failed, the dead letter).
Delivered rows are deleted. Counters that outlive a restart live in `tq_counters`, and are
kept in memory beside it, so the status never counts the table.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import quote

import persistqueue
import persistqueue.serializers.json
from persistqueue.sqlackqueue import AckStatus

from .clock import STEP, Boot, Clocks, event_time

DB_FILE = "queue.db"
QUEUE_NAME = "records"
SCHEMA_VERSION = 2
_TABLE = f"ack_queue_{QUEUE_NAME}"
# SQLite checkpoints the WAL at 1,000 pages (4 KiB each, plus 24 bytes per frame): ~4 MB.
WAL_LIMIT = 5 * 1024 * 1024
# Outside a clear: zero only what costs no extra write (see _connect).
SECURE_DELETE = "FAST"
# persist-queue's columns, then ours (added by the migration to version 2).
PQ_COLUMNS = ["_id", "data", "timestamp", "status"]
OWN_COLUMNS = {
    "event": "TEXT",  # tracking event name, for counting drops per kind
    "coalesce": "TEXT",  # records with the same key supersede each other; NULL: never
    "rank": "INTEGER NOT NULL DEFAULT 2",  # eviction order at the cap: lowest first
    "boot": "INTEGER",  # tq_boots.key of the boot it was made in
    "mono": "REAL",  # monotonic clock at creation
    "observed": "REAL",  # observed clock at creation (clock.py): its age for max_age_days
}
_OWN_TABLES = {_TABLE, "tq_counters", "tq_boots", "sqlite_sequence"}
_READY, _FAILED = int(AckStatus.ready), int(AckStatus.ack_failed)
PENDING, IN_FLIGHT, FAILED = "pending", "in_flight", "failed"
SCOPES = {"pending": f"status != {_FAILED}", "failed": f"status = {_FAILED}", "all": "1"}
COUNTERS = ("delivered", "dropped_cap", "dropped_age", "superseded", "undecodable", "cleared", "store_failed")
# Counted per tracking event as well ("dropped_cap.webui_load").
PER_EVENT = ("dropped_cap", "dropped_age", "superseded")

# What a record is worth when the queue is full: a page load or a heartbeat says little
# that the next one will not say again; startup, errors, throttling and prints happen once.
RANK_WEBUI, RANK_HEARTBEAT, RANK_EVENT = 0, 1, 2
HEARTBEATS = ("ping", "pong")
WEBUI_LOAD = "webui_load"

_MIGRATION = [
    *(f"ALTER TABLE `{_TABLE}` ADD COLUMN {name} {kind}" for name, kind in OWN_COLUMNS.items()),
]
_CREATE = [
    "CREATE TABLE IF NOT EXISTS tq_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tq_boots (key INTEGER PRIMARY KEY, boot_id TEXT UNIQUE NOT NULL, "
    "t0 REAL NOT NULL, m0 REAL NOT NULL, last_mono REAL NOT NULL, offset REAL NOT NULL, "
    "confirmed INTEGER NOT NULL)",
    # Partial indexes: an ordinary event's insert touches none of them.
    f"CREATE INDEX IF NOT EXISTS tq_failed ON `{_TABLE}` (_id) WHERE status = {_FAILED}",
    f"CREATE INDEX IF NOT EXISTS tq_low_value ON `{_TABLE}` (rank, _id) WHERE rank < {RANK_EVENT}",
    f"CREATE INDEX IF NOT EXISTS tq_coalesce ON `{_TABLE}` (coalesce) WHERE coalesce IS NOT NULL",
]

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")


def traits(record: dict) -> tuple[Optional[str], int]:
    """(coalesce key, eviction rank) of a record."""
    event = record.get("event")
    if event in HEARTBEATS:
        return event, RANK_HEARTBEAT
    if event == WEBUI_LOAD:
        params = record.get("params") or {}
        # The same browser and OS: a newer load says all an older one did.
        key = "\x1f".join(str(params.get(k)) for k in ("browser_name", "browser_version", "os_name", "os_version"))
        return f"{WEBUI_LOAD}\x1f{key}", RANK_WEBUI
    return None, RANK_EVENT


@dataclass
class Entry:
    """A record taken from the queue for sending."""

    rowid: int
    record: dict
    event_time: int = 0
    time_certain: bool = True

    @property
    def outgoing(self) -> dict:
        """The record as it is sent: with the time its event really happened."""
        return {**self.record, "event_time": self.event_time}


class _Storage(persistqueue.SQLiteAckQueue):
    """persist-queue's queue without its count of the table at open: we keep our own counts,
    and counting 100,000 rows would read the whole file while OctoPrint starts."""

    def _count(self) -> int:
        return 0


class QueueUnusable(Exception):
    """The database file cannot serve as our queue (corrupt, foreign or read-only)."""


class QueueMissing(Exception):
    """There is no queue database yet: nothing was ever tracked in this basedir."""


class _ReadOnlyConnections:
    """Stands in for the persist-queue object of a reader: one read-only connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._getter = self._putter = conn

    def close(self) -> None:
        self._getter.close()


def _check_schema(conn: sqlite3.Connection, require_table: bool = True, integrity: bool = True) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    foreign = tables - _OWN_TABLES
    if foreign:
        raise QueueUnusable(f"it holds foreign tables ({', '.join(sorted(foreign))})")
    if require_table or _TABLE in tables:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info(`{_TABLE}`)")]
        if columns not in (PQ_COLUMNS, PQ_COLUMNS + list(OWN_COLUMNS)):
            raise QueueUnusable(f"its queue table has the columns {columns}")
    if not integrity:
        return
    status = conn.execute("PRAGMA quick_check").fetchone()[0]
    if status != "ok":
        raise QueueUnusable(f"the integrity check says {status!r}")


def _inspect(path: str, integrity: bool = False) -> None:
    """Checks an existing file read-only, before persist-queue creates its table in it:
    a file that is not ours must be moved aside as it was, not with our table added.

    The integrity check reads the whole file, so it runs in the worker (`verify`), not
    while OctoPrint starts."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise QueueUnusable(str(error)) from error
    try:
        _check_schema(conn, require_table=False, integrity=integrity)
    except sqlite3.DatabaseError as error:
        raise QueueUnusable(str(error)) from error
    finally:
        conn.close()


@dataclass
class _Counts:
    rows: int = 0
    failed: int = 0
    counters: Counter = field(default_factory=Counter)


class TrackingQueue:
    """Durable FIFO with caps, counters and a dead letter list. Safe to use from several threads."""

    def __init__(
        self,
        folder: str,
        max_records: int = 10000,
        max_age_days: int = 30,
        clocks: Optional[Clocks] = None,
        read_only: bool = False,
    ) -> None:
        """`read_only`: look at a queue another process owns (the command line beside the
        server): no recovery, no migration, every write fails."""
        self.folder = folder
        self.max_records = max_records
        self.max_age_days = max_age_days
        self.clocks = clocks or Clocks()
        self.read_only = read_only
        self._lock = threading.RLock()
        self.recovered: Optional[str] = None  # why a bad file was moved aside, for the status
        self.store_error: Optional[str] = None  # set while records cannot be stored
        self._unsaved_failures = 0  # store failures not yet counted on disk
        self.memory_only = False  # no usable file: records live in memory until restart
        self._in_flight: Optional[int] = None  # rowid being sent; never written to disk
        self._boots: dict[int, Boot] = {}
        self._current: Boot  # this boot, set when the file is opened
        self._q = self._open_read_only() if read_only else self._open()
        self._counts = self._load_counts()

    # ~~ opening, migration and recovery

    def _connect(self, folder: Optional[str] = None) -> _Storage:
        q = _Storage(
            folder or self.folder,
            name=QUEUE_NAME,
            db_file_name=DB_FILE,
            multithreading=True,
            timeout=5.0,
            serializer=persistqueue.serializers.json,
            # Nothing is marked in flight on disk any more; the migration resumes old rows.
            auto_resume=False,
        )
        for conn, sync in ((q._putter, "FULL"), (q._getter, "NORMAL")):
            # The WAL is cut back to this after a checkpoint, so it never grows on the card;
            # no lower than what it reaches between checkpoints, or every checkpoint cuts it
            # and the next commits grow the file again, which makes their fsync dearer.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            conn.execute(f"PRAGMA synchronous = {sync}")
            # Debian's SQLite zeroes every deleted row by default: an extra write of each
            # delivered record's pages. FAST zeroes only what costs no extra I/O; an
            # opt-out's clear overwrites everything it deletes (clear).
            conn.execute(f"PRAGMA secure_delete = {SECURE_DELETE}")
        return q

    def _open(self, problem: Optional[Exception] = None) -> _Storage:
        q = None
        if problem is None:  # else verify() found the open file bad
            try:
                _inspect(os.path.join(self.folder, DB_FILE))
                q = self._connect()
                self._prepare(q._putter)
                return q
            except (sqlite3.DatabaseError, QueueUnusable) as error:
                if q is not None:
                    q.close()
                problem = error
        try:
            moved = self._move_aside()
            q = self._connect()
            self._prepare(q._putter)
            self.recovered = (
                f"The queue database was unusable ({problem}); it was moved to {moved} "
                f"and a new, empty queue was started."
            )
        except (OSError, sqlite3.DatabaseError, QueueUnusable) as error:
            # Nothing on disk can be used (read-only folder, ...): keep tracking in memory
            # rather than failing to load; the status tells the user to fix the folder.
            self.memory_only = True
            q = self._connect(":memory:")
            self._prepare(q._putter)
            self.recovered = (
                f"The queue database was unusable ({problem}) and could not be moved aside "
                f"or replaced ({error}); records are kept in memory until OctoPrint restarts."
            )
        logger.warning(self.recovered)
        return q

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Checks the file, migrates it to our schema and registers this boot."""
        try:
            _check_schema(conn, integrity=False)
            with conn:  # also proves the file is writable
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version < SCHEMA_VERSION:
                    columns = {row[1] for row in conn.execute(f"PRAGMA table_info(`{_TABLE}`)")}
                    for name, statement in zip(OWN_COLUMNS, _MIGRATION):
                        if name not in columns:
                            conn.execute(statement)
                for statement in _CREATE:
                    conn.execute(statement)
                self._boots = self._register_boot(conn)
                if version < SCHEMA_VERSION:
                    self._migrate_rows(conn)
                    _keep_counts(conn, _table_counts(conn))
                # Also the proof that the file is writable, even when nothing needed migrating.
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise QueueUnusable(str(error)) from error

    def _register_boot(self, conn: sqlite3.Connection) -> dict[int, Boot]:
        boot_id = self.clocks.boot_id()
        boots = _read_boots(conn)
        for boot in boots.values():
            if boot.boot_id == boot_id:  # OctoPrint restarted within the same boot
                self._current = boot
                return boots
        # A new boot: the observed clock goes on from the latest time seen before it,
        # so time while the machine was off never ages a record.
        latest = max((b.last_observed for b in boots.values()), default=0.0)
        row = conn.execute(f"SELECT observed FROM `{_TABLE}` ORDER BY _id DESC LIMIT 1").fetchone()
        if row and row[0] is not None:
            latest = max(latest, row[0])
        mono, wall = self.clocks.mono(), self.clocks.wall()
        key = conn.execute(
            "INSERT INTO tq_boots (boot_id, t0, m0, last_mono, offset, confirmed) VALUES (?, ?, ?, ?, ?, ?)",
            (boot_id, latest, mono, mono, wall - mono, int(bool(self.clocks.synced()))),
        ).lastrowid
        boots = _read_boots(conn)
        self._current = boots[key]
        return boots

    def _migrate_rows(self, conn: sqlite3.Connection) -> None:
        """Rows of schema 1: their wall clock time may have been wrong, so their age starts now
        (they are not dropped for age before max_age_days from now) and their time is uncertain."""
        now = self.observed_now()
        updates = []
        for rowid, data, status in conn.execute(f"SELECT _id, data, status FROM `{_TABLE}`").fetchall():
            record = decode(data)
            coalesce, rank = traits(record) if record else (None, RANK_EVENT)
            # persist-queue's in-flight rows of a crashed run are pending again.
            state = _FAILED if int(status) == _FAILED else _READY
            updates.append((record and record["event"], coalesce, rank, now, state, rowid))
        conn.executemany(
            f"UPDATE `{_TABLE}` SET event = ?, coalesce = ?, rank = ?, observed = ?, status = ? WHERE _id = ?",
            updates,
        )
        if updates:
            logger.info("Upgraded %d queued records to queue schema %d", len(updates), SCHEMA_VERSION)

    def _open_read_only(self) -> _ReadOnlyConnections:
        path = os.path.join(self.folder, DB_FILE)
        if not os.path.exists(path):
            raise QueueMissing(path)
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.close()
            raise QueueUnusable("it was written by an older version of the plugin; start OctoPrint once to upgrade it")
        self._boots = _read_boots(conn)
        boot_id = self.clocks.boot_id()
        current = [b for b in self._boots.values() if b.boot_id == boot_id]
        mono, wall = self.clocks.mono(), self.clocks.wall()
        self._current = current[0] if current else Boot(-1, boot_id, 0.0, mono, mono, wall - mono, False)
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

    def _load_counts(self) -> _Counts:
        conn = self._q._getter
        counters = Counter(dict(conn.execute("SELECT name, value FROM tq_counters")))
        if self.read_only:  # the owner's counts may be ahead of what it has committed
            rows, failed = _table_counts(conn)
        else:
            # Kept without a write of their own per insert: AUTOINCREMENT counts the inserts,
            # `removed` the deletes (in the transactions that delete).
            rows, failed = _inserted(conn) - counters["removed"], counters["failed"]
        for name in ("removed", "failed"):
            counters.pop(name, None)
        return _Counts(rows=rows, failed=failed, counters=counters)

    def verify(self) -> None:
        """The slow checks kept out of OctoPrint's start, run once by the worker: the file's
        integrity (a bad file is moved aside and a new queue started), the kept counts, and
        the boots no record refers to any more."""
        if self.read_only or self.memory_only:
            return
        try:
            _inspect(os.path.join(self.folder, DB_FILE), integrity=True)
        except QueueUnusable as problem:
            with self._lock:
                self._q.close()
                self._in_flight = None
                self._q = self._open(problem)
                self._counts = self._load_counts()
            return
        with self._lock:
            conn = self._q._getter
            with conn:
                rows, failed = _table_counts(conn)
                if (rows, failed) != (self._counts.rows, self._counts.failed):
                    logger.warning(
                        "Queue counts were %d/%d, the table holds %d/%d; corrected",
                        self._counts.rows,
                        self._counts.failed,
                        rows,
                        failed,
                    )
                    self._counts.rows, self._counts.failed = rows, failed
                    _keep_counts(conn, (rows, failed))
                conn.execute(
                    f"DELETE FROM tq_boots WHERE key != ? AND key NOT IN "
                    f"(SELECT DISTINCT boot FROM `{_TABLE}` WHERE boot IS NOT NULL)",
                    (self._current.key,),
                )
            self._boots = _read_boots(conn)

    def close(self) -> None:
        with self._lock:
            if not self.read_only and not self.memory_only:
                try:
                    self.observe()
                except sqlite3.Error:
                    pass
            self._q.close()

    # ~~ the observed clock

    def observed_now(self) -> float:
        return self._current.observed(self.clocks.mono())

    def observe(self) -> None:
        """Remembers how far this boot's clocks got (and whether the wall clock is known good).
        Called now and then by the worker: no fsync of its own."""
        with self._lock:
            boot = self._current
            mono, wall = self.clocks.mono(), self.clocks.wall()
            offset = wall - mono
            # A step of the wall clock against the monotonic one is what an NTP sync does.
            stepped = abs(offset - boot.offset) > STEP
            boot.confirmed = boot.confirmed or stepped or bool(self.clocks.synced())
            boot.last_mono, boot.offset = mono, offset
            conn = self._q._getter
            with conn:
                conn.execute(
                    "UPDATE tq_boots SET last_mono = ?, offset = ?, confirmed = ? WHERE key = ?",
                    (mono, offset, int(boot.confirmed), boot.key),
                )

    @property
    def clock_confirmed(self) -> bool:
        return self._current.confirmed

    def _timing(self, boot: Optional[int], mono: Optional[float], created: Any) -> tuple[int, bool]:
        created = created if isinstance(created, (int, float)) else 0
        return event_time(
            self._boots.get(boot) if boot is not None else None, mono, created, self._current, self.clocks
        )

    # ~~ low level

    def _bump(self, conn: sqlite3.Connection, name: str, by: int) -> None:
        """Grows a counter on disk inside the caller's transaction (memory follows on commit)."""
        if by:
            conn.execute(
                "INSERT INTO tq_counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )

    def _remove(self, conn: sqlite3.Connection, where: str, args: tuple, counter: str, bumps: Counter) -> int:
        """Deletes rows in the caller's transaction, counting them in total and per event."""
        if counter in PER_EVENT:
            for event, count in conn.execute(
                f"SELECT event, COUNT(*) FROM `{_TABLE}` WHERE {where} GROUP BY event", args
            ).fetchall():
                bumps[f"{counter}.{event or '?'}"] += count
        failed = conn.execute(
            f"SELECT COUNT(*) FROM `{_TABLE}` WHERE ({where}) AND {SCOPES['failed']}", args
        ).fetchone()[0]
        removed = conn.execute(f"DELETE FROM `{_TABLE}` WHERE {where}", args).rowcount
        bumps[counter] += removed
        bumps["-rows"] += removed
        bumps["-failed"] += failed
        return removed

    def _commit_bumps(self, conn: sqlite3.Connection, bumps: Counter) -> None:
        # The counts are kept in the transactions that change them, so the status never counts
        # the table; an insert needs no write for it (AUTOINCREMENT counts inserts).
        self._bump(conn, "removed", bumps["-rows"])
        self._bump(conn, "failed", bumps["+failed"] - bumps["-failed"])
        for name, by in bumps.items():
            if name[0] not in "+-":
                self._bump(conn, name, by)

    def _apply_bumps(self, bumps: Counter) -> None:
        """After the commit: the memory follows what is on disk."""
        counts = self._counts
        counts.rows += bumps["+rows"] - bumps["-rows"]
        counts.failed += bumps["+failed"] - bumps["-failed"]
        for name, by in bumps.items():
            if name[0] not in "+-":
                counts.counters[name] += by

    def _transaction(self, conn: sqlite3.Connection, work) -> Counter:
        bumps: Counter = Counter()
        with self._lock:
            with conn:
                work(conn, bumps)
                self._commit_bumps(conn, bumps)
            self._apply_bumps(bumps)
        return bumps

    # ~~ producer side (OctoPrint's event thread: one commit, one fsync)

    def put(self, record: dict) -> bool:
        """Stores a record durably. False when it could not be stored (counted and logged once)."""
        return self.put_many([record]) == 1

    def put_many(self, records: Iterable[dict]) -> int:
        """Stores records in one transaction (tests and benchmarks fill a queue this way)."""
        records = list(records)

        def insert(conn: sqlite3.Connection, bumps: Counter) -> None:
            for record in records:
                self._insert(conn, record, bumps)
            excess = self._counts.rows + bumps["+rows"] - bumps["-rows"] - self.max_records
            if excess > 0:
                self._evict(conn, excess, bumps)

        with self._lock:
            try:
                self._transaction(self._q._putter, insert)
            except sqlite3.Error as error:
                self._unsaved_failures += len(records)
                if self.store_error is None:
                    logger.error(
                        "Cannot store tracking records (%s); counting them as lost until storing works again",
                        error,
                    )
                self.store_error = str(error)
                return 0
            if self.store_error is not None:
                logger.info("Storing tracking records works again; %d could not be stored", self._unsaved_failures)
                self.store_error = None
            if self._unsaved_failures:
                self._save_store_failures()
            return len(records)

    def _insert(self, conn: sqlite3.Connection, record: dict, bumps: Counter) -> None:
        coalesce, rank = traits(record)
        if coalesce is not None:
            # The pending record this one supersedes goes in the same transaction; the one
            # being sent cannot be taken back.
            self._remove(
                conn,
                f"coalesce = ? AND status != {_FAILED} AND _id != ?",
                (coalesce, self._in_flight or -1),
                "superseded",
                bumps,
            )
        mono = self.clocks.mono()
        conn.execute(
            f"INSERT INTO `{_TABLE}` (data, timestamp, status, event, coalesce, rank, boot, mono, observed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                json.dumps(record).encode("utf-8"),
                record.get("created") or self.clocks.wall(),
                _READY,
                record.get("event"),
                coalesce,
                rank,
                self._current.key,
                mono,
                self._current.observed(mono),
            ),
        )
        bumps["+rows"] += 1

    def _evict(self, conn: sqlite3.Connection, count: int, bumps: Counter) -> None:
        """At the cap: page loads first, then heartbeats, then the oldest of the rest."""
        spare = self._in_flight or -1
        victims = [
            row[0]
            for row in conn.execute(
                f"SELECT _id FROM `{_TABLE}` WHERE rank < {RANK_EVENT} AND _id != ? ORDER BY rank, _id LIMIT ?",
                (spare, count),
            )
        ]
        if len(victims) < count:
            victims += [
                row[0]
                for row in conn.execute(
                    f"SELECT _id FROM `{_TABLE}` WHERE rank >= {RANK_EVENT} AND _id != ? ORDER BY _id LIMIT ?",
                    (spare, count - len(victims)),
                )
            ]
        if victims:
            marks = ",".join("?" * len(victims))
            self._remove(conn, f"_id IN ({marks})", tuple(victims), "dropped_cap", bumps)

    def _save_store_failures(self) -> None:
        failures = self._unsaved_failures

        def save(conn: sqlite3.Connection, bumps: Counter) -> None:
            bumps["store_failed"] += failures

        try:
            self._transaction(self._q._putter, save)
            self._unsaved_failures = 0
        except sqlite3.Error:
            pass  # stays in memory and is tried again on the next put

    def expire(self) -> int:
        """Drops records older than max_age_days by the observed clock; returns how many.

        Records are stored in the order of their observed time, so only the expired head
        of the table is read."""
        cutoff = self.observed_now() - self.max_age_days * 86400

        def drop(conn: sqlite3.Connection, bumps: Counter) -> None:
            row = conn.execute(
                f"SELECT _id FROM `{_TABLE}` WHERE observed IS NULL OR observed >= ? ORDER BY _id LIMIT 1", (cutoff,)
            ).fetchone()
            bound = row[0] if row else 2**62
            self._remove(
                conn,
                "_id < ? AND observed < ? AND _id != ?",
                (bound, cutoff, self._in_flight or -1),
                "dropped_age",
                bumps,
            )

        return self._transaction(self._q._getter, drop)["dropped_age"]

    # ~~ consumer side (the worker; NORMAL commits, no fsync)

    def next(self) -> Optional[Entry]:
        """The oldest pending record, now in flight; rows that cannot be decoded are dead-lettered."""
        with self._lock:
            while True:
                row = self._q._getter.execute(
                    f"SELECT _id, data, boot, mono, timestamp FROM `{_TABLE}` WHERE {SCOPES['pending']} "
                    "ORDER BY _id LIMIT 1"
                ).fetchone()
                if row is None:
                    self._in_flight = None
                    return None
                rowid, data, boot, mono, created = row
                record = decode(data)
                if record is None:
                    logger.warning("Dead-lettering queue row %d: it cannot be decoded", rowid)

                    def dead_letter(conn: sqlite3.Connection, bumps: Counter, rowid: int = rowid) -> None:
                        conn.execute(f"UPDATE `{_TABLE}` SET status = {_FAILED} WHERE _id = ?", (rowid,))
                        bumps["undecodable"] += 1
                        bumps["+failed"] += 1

                    self._transaction(self._q._getter, dead_letter)
                    continue
                self._in_flight = rowid
                when, certain = self._timing(boot, mono, record.get("created", created))
                return Entry(rowid, record, when, certain)

    def ack(self, entry: Entry) -> None:
        """Delivered: the row goes, the delivered counter grows, in one transaction."""

        def delivered(conn: sqlite3.Connection, bumps: Counter) -> None:
            # Counted even when the row was cleared while it was on its way: it did arrive.
            bumps["-rows"] += conn.execute(f"DELETE FROM `{_TABLE}` WHERE _id = ?", (entry.rowid,)).rowcount
            bumps["delivered"] += 1

        with self._lock:
            self._in_flight = None
            self._transaction(self._q._getter, delivered)

    def _set(self, entry: Entry, status: int, reason: str) -> None:
        entry.record["attempts"] = int(entry.record.get("attempts") or 0) + 1
        entry.record["last_error"] = reason
        entry.record["last_attempt"] = self.clocks.wall()

        def update(conn: sqlite3.Connection, bumps: Counter) -> None:
            changed = conn.execute(
                f"UPDATE `{_TABLE}` SET data = ?, status = ? WHERE _id = ?",
                (json.dumps(entry.record).encode("utf-8"), status, entry.rowid),
            ).rowcount
            if status == _FAILED:
                bumps["+failed"] += changed

        with self._lock:
            self._in_flight = None
            self._transaction(self._q._getter, update)

    def retry_later(self, entry: Entry, reason: str) -> None:
        """Not delivered this time: pending again at its place at the head of the queue."""
        self._set(entry, _READY, reason)

    def reject(self, entry: Entry, reason: str) -> None:
        """The server refused it for good: kept as failed (dead letter) with the reason."""
        self._set(entry, _FAILED, reason)

    # ~~ management

    def _current_counts(self) -> _Counts:
        # A reader beside the server has no memory of the owner's writes: it counts.
        return self._load_counts() if self.read_only else self._counts

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = self._current_counts()
            in_flight = 1 if self._in_flight is not None else 0
            counters = {name: counts.counters[name] for name in COUNTERS}
            counters["store_failed"] += self._unsaved_failures
            by_event: dict[str, dict[str, int]] = {name: {} for name in PER_EVENT}
            for name, value in counts.counters.items():
                kind, _, event = name.partition(".")
                if event and kind in by_event and value:
                    by_event[kind][event] = value
            oldest = self._q._getter.execute(
                f"SELECT data, boot, mono, timestamp, observed FROM `{_TABLE}` WHERE {SCOPES['pending']} "
                "ORDER BY _id LIMIT 1"
            ).fetchone()
            oldest_time = oldest_age = None
            oldest_certain = True
            if oldest:
                record = decode(oldest[0]) or {}
                oldest_time, oldest_certain = self._timing(oldest[1], oldest[2], record.get("created", oldest[3]))
                if oldest[4] is not None:
                    oldest_age = max(0.0, self.observed_now() - oldest[4])
            return {
                PENDING: counts.rows - counts.failed - in_flight,
                IN_FLIGHT: in_flight,
                FAILED: counts.failed,
                **counters,
                "by_event": by_event,
                "oldest_pending": oldest_time,
                "oldest_pending_age": oldest_age,
                "oldest_pending_certain": oldest_certain,
                "clock_confirmed": self._current.confirmed,
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

    def page(
        self,
        scope: str = "pending",
        offset: int = 0,
        limit: int = 50,
        after: Optional[int] = None,
        before: Optional[int] = None,
        last: bool = False,
    ) -> list[dict]:
        """Records of a scope, oldest first, each with its `status`, `rowid` and `event_time`.

        `after`/`before` (a rowid) or `last` page by key, as fast at the end of 100,000
        records as at the start. An `offset` is walked from the nearer end of the scope
        (its size is kept, not counted), so the last page costs what the first does."""
        where, args, order = SCOPES[scope], [], "ASC"
        offset, limit = int(offset), int(limit)
        if after is not None:
            where, args = f"{where} AND _id > ?", [after]
        elif before is not None:
            where, args, order = f"{where} AND _id < ?", [before], "DESC"
        elif last:
            order = "DESC"
        with self._lock:
            if offset and order == "ASC" and not self.read_only:
                total = self.count(scope)
                if offset >= total:
                    return []
                if offset > total // 2:  # rows [offset, offset + limit) are the nearer end's
                    order, limit, offset = "DESC", min(limit, total - offset), max(0, total - offset - limit)
            sql = f"SELECT _id, data, status, boot, mono, timestamp FROM `{_TABLE}` WHERE {where} ORDER BY _id {order} LIMIT ?"
            args.append(limit)
            if offset:
                sql += " OFFSET ?"
                args.append(offset)
            rows = self._q._getter.execute(sql, args).fetchall()
            if order == "DESC":
                rows.reverse()
            return [self._describe(*row) for row in rows]

    def _describe(self, rowid: int, data: Any, status: Any, boot: Any, mono: Any, created: Any) -> dict:
        record = decode(data) or {"event": None, "params": {}, "last_error": "cannot be decoded"}
        if int(status) == _FAILED:
            state = FAILED
        else:
            state = IN_FLIGHT if rowid == self._in_flight else PENDING
        when, certain = self._timing(boot, mono, record.get("created", created))
        return {**record, "rowid": rowid, "status": state, "event_time": when, "time_uncertain": not certain}

    def count(self, scope: str = "pending") -> int:
        counts = self._current_counts()
        return {"pending": counts.rows - counts.failed, "failed": counts.failed, "all": counts.rows}[scope]

    def iter_records(self, scope: str = "all", batch: int = 500) -> Iterator[dict]:
        after = None
        while True:
            rows = self.page(scope, limit=batch, after=after)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1]["rowid"]

    def clear(self, scope: str, reason: Optional[str] = None) -> int:
        """Removes the records of a scope, also one being sent (it will not be retried); returns how many.

        For good: their bytes are overwritten in the file and the WAL is emptied, so an opt-out
        leaves nothing of them on the card (a plain DELETE only marks their pages free)."""

        def remove(conn: sqlite3.Connection, bumps: Counter) -> None:
            self._remove(conn, SCOPES[scope], (), "cleared", bumps)

        conn = self._q._getter
        with self._lock:
            conn.execute("PRAGMA secure_delete = ON")
            try:
                removed = self._transaction(conn, remove)["cleared"]
            finally:
                conn.execute(f"PRAGMA secure_delete = {SECURE_DELETE}")
            if removed and not self.memory_only:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if reason and removed:
            logger.info("Deleted %d tracking records not yet sent: %s", removed, reason)
        return removed

    def requeue_failed(self) -> int:
        """Failed records become pending again (they keep their place by age)."""

        def requeue(conn: sqlite3.Connection, bumps: Counter) -> None:
            bumps["-failed"] += conn.execute(
                f"UPDATE `{_TABLE}` SET status = {_READY} WHERE status = {_FAILED}"
            ).rowcount

        return self._transaction(self._q._getter, requeue)["-failed"]

    # ~~ for tests and benchmarks

    def cap_file(self, grow: Optional[int] = 0) -> None:
        """Lets new records grow the file by `grow` pages at most (None: no cap), as a full disk
        would; for tests and benchmarks."""
        conn = self._q._putter
        with self._lock:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {1073741823 if grow is None else pages + int(grow)}")


def _table_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(rows, failed rows), counted: reads the whole table."""
    return (
        conn.execute(f"SELECT COUNT(*) FROM `{_TABLE}`").fetchone()[0],
        conn.execute(f"SELECT COUNT(*) FROM `{_TABLE}` WHERE {SCOPES['failed']}").fetchone()[0],
    )


def _inserted(conn: sqlite3.Connection) -> int:
    """Rows ever inserted: AUTOINCREMENT's sequence."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (_TABLE,)).fetchone()
    return row[0] if row else 0


def _keep_counts(conn: sqlite3.Connection, counts: tuple[int, int]) -> None:
    """Sets the kept counts to what the table holds (after a migration or a miscount)."""
    rows, failed = counts
    conn.executemany(
        "INSERT OR REPLACE INTO tq_counters (name, value) VALUES (?, ?)",
        (("removed", _inserted(conn) - rows), ("failed", failed)),
    )


def _read_boots(conn: sqlite3.Connection) -> dict[int, Boot]:
    return {
        row[0]: Boot(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))
        for row in conn.execute("SELECT key, boot_id, t0, m0, last_mono, offset, confirmed FROM tq_boots")
    }


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
