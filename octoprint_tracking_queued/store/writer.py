"""The write side of the queue, owned by the runtime alone: put (with coalescing and eviction at
the cap), expire, and per destination next, ack, retry, reject, clear and requeue.

Each change runs in one transaction that also writes its `Delta` to the kept counts; memory
follows after the commit. The producer's insert commits on the FULL connection (one fsync per
record), everything else on the worker's NORMAL one (file.py says why that loses nothing).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from . import schema
from .file import QueueUnusable, inspect
from .ledger import GLOBAL, PER_EVENT, Delta, Ledger
from .opener import Traits, decode, open_file
from .view import View, scope_sql

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
Work = Callable[[sqlite3.Connection, Delta], None]
_ALL = sum(schema.BIT.values())
# A row with what it is needed for, as the next step reads it.
_SELECT_NEXT = (
    f"SELECT _id, data, boot, mono, timestamp, need, dead, t.attempts, t.last_error FROM `{schema.TABLE}` "
    "LEFT JOIN tq_tries AS t ON t.dest = ? AND t.id = _id"
)
_FORGET_TRIES = "DELETE FROM tq_tries WHERE dest = ? AND id IN (SELECT _id FROM `%s` WHERE {where})" % schema.TABLE
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

    @property
    def outgoing(self) -> dict:
        """The record as it is sent: with the time its event really happened."""
        return {**self.record, "event_time": self.event_time}


class Writer(View):
    """Durable FIFO with caps, counters and dead letters per destination. Thread-safe."""

    def __init__(self, traits: Traits, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.traits = traits

    # ~~ the kept counts

    def _transaction(self, conn: sqlite3.Connection, work: Work) -> Delta:
        delta = Delta()
        with self.qf.lock:
            with conn:
                work(conn, delta)
                delta.write(conn)
            self.ledger.apply(delta)
        return delta

    def _drop(self, conn: sqlite3.Connection, where: str, args: tuple, mask: int, name: str, delta: Delta) -> int:
        """Takes the destinations of `mask` off the rows `where` selects, deleting the rows no
        destination needs any more; counts `name` per row and destination. Returns the rows."""
        groups = conn.execute(
            f"SELECT need, dead, event, COUNT(*) FROM `{schema.TABLE}` WHERE {where} GROUP BY need, dead, event", args
        ).fetchall()
        total = 0
        for need, dead, event, count in groups:
            delta.add_row(need, dead, need & ~mask, dead & ~mask, count)
            total += count
            if name in GLOBAL:
                delta.count(name, count)
            else:
                for dest, bit in schema.BIT.items():
                    if need & mask & bit:
                        delta.count(name, count, dest)
            if name in PER_EVENT:
                delta.count(name, count, event=event or "?")
        if total:
            conn.execute(f"DELETE FROM `{schema.TABLE}` WHERE ({where}) AND (need & ~{mask}) = 0", args)
            conn.execute(
                f"UPDATE `{schema.TABLE}` SET need = need & ~{mask}, dead = dead & ~{mask} WHERE {where}", args
            )
        return total

    # ~~ producer side (OctoPrint's event thread: one commit, one fsync)

    def put(self, record: dict) -> bool:
        """Stores a record durably. False when it could not be stored (counted and logged once)."""
        return self.put_many([record]) == 1

    def put_many(self, records: Iterable[dict]) -> int:
        """Stores records in one transaction (tests and benchmarks fill a queue this way)."""
        records = list(records)

        def insert(conn: sqlite3.Connection, delta: Delta) -> None:
            for record in records:
                self._insert(conn, record, delta)
            excess = self.ledger.rows + delta.inserted - delta.removed - self.max_records
            if excess > 0:
                self._evict(conn, excess, delta)

        with self.qf.lock:
            try:
                self._transaction(self.qf.putter, insert)
            except sqlite3.Error as error:
                self.unsaved_failures += len(records)
                if self.store_error is None:
                    logger.error(
                        "Cannot store tracking records (%s); counting them as lost until storing works again", error
                    )
                self.store_error = str(error)
                return 0
            if self.store_error is not None:
                logger.info("Storing tracking records works again; %d could not be stored", self.unsaved_failures)
                self.store_error = None
            if self.unsaved_failures:
                self._save_store_failures()
            return len(records)

    def _busy(self) -> int:
        """A row being sent is never superseded, evicted or expired (one is, at most, in v1)."""
        return next((rowid for rowid in self.in_flight.values() if rowid is not None), -1)

    def _insert(self, conn: sqlite3.Connection, record: dict, delta: Delta) -> None:
        coalesce, rank = self.traits(record)
        if coalesce is not None:
            # The pending record this one supersedes goes in the same transaction.
            self._drop(
                conn, "coalesce = ? AND dead = 0 AND _id != ?", (coalesce, self._busy()), _ALL, "superseded", delta
            )
        mono = self.clocks.mono()
        current = self.boots.current
        conn.execute(
            schema.INSERT,
            (
                json.dumps(record).encode("utf-8"),
                record.get("created") or self.clocks.wall(),
                schema.READY,
                record.get("event"),
                coalesce,
                rank,
                current.key,
                mono,
                current.observed(mono),
                self.ledger.mask,
            ),
        )
        delta.inserted += 1

    def _evict(self, conn: sqlite3.Connection, count: int, delta: Delta) -> None:
        """At the cap: page loads first, then heartbeats, then the oldest of the rest."""
        spare = self._busy()
        victims = [
            row[0]
            for row in conn.execute(
                f"SELECT _id FROM `{schema.TABLE}` WHERE rank < {schema.RANK_EVENT} AND _id != ? "
                "ORDER BY rank, _id LIMIT ?",
                (spare, count),
            )
        ]
        if len(victims) < count:
            victims += [
                row[0]
                for row in conn.execute(
                    f"SELECT _id FROM `{schema.TABLE}` WHERE rank >= {schema.RANK_EVENT} AND _id != ? "
                    "ORDER BY _id LIMIT ?",
                    (spare, count - len(victims)),
                )
            ]
        if victims:
            marks = ",".join("?" * len(victims))
            self._drop(conn, f"_id IN ({marks})", tuple(victims), _ALL, "dropped_cap", delta)

    def _save_store_failures(self) -> None:
        failures = self.unsaved_failures

        def save(conn: sqlite3.Connection, delta: Delta) -> None:
            delta.count("store_failed", failures)

        try:
            self._transaction(self.qf.putter, save)
            self.unsaved_failures = 0
        except sqlite3.Error:
            pass  # stays in memory and is tried again on the next put

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
            dropped.append(self._drop(conn, where, (bound, cutoff, self._busy()), _ALL, "dropped_age", delta))

        self._transaction(self.qf.getter, drop)
        return dropped[0]

    # ~~ consumer side (the worker; NORMAL commits, no fsync)

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
                return Entry(rowid, record, when, certain, dest, attempts or 0)

    def _settle(self, entry: Entry, work: Callable[[sqlite3.Connection, Delta, int, int], None]) -> None:
        """Runs `work` on the entry's row as it is now (a clear may have changed it meanwhile)."""

        def change(conn: sqlite3.Connection, delta: Delta) -> None:
            row = conn.execute(_SELECT_STATE, (entry.rowid,)).fetchone()
            need, dead = row if row else (0, 0)
            work(conn, delta, need, dead)

        with self.qf.lock:
            self.in_flight[entry.dest] = None
            self._transaction(self.qf.getter, change)

    def ack(self, entry: Entry) -> None:
        """Delivered: the destination is off the row (the row goes when none is left), in one transaction."""
        bit = schema.BIT[entry.dest]

        def delivered(conn: sqlite3.Connection, delta: Delta, need: int, dead: int) -> None:
            # Counted even when the row was cleared while it was on its way: it did arrive.
            delta.count("delivered", 1, entry.dest)
            if not need & bit:
                return
            if need & ~bit:
                conn.execute(f"UPDATE `{schema.TABLE}` SET need = need & ~{bit} WHERE _id = ?", (entry.rowid,))
            else:
                conn.execute(f"DELETE FROM `{schema.TABLE}` WHERE _id = ?", (entry.rowid,))
            if entry.attempts:
                conn.execute("DELETE FROM tq_tries WHERE dest = ? AND id = ?", (bit, entry.rowid))
            delta.add_row(need, dead, need & ~bit, dead & ~bit)

        self._settle(entry, delivered)

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
            if not self.memory_only:
                try:
                    self.observe()
                except sqlite3.Error:
                    pass
            self.qf.close()

    def cap_file(self, grow: Optional[int] = 0) -> None:
        """Lets new records grow the file by `grow` pages at most (None: no cap); for tests and benchmarks."""
        self.qf.cap(grow)
