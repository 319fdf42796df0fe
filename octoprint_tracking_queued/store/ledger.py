"""The queue's counts, kept in the transactions that change them, so the status never counts
the table.

A change is a typed `Delta`: what one transaction did to the rows (removed, failed, stuck) and
to each destination (live, dead), plus the named counters users see (delivered, dropped, ...).
It is written to `tq_counters` inside the transaction and applied to memory after the commit.

An insert writes no counter: AUTOINCREMENT's sequence counts inserts, and the destinations an
insert is for (`mask`) change only with the settings, so each destination's live count is its
count at the last change of the mask (`mark`, a sequence number) plus the inserts since.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Dict, NamedTuple, Optional

from . import schema

# Named counters users see, each per destination where it says so.
PER_DESTINATION = ("delivered", "dropped_cap", "dropped_age", "cleared", "partial_rejected")
GLOBAL = ("superseded", "undecodable", "store_failed", "salvaged", "unreadable")
# Also counted per tracking event ("dropped_cap.webui_load").
PER_EVENT = ("dropped_cap", "dropped_age", "superseded")


class Key(NamedTuple):
    """A named counter: `delivered@tracking`, `superseded`, `dropped_cap.webui_load`."""

    name: str
    dest: Optional[str] = None
    event: Optional[str] = None

    def stored(self) -> str:
        text = self.name
        if self.dest:
            text += "@" + self.dest
        if self.event:
            text += "." + self.event
        return text

    @classmethod
    def parse(cls, text: str) -> Key:
        head, _, event = text.partition(".")
        name, _, dest = head.partition("@")
        return cls(name, dest or None, event or None)


_LIVE = {name: Key("live", name).stored() for name in schema.DESTINATIONS}
_DEAD = {name: Key("dead", name).stored() for name in schema.DESTINATIONS}


class Delta:
    """What one transaction changed. Plain dicts and slots: the worker makes one per record."""

    __slots__ = ("removed", "failed", "stuck", "live", "dead", "counters", "inserted")

    def __init__(self) -> None:
        self.removed = 0  # rows deleted
        self.failed = 0  # rows refused by some destination
        self.stuck = 0  # rows that wait for nothing but refusing destinations
        self.live: Dict[str, int] = dict.fromkeys(schema.DESTINATIONS, 0)  # rows each still has to send
        self.dead: Dict[str, int] = dict.fromkeys(schema.DESTINATIONS, 0)  # rows each refused
        self.counters: Dict[Key, int] = {}
        self.inserted = 0  # memory only: the sequence counts inserts on disk

    def count(self, name: str, by: int = 1, dest: Optional[str] = None, event: Optional[str] = None) -> None:
        if by:
            key = Key(name, dest, event)
            self.counters[key] = self.counters.get(key, 0) + by

    def add_row(self, need: int, dead: int, new_need: int, new_dead: int, times: int = 1) -> Delta:
        """The change of `times` rows alike; a row no destination needs any more is deleted."""
        if new_need == 0:
            new_dead = 0
            self.removed += times
        self.failed += times * ((new_dead != 0) - (dead != 0))
        self.stuck += times * (_stuck(new_need, new_dead) - _stuck(need, dead))
        for name, bit in schema.BIT.items():
            self.live[name] += times * (bool(new_need & ~new_dead & bit) - bool(need & ~dead & bit))
            self.dead[name] += times * (bool(new_dead & bit) - bool(dead & bit))
        return self

    def write(self, conn: sqlite3.Connection) -> None:
        """Into the caller's transaction."""
        rows = [
            (name, by) for name, by in (("removed", self.removed), ("failed", self.failed), ("stuck", self.stuck)) if by
        ]
        rows += [(_LIVE[name], by) for name, by in self.live.items() if by]
        rows += [(_DEAD[name], by) for name, by in self.dead.items() if by]
        rows += [(key.stored(), by) for key, by in self.counters.items() if by]
        if rows:
            conn.executemany(schema.BUMP_COUNTER, rows)


class Ledger:
    """The counts in memory, as on disk after the last commit."""

    def __init__(self, conn: sqlite3.Connection, exact: bool = False) -> None:
        """`exact`: count the table (a reader beside the owner, whose memory is ahead of the file)."""
        stored = dict(conn.execute(schema.READ_COUNTERS))
        self.seq = sequence(conn)
        self.removed = stored.get("removed", 0)
        self.failed = stored.get("failed", 0)
        self.stuck = stored.get("stuck", 0)
        self.mark = stored.get("mark", self.seq)
        self.mask = stored.get("mask", schema.BIT[schema.TRACKING])
        self.live_base = {name: stored.get(Key("live", name).stored(), 0) for name in schema.DESTINATIONS}
        self.dead = {name: stored.get(Key("dead", name).stored(), 0) for name in schema.DESTINATIONS}
        self.counters: Counter = Counter()
        for name, value in stored.items():
            key = Key.parse(name)
            if key.name not in ("removed", "failed", "stuck", "mark", "mask", "live", "dead"):
                self.counters[key] = value
        if exact:
            self.recount(conn)

    @property
    def rows(self) -> int:
        return self.seq - self.removed

    def live(self, dest: str) -> int:
        since_mark = self.seq - self.mark if self.mask & schema.BIT[dest] else 0
        return self.live_base[dest] + since_mark

    def counter(self, name: str, dest: Optional[str] = None, event: Optional[str] = None) -> int:
        return self.counters[Key(name, dest, event)]

    def per_event(self, name: str) -> Dict[str, int]:
        return {key.event: value for key, value in self.counters.items() if key.name == name and key.event and value}

    def apply(self, delta: Delta) -> None:
        """After the commit: memory follows the file."""
        self.seq += delta.inserted
        self.removed += delta.removed
        self.failed += delta.failed
        self.stuck += delta.stuck
        for name in schema.DESTINATIONS:
            self.live_base[name] += delta.live[name]
            self.dead[name] += delta.dead[name]
        for key, by in delta.counters.items():
            self.counters[key] += by

    def set_mask(self, conn: sqlite3.Connection, mask: int) -> None:
        """The destinations new records are for, from now on (inside the caller's transaction)."""
        if mask == self.mask:
            return
        for name in schema.DESTINATIONS:
            self.live_base[name] = self.live(name)
        self.mark, self.mask = self.seq, mask
        self._store_base(conn)

    def recount(self, conn: sqlite3.Connection) -> bool:
        """Counts the table; True when the kept counts were off (they are then corrected in memory;
        `store` writes them)."""
        tally = conn.execute(schema.tally_sql("1")).fetchone()
        counted = (
            int(tally[0]),
            int(tally[1]),
            int(tally[2]),
            {name: int(tally[3 + 2 * i]) for i, name in enumerate(schema.DESTINATIONS)},
            {name: int(tally[4 + 2 * i]) for i, name in enumerate(schema.DESTINATIONS)},
        )
        kept = (self.rows, self.failed, self.stuck, {n: self.live(n) for n in schema.DESTINATIONS}, dict(self.dead))
        if counted == kept:
            return False
        rows, self.failed, self.stuck, live, self.dead = counted
        self.removed = self.seq - rows
        self.mark = self.seq
        self.live_base = live
        return True

    def store(self, conn: sqlite3.Connection) -> None:
        """Writes every kept count (after a migration or a recount), in the caller's transaction."""
        conn.executemany(
            schema.SET_COUNTER,
            [("removed", self.removed), ("failed", self.failed), ("stuck", self.stuck)]
            + [(Key("dead", name).stored(), self.dead[name]) for name in schema.DESTINATIONS],
        )
        self._store_base(conn)

    def _store_base(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            schema.SET_COUNTER,
            [("mark", self.mark), ("mask", self.mask)]
            + [(Key("live", name).stored(), self.live_base[name]) for name in schema.DESTINATIONS],
        )


def _stuck(need: int, dead: int) -> bool:
    return need != 0 and need & ~dead == 0


def sequence(conn: sqlite3.Connection) -> int:
    """Rows ever inserted: AUTOINCREMENT's sequence."""
    row = conn.execute(schema.SEQUENCE, (schema.TABLE,)).fetchone()
    return row[0] if row else 0


def migrate_v2_counters(conn: sqlite3.Connection) -> None:
    """Version 2 counted for the one destination there was: its counters become the tracking
    server's; `failed` rows were its dead letters."""
    stored = dict(conn.execute(schema.READ_COUNTERS))
    for name in PER_DESTINATION:
        if name in stored:
            conn.execute("UPDATE tq_counters SET name = ? WHERE name = ?", (Key(name, schema.TRACKING).stored(), name))
