"""Managing the queue: clear and requeue per destination (the API's and the opt-out's), the
destinations new records are for, and the records a destination took but says it dropped."""

from __future__ import annotations

import logging
import sqlite3
from typing import Optional

from . import schema
from .intake import Intake
from .ledger import Delta
from .view import scope_sql

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
_FORGET_TRIES = "DELETE FROM tq_tries WHERE dest = ? AND id IN (SELECT _id FROM `%s` WHERE {where})" % schema.TABLE


class Manager(Intake):
    def count_partial(self, dest: str, rejected: int) -> None:
        """A destination took a batch but says it dropped `rejected` of its records (OTLP's
        partialSuccess): they are delivered as far as the queue goes, and counted."""

        def count(conn: sqlite3.Connection, delta: Delta) -> None:
            delta.count("partial_rejected", rejected, dest)

        if rejected:
            self._transaction(self.qf.getter, count)

    def set_destinations(self, mask: int) -> None:
        """The destinations new records are for (schema.BIT), from now on."""
        with self.qf.lock:
            conn = self.qf.getter
            with conn:
                self.ledger.set_mask(conn, mask)

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
            self.live_from[dest] = 0  # old rows are live again

        return -self._transaction(self.qf.getter, requeue).dead[dest]
