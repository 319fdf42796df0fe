"""Where records come in (OctoPrint's event thread: one commit, one fsync each): put, with
coalescing and eviction at the cap; and the transaction every change of the queue runs in,
which writes its `Delta` to the kept counts and applies it to memory after the commit."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Callable, Iterable, Tuple

from . import schema
from .ledger import GLOBAL, PER_EVENT, Delta
from .opener import Traits
from .view import View

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
Work = Callable[[sqlite3.Connection, Delta], None]
ALL = sum(schema.BIT.values())


class Intake(View):
    """Where records come in: put, coalescing and eviction at the cap, and the kept counts
    every change goes through."""

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

    def _busy(self) -> Tuple[str, tuple]:
        """SQL and its arguments: the row is not being sent. A row being sent is never superseded,
        evicted or expired: its answer settles it."""
        rows = tuple(sorted({rowid for batch in self.in_flight.values() for rowid in batch})) or (-1,)
        return f"_id NOT IN ({','.join('?' * len(rows))})", rows

    def _insert(self, conn: sqlite3.Connection, record: dict, delta: Delta) -> None:
        coalesce, rank = self.traits(record)
        if coalesce is not None:
            # The pending record this one supersedes goes in the same transaction.
            spare, busy = self._busy()
            self._drop(conn, f"coalesce = ? AND dead = 0 AND {spare}", (coalesce, *busy), ALL, "superseded", delta)
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
        spare, busy = self._busy()
        victims = [
            row[0]
            for row in conn.execute(
                f"SELECT _id FROM `{schema.TABLE}` WHERE rank < {schema.RANK_EVENT} AND {spare} "
                "ORDER BY rank, _id LIMIT ?",
                (*busy, count),
            )
        ]
        if len(victims) < count:
            victims += [
                row[0]
                for row in conn.execute(
                    f"SELECT _id FROM `{schema.TABLE}` WHERE rank >= {schema.RANK_EVENT} AND {spare} "
                    "ORDER BY _id LIMIT ?",
                    (*busy, count - len(victims)),
                )
            ]
        if victims:
            marks = ",".join("?" * len(victims))
            self._drop(conn, f"_id IN ({marks})", tuple(victims), ALL, "dropped_cap", delta)

    def _save_store_failures(self) -> None:
        failures = self.unsaved_failures

        def save(conn: sqlite3.Connection, delta: Delta) -> None:
            delta.count("store_failed", failures)

        try:
            self._transaction(self.qf.putter, save)
            self.unsaved_failures = 0
        except sqlite3.Error:
            pass  # stays in memory and is tried again on the next put
