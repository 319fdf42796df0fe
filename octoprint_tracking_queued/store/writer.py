"""The write side of the queue, owned by the runtime alone: what `Intake` does, and expire,
per destination next, ack, retry, reject, clear and requeue, and the worker's upkeep.

These commit on the worker's NORMAL connection; `sync` makes them durable (file.py says when).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from . import schema
from .file import SYNC_EVERY, QueueUnusable, decode, inspect
from .intake import ALL, Intake
from .ledger import Delta, Ledger
from .opener import open_file
from .view import scope_sql

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
# A row with what it is needed for, as the next step reads it.
_SELECT_NEXT = (
    f"SELECT _id, data, boot, mono, timestamp, need, dead, t.attempts, t.last_error FROM `{schema.TABLE}` "
    "LEFT JOIN tq_tries AS t ON t.dest = ? AND t.id = _id"
)
_FORGET_TRIES = "DELETE FROM tq_tries WHERE dest = ? AND id IN (SELECT _id FROM `%s` WHERE {where})" % schema.TABLE
_DELETE_AS_READ = f"DELETE FROM `{schema.TABLE}` WHERE _id = ? AND need = ? AND dead = ?"
_SELECT_STATE = f"SELECT need, dead FROM `{schema.TABLE}` WHERE _id = ?"


@dataclass
class Entry:
    """A record taken from the queue for sending to one destination."""

    rowid: int
    record: dict
    event_time: int = 0
    time_certain: bool = True
    dest: str = schema.TRACKING
    attempts: int = 0
    state: Tuple[int, int] = (0, 0)  # need, dead as next() read them

    @property
    def outgoing(self) -> dict:
        """The record as it is sent: with the time its event really happened."""
        return {**self.record, "event_time": self.event_time}


class Writer(Intake):
    """Durable FIFO with caps, counters and dead letters per destination. Thread-safe."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._unsynced = 0  # records settled since the worker's last fsync of the WAL

    def expire(self) -> int:
        """Drops records older than max_age_days by the observed clock; returns how many.

        Records are stored in the order of their observed time, so only the expired head of the
        table is read."""
        cutoff = self.observed_now() - self.max_age_days * 86400
        dropped = []

        def drop(conn: sqlite3.Connection, delta: Delta) -> None:
            row = conn.execute(
                f"SELECT _id FROM `{schema.TABLE}` WHERE observed IS NULL OR observed >= ? ORDER BY _id LIMIT 1",
                (cutoff,),
            ).fetchone()
            bound = row[0] if row else 2**62
            where = "_id < ? AND observed < ? AND _id != ?"
            dropped.append(self._drop(conn, where, (bound, cutoff, self._busy()), ALL, "dropped_age", delta))

        self._transaction(self.qf.getter, drop)
        return dropped[0]

    # ~~ consumer side (the worker; NORMAL commits, the WAL fsynced every SYNC_EVERY settled records)

    def next(self, dest: str = schema.TRACKING) -> Optional[Entry]:
        """The oldest record `dest` still has to send, now in flight; rows that cannot be decoded
        are dead letters for every destination."""
        bit = schema.BIT[dest]
        with self.qf.lock:
            while True:
                row = self.qf.getter.execute(
                    f"{_SELECT_NEXT} WHERE {schema.live(bit)} ORDER BY _id LIMIT 1", (bit,)
                ).fetchone()
                if row is None:
                    self.in_flight[dest] = None
                    return None
                rowid, data, boot, mono, created, need, dead, attempts, last_error = row
                record = decode(data)
                if record is None:
                    logger.warning("Dead-lettering queue row %d: it cannot be decoded", rowid)

                    def dead_letter(conn: sqlite3.Connection, delta: Delta, row: tuple = (rowid, need, dead)) -> None:
                        conn.execute(f"UPDATE `{schema.TABLE}` SET dead = need WHERE _id = ?", (row[0],))
                        delta.add_row(row[1], row[2], row[1], row[1])
                        delta.count("undecodable")

                    self._transaction(self.qf.getter, dead_letter)
                    continue
                if attempts:  # the destination's tries, as the record carried them in schema 2
                    record.update(attempts=attempts, last_error=last_error)
                self.in_flight[dest] = rowid
                when, certain = self.boots.timing(boot, mono, record.get("created", created))
                return Entry(rowid, record, when, certain, dest, attempts or 0, (need, dead))

    def _settle(self, entry: Entry, work: Callable[[sqlite3.Connection, Delta, int, int], None]) -> None:
        """Runs `work` on the entry's row as it is now (a clear may have changed it meanwhile)."""

        def change(conn: sqlite3.Connection, delta: Delta) -> None:
            row = conn.execute(_SELECT_STATE, (entry.rowid,)).fetchone()
            need, dead = row if row else (0, 0)
            work(conn, delta, need, dead)

        with self.qf.lock:
            self.in_flight[entry.dest] = None
            self._transaction(self.qf.getter, change)
            self._settled(1)

    def ack(self, entry: Entry) -> None:
        """Delivered: the destination is off the row (the row goes when none is left), in one transaction."""
        bit = schema.BIT[entry.dest]

        def delivered(conn: sqlite3.Connection, delta: Delta, need: int, dead: int) -> None:
            if not need & bit:
                return
            if need & ~bit:
                conn.execute(f"UPDATE `{schema.TABLE}` SET need = need & ~{bit} WHERE _id = ?", (entry.rowid,))
            else:
                conn.execute(f"DELETE FROM `{schema.TABLE}` WHERE _id = ?", (entry.rowid,))
            conn.execute("DELETE FROM tq_tries WHERE dest = ? AND id = ?", (bit, entry.rowid))
            delta.add_row(need, dead, need & ~bit, dead & ~bit)

        def change(conn: sqlite3.Connection, delta: Delta) -> None:
            # Counted even when the row was cleared while it was on its way: it did arrive.
            delta.count("delivered", 1, entry.dest)
            need, dead = entry.state
            # The common case in one statement: the row as next() read it, for this destination only.
            if need == bit and not dead and not entry.attempts:
                if conn.execute(_DELETE_AS_READ, (entry.rowid, need, dead)).rowcount:
                    delta.add_row(need, dead, 0, 0)
                    return
            delivered(conn, delta, *(conn.execute(_SELECT_STATE, (entry.rowid,)).fetchone() or (0, 0)))

        with self.qf.lock:
            self.in_flight[entry.dest] = None
            self._transaction(self.qf.getter, change)
            self._settled(1)

    def _settled(self, count: int) -> None:
        self._unsynced += count
        if self._unsynced >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Makes the settled records durable (file.py: the durability budget); the worker calls
        this when it runs out of work, and every SYNC_EVERY settled records."""
        if self._unsynced:
            self._unsynced = 0
            self.qf.sync_wal()

    def _tried(self, entry: Entry, reason: str, dead_letter: bool) -> None:
        bit = schema.BIT[entry.dest]

        def failed(conn: sqlite3.Connection, delta: Delta, need: int, dead: int) -> None:
            if not need & bit:
                return  # cleared meanwhile
            conn.execute(schema.BUMP_TRIES, (bit, entry.rowid, reason, self.clocks.wall()))
            if dead_letter:
                conn.execute(f"UPDATE `{schema.TABLE}` SET dead = dead | {bit} WHERE _id = ?", (entry.rowid,))
                delta.add_row(need, dead, need, dead | bit)

        self._settle(entry, failed)

    def retry_later(self, entry: Entry, reason: str) -> None:
        """Not delivered this time: pending again at its place at the head of the queue."""
        self._tried(entry, reason, dead_letter=False)

    def reject(self, entry: Entry, reason: str) -> None:
        """The destination refused it for good: kept as its dead letter, with the reason."""
        self._tried(entry, reason, dead_letter=True)

    # ~~ management

    def clear(self, scope: str, reason: Optional[str] = None, dest: str = schema.TRACKING) -> int:
        """Takes the records of a scope off `dest`, also one being sent (it will not be retried);
        returns how many. A record no other destination needs is deleted for good: its bytes are
        overwritten in the file and the WAL emptied, so an opt-out leaves nothing on the card."""
        bit = schema.BIT[dest]
        where = scope_sql(scope, dest)

        removed = []

        def remove(conn: sqlite3.Connection, delta: Delta) -> None:
            conn.execute(_FORGET_TRIES.format(where=where), (bit,))
            removed.append(self._drop(conn, where, (), bit, "cleared", delta))

        with self.qf.lock:
            with self.qf.erasing() as conn:
                self._transaction(conn, remove)
        removed = removed[0]
        if reason and removed:
            logger.info("Deleted %d tracking records not yet sent: %s", removed, reason)
        return removed

    def requeue_failed(self, dest: str = schema.TRACKING) -> int:
        """The destination's dead letters are pending again (they keep their place by age)."""
        bit = schema.BIT[dest]

        def requeue(conn: sqlite3.Connection, delta: Delta) -> None:
            for need, dead, count in conn.execute(
                f"SELECT need, dead, COUNT(*) FROM `{schema.TABLE}` WHERE {schema.dead(bit)} GROUP BY need, dead"
            ).fetchall():
                delta.add_row(need, dead, need, dead & ~bit, count)
            conn.execute(f"UPDATE `{schema.TABLE}` SET dead = dead & ~{bit} WHERE {schema.dead(bit)}")

        return -self._transaction(self.qf.getter, requeue).dead[dest]

    # ~~ upkeep (the worker)

    def verify(self) -> None:
        """The slow checks kept out of OctoPrint's start, run once by the worker: the file's
        integrity (a bad file is moved aside and a new queue started), the kept counts, and the
        boots and tries no record refers to any more."""
        if self.memory_only:
            return
        try:
            inspect(self.qf.path, integrity=True)
        except QueueUnusable as problem:
            with self.qf.lock:
                self.qf.close()
                self.in_flight = {name: None for name in schema.DESTINATIONS}
                self.qf, self.recovered = open_file(self.folder, self.boots, self.traits, problem)
                self.ledger = Ledger(self.qf.getter)
            return
        with self.qf.lock:
            conn = self.qf.getter
            with conn:
                before = (self.ledger.rows, self.ledger.failed)
                if self.ledger.recount(conn):
                    logger.warning(
                        "Queue counts were %d/%d, the table holds %d/%d; corrected",
                        *before,
                        self.ledger.rows,
                        self.ledger.failed,
                    )
                    self.ledger.store(conn)
                self.boots.forget_unused(conn)
                conn.execute(schema.DELETE_ORPHAN_TRIES)

    def observe(self) -> None:
        """Remembers how far this boot's clocks got (and whether the wall clock is known good).
        Called now and then by the worker: no fsync of its own."""
        with self.qf.lock:
            self.boots.observe(self.qf.getter)

    def close(self) -> None:
        with self.qf.lock:
            self.sync()
            if not self.memory_only:
                try:
                    self.observe()
                except sqlite3.Error:
                    pass
            self.qf.close()

    def cap_file(self, grow: Optional[int] = 0) -> None:
        """Lets new records grow the file by `grow` pages at most (None: no cap); for tests and benchmarks."""
        self.qf.cap(grow)
