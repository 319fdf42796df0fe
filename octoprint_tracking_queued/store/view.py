"""The read side of the queue: stats, pages and counts, for the API, the command line and the
settings tab. A view never writes; a view of a queue another process owns counts the table,
since the owner's memory may be ahead of what it has committed."""

from __future__ import annotations

import sqlite3
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..clock import Clocks
from . import schema
from .boots import Boots
from .file import QueueFile, decode
from .ledger import GLOBAL, PER_DESTINATION, PER_EVENT, Ledger

PENDING, IN_FLIGHT, FAILED = "pending", "in_flight", "failed"
SCOPES = ("pending", "failed", "all")
COUNTERS = (
    "delivered",
    "dropped_cap",
    "dropped_age",
    "superseded",
    "undecodable",
    "cleared",
    "store_failed",
    "salvaged",
    "unreadable",
    "partial_rejected",
)


def scope_sql(scope: str, dest: str = schema.TRACKING) -> str:
    """SQL: the rows of a scope, for one destination."""
    bit = schema.BIT[dest]
    return {PENDING: schema.live(bit), FAILED: schema.dead(bit), "all": f"(need & {bit}) != 0"}[scope]


class View:
    """What the queue holds, for reading."""

    def __init__(
        self, qf: QueueFile, boots: Boots, max_records: int, max_age_days: int, read_only: bool = False
    ) -> None:
        self.qf = qf
        self.boots = boots
        self.max_records = max_records
        self.max_age_days = max_age_days
        self.read_only = read_only
        self.ledger = Ledger(qf.getter, exact=read_only)
        self.recovered: Optional[str] = None  # why a bad file was moved aside, for the status
        self.store_error: Optional[str] = None  # set while records cannot be stored
        self.unsaved_failures = 0  # store failures not yet counted on disk
        # The rows each destination is sending (one, or a batch): memory only, after a crash
        # they are pending again.
        self.in_flight: Dict[str, Tuple[int, ...]] = {name: () for name in schema.DESTINATIONS}
        # Per destination, a rowid no live row of it is below (the writer moves it as it sends):
        # finding a destination's oldest row never walks the rows only another one still needs.
        self.live_from: Dict[str, int] = {name: 0 for name in schema.DESTINATIONS}

    @property
    def clocks(self) -> Clocks:
        return self.boots.clocks

    @property
    def folder(self) -> str:
        return self.qf.folder

    @property
    def memory_only(self) -> bool:
        return self.qf.memory_only

    @property
    def clock_confirmed(self) -> bool:
        return self.boots.current.confirmed

    def observed_now(self) -> float:
        return self.boots.observed_now()

    def close(self) -> None:
        self.qf.close()

    def counts(self) -> Ledger:
        # A reader beside the server has no memory of the owner's writes: it counts.
        return Ledger(self.qf.getter, exact=True) if self.read_only else self.ledger

    def count(self, scope: str = PENDING, dest: str = schema.TRACKING) -> int:
        counts = self.counts()
        live, dead = counts.live(dest), counts.dead[dest]
        return {PENDING: live, FAILED: dead, "all": live + dead}[scope]

    def stats(self, dest: str = schema.TRACKING) -> Dict[str, Any]:
        with self.qf.lock:
            counts = self.counts()
            in_flight = len(self.in_flight[dest])
            counters = {name: counts.counter(name, dest) for name in PER_DESTINATION if name in COUNTERS}
            counters.update({name: counts.counter(name) for name in GLOBAL if name in COUNTERS})
            counters["store_failed"] += self.unsaved_failures
            oldest = None
            if counts.live(dest):  # else no need to look (and a look would walk every row)
                oldest = self.qf.getter.execute(
                    f"SELECT data, boot, mono, timestamp, observed FROM `{schema.TABLE}` "
                    f"WHERE {scope_sql(PENDING, dest)} AND _id >= ? ORDER BY _id LIMIT 1",
                    (self.live_from[dest],),
                ).fetchone()
            oldest_time = oldest_age = None
            oldest_certain = True
            if oldest:
                record = decode(oldest[0]) or {}
                oldest_time, oldest_certain = self.boots.timing(oldest[1], oldest[2], record.get("created", oldest[3]))
                if oldest[4] is not None:
                    oldest_age = max(0.0, self.observed_now() - oldest[4])
            return {
                PENDING: counts.live(dest) - in_flight,
                IN_FLIGHT: in_flight,
                FAILED: counts.dead[dest],
                **{name: counters[name] for name in COUNTERS},
                "by_event": {name: counts.per_event(name) for name in PER_EVENT},
                "oldest_pending": oldest_time,
                "oldest_pending_age": oldest_age,
                "oldest_pending_certain": oldest_certain,
                "clock_confirmed": self.clock_confirmed,
                "store_error": self.store_error,
                "recovered": self.recovered,
                "max_records": self.max_records,
                "max_age_days": self.max_age_days,
                "disk_bytes": self.qf.disk_bytes(),
            }

    def page(
        self,
        scope: str = PENDING,
        offset: int = 0,
        limit: int = 50,
        after: Optional[int] = None,
        before: Optional[int] = None,
        last: bool = False,
        dest: str = schema.TRACKING,
    ) -> List[dict]:
        """Records of a scope, oldest first, each with its `status`, `rowid` and `event_time`.

        `after`/`before` (a rowid) or `last` page by key, as fast at the end of 100,000
        records as at the start. An `offset` is walked from the nearer end of the scope
        (its size is kept, not counted), so the last page costs what the first does."""
        where, args, order = scope_sql(scope, dest), [schema.BIT[dest]], "ASC"
        offset, limit = int(offset), int(limit)
        if after is not None:
            where, args = f"{where} AND _id > ?", args + [after]
        elif before is not None:
            where, args, order = f"{where} AND _id < ?", args + [before], "DESC"
        elif last:
            order = "DESC"
        with self.qf.lock:
            if offset and order == "ASC" and not self.read_only:
                total = self.count(scope, dest)
                if offset >= total:
                    return []
                if offset > total // 2:  # rows [offset, offset + limit) are the nearer end's
                    order, limit, offset = "DESC", min(limit, total - offset), max(0, total - offset - limit)
            sql = f"{_SELECT_PAGE} WHERE {where} ORDER BY _id {order} LIMIT ?"
            args.append(limit)
            if offset:
                sql += " OFFSET ?"
                args.append(offset)
            rows = self.qf.getter.execute(sql, args).fetchall()
            if order == "DESC":
                rows.reverse()
            return [self._describe(row, dest) for row in rows]

    def _describe(self, row: sqlite3.Row, dest: str) -> dict:
        rowid, data, dead, boot, mono, created, attempts, last_error, last_attempt = row
        record = decode(data) or {"event": None, "params": {}, "last_error": "cannot be decoded"}
        if dead & schema.BIT[dest]:
            state = FAILED
        else:
            state = IN_FLIGHT if rowid in self.in_flight[dest] else PENDING
        if attempts:
            record.update(attempts=attempts, last_error=last_error, last_attempt=last_attempt)
        when, certain = self.boots.timing(boot, mono, record.get("created", created))
        return {**record, "rowid": rowid, "status": state, "event_time": when, "time_uncertain": not certain}

    def iter_records(self, scope: str = "all", batch: int = 500, dest: str = schema.TRACKING) -> Iterator[dict]:
        after = None
        while True:
            rows = self.page(scope, limit=batch, after=after, dest=dest)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1]["rowid"]


# A record with its tries for one destination (the first parameter).
_SELECT_PAGE = (
    f"SELECT _id, data, dead, boot, mono, timestamp, t.attempts, t.last_error, t.last_attempt "
    f"FROM `{schema.TABLE}` LEFT JOIN tq_tries AS t ON t.dest = ? AND t.id = _id"
)
