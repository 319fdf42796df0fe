"""The write side of the queue, owned by the runtime alone: what `Intake` does, and expire,
per destination next, ack, retry, reject, clear and requeue, and the worker's upkeep.

These commit on the worker's NORMAL connection; `sync` makes them durable (file.py says when).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

from . import schema
from .file import SYNC_EVERY, QueueUnusable, decode, inspect
from .intake import ALL
from .ledger import Delta, Ledger
from .manage import Manager
from .opener import open_file

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
# A row with what it is needed for, as the next step reads it.
_SELECT_NEXT = (
    f"SELECT _id, data, boot, mono, timestamp, need, dead, t.attempts, t.last_error FROM `{schema.TABLE}` "
    "LEFT JOIN tq_tries AS t ON t.dest = ? AND t.id = _id"
)
_DELETE_AS_READ = f"DELETE FROM `{schema.TABLE}` WHERE _id = ? AND need = ? AND dead = ?"
_SELECT_STATE = f"SELECT need, dead FROM `{schema.TABLE}` WHERE _id = ?"


@dataclass
class Entry:
    """A record taken from the queue for sending to one destination."""

    rowid: int
    record: dict
    event_time: float = 0.0
    time_certain: bool = True
    dest: str = schema.TRACKING
    attempts: int = 0
    state: Tuple[int, int] = (0, 0)  # need, dead as next_batch() read them

    @property
    def outgoing(self) -> dict:
        """The record as it is sent: with the time its event really happened, and whether that
        time is certain (the collector is told when it is not)."""
        return {**self.record, "event_time": self.event_time, "time_certain": self.time_certain}


Settle = Callable[[sqlite3.Connection, Delta, "Entry", int, int], None]


def _entries(entry: Union[Entry, Sequence[Entry]]) -> Sequence[Entry]:
    return [entry] if isinstance(entry, Entry) else entry


class Writer(Manager):
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
            spare, busy = self._busy()
            where = f"_id < ? AND observed < ? AND {spare}"
            dropped.append(self._drop(conn, where, (bound, cutoff, *busy), ALL, "dropped_age", delta))

        self._transaction(self.qf.getter, drop)
        return dropped[0]

    # ~~ consumer side (the worker; NORMAL commits, the WAL fsynced every SYNC_EVERY settled records)

    def next(self, dest: str = schema.TRACKING) -> Optional[Entry]:
        """The oldest record `dest` still has to send, now in flight."""
        batch = self.next_batch(dest, 1)
        return batch[0] if batch else None

    def next_batch(self, dest: str = schema.TRACKING, limit: int = 1, max_bytes: int = 0) -> List[Entry]:
        """The oldest records `dest` still has to send, at most `limit` and (after the first) at
        most `max_bytes` of stored JSON, now in flight. Rows that cannot be decoded are dead
        letters for every destination."""
        bit = schema.BIT[dest]
        entries: List[Entry] = []
        size, after = 0, self.live_from[dest] - 1
        with self.qf.lock:
            while len(entries) < limit:
                rows = self.qf.getter.execute(
                    f"{_SELECT_NEXT} WHERE {schema.live(bit)} AND _id > ? ORDER BY _id LIMIT ?",
                    (bit, after, limit - len(entries)),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    rowid, data, boot, mono, created, need, dead, attempts, last_error = row
                    after = rowid
                    size += len(data)
                    if entries and max_bytes and size > max_bytes:
                        limit = len(entries)  # the rest waits for the next batch
                        break
                    record = decode(data)
                    if record is None:
                        self._undecodable(rowid, need, dead)
                        continue
                    if attempts:  # the destination's tries, as the record carried them in schema 2
                        record.update(attempts=attempts, last_error=last_error)
                    when, certain = self.boots.timing(boot, mono, record.get("created", created))
                    entries.append(Entry(rowid, record, when, certain, dest, attempts or 0, (need, dead)))
            self.in_flight[dest] = tuple(entry.rowid for entry in entries)
            # Below the oldest it found, no row is live for `dest` (none found: none at all).
            self.live_from[dest] = entries[0].rowid if entries else max(after, self.ledger.seq) + 1
        return entries

    def _undecodable(self, rowid: int, need: int, dead: int) -> None:
        logger.warning("Dead-lettering queue row %d: it cannot be decoded", rowid)

        def dead_letter(conn: sqlite3.Connection, delta: Delta) -> None:
            conn.execute(f"UPDATE `{schema.TABLE}` SET dead = need WHERE _id = ?", (rowid,))
            delta.add_row(need, dead, need, need)
            delta.count("undecodable")

        self._transaction(self.qf.getter, dead_letter)

    def _settle(self, entries: Sequence[Entry], work: Settle, as_read: bool = False) -> None:
        """Runs `work` on each entry's row as it is now (a clear may have changed it meanwhile),
        all in one transaction. `as_read`: a row still as next_batch() read it, wanted by its
        destination only, is simply deleted (the common acknowledgement, one statement)."""

        def change(conn: sqlite3.Connection, delta: Delta) -> None:
            for entry in entries:
                need, dead = entry.state
                if as_read and need == schema.BIT[entry.dest] and not dead and not entry.attempts:
                    if conn.execute(_DELETE_AS_READ, (entry.rowid, need, dead)).rowcount:
                        delta.count("delivered", 1, entry.dest)
                        delta.add_row(need, dead, 0, 0)
                        continue
                row = conn.execute(_SELECT_STATE, (entry.rowid,)).fetchone()
                need, dead = row if row else (0, 0)
                work(conn, delta, entry, need, dead)

        with self.qf.lock:
            for dest in {entry.dest for entry in entries}:
                self.in_flight[dest] = ()
            self._transaction(self.qf.getter, change)
            self._settled(len(entries))

    def _settled(self, count: int) -> None:
        self._unsynced += count
        if self._unsynced >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Makes the settled records durable (file.py: the durability budget): every SYNC_EVERY
        settled records, and when the queue is closed."""
        if self._unsynced:
            self._unsynced = 0
            self.qf.sync_wal()

    def ack(self, entry: Union[Entry, Sequence[Entry]]) -> None:
        """Delivered: the destination is off the rows (a row goes when none is left), in one transaction."""

        def delivered(conn: sqlite3.Connection, delta: Delta, entry: Entry, need: int, dead: int) -> None:
            bit = schema.BIT[entry.dest]
            # Counted even when the row was cleared while it was on its way: it did arrive.
            delta.count("delivered", 1, entry.dest)
            if not need & bit:
                return
            if need & ~bit:
                conn.execute(f"UPDATE `{schema.TABLE}` SET need = need & ~{bit} WHERE _id = ?", (entry.rowid,))
            else:
                conn.execute(f"DELETE FROM `{schema.TABLE}` WHERE _id = ?", (entry.rowid,))
            conn.execute("DELETE FROM tq_tries WHERE dest = ? AND id = ?", (bit, entry.rowid))
            delta.add_row(need, dead, need & ~bit, dead & ~bit)

        self._settle(_entries(entry), delivered, as_read=True)

    def _tried(self, entries: Sequence[Entry], reason: str, dead_letter: bool) -> None:
        def failed(conn: sqlite3.Connection, delta: Delta, entry: Entry, need: int, dead: int) -> None:
            bit = schema.BIT[entry.dest]
            if not need & bit:
                return  # cleared meanwhile
            conn.execute(schema.BUMP_TRIES, (bit, entry.rowid, reason, self.clocks.wall()))
            if dead_letter:
                conn.execute(f"UPDATE `{schema.TABLE}` SET dead = dead | {bit} WHERE _id = ?", (entry.rowid,))
                delta.add_row(need, dead, need, dead | bit)

        self._settle(entries, failed)

    def retry_later(self, entry: Union[Entry, Sequence[Entry]], reason: str) -> None:
        """Not delivered this time: pending again at its place at the head of the queue."""
        self._tried(_entries(entry), reason, dead_letter=False)

    def reject(self, entry: Union[Entry, Sequence[Entry]], reason: str) -> None:
        """The destination refused it for good: kept as its dead letter, with the reason."""
        self._tried(_entries(entry), reason, dead_letter=True)

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
                self.in_flight = {name: () for name in schema.DESTINATIONS}
                self.live_from = {name: 0 for name in schema.DESTINATIONS}
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
