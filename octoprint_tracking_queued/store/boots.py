"""The boots the queue has seen, and the observed clock they give (clock.py says why).

Each row of `tq_boots` is one boot of the machine: when the plugin first ran in it, its
monotonic clock then, how far it got and its last wall-minus-monotonic offset. A record keeps
the key of its boot and its monotonic time, so its age and its true time survive a wall clock
that lies.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Dict, Optional, Tuple

from ..clock import STEP, Boot, Clocks, event_time
from . import schema

_READ = "SELECT key, boot_id, t0, m0, last_mono, offset, confirmed FROM tq_boots"
_INSERT = "INSERT INTO tq_boots (boot_id, t0, m0, last_mono, offset, confirmed) VALUES (?, ?, ?, ?, ?, ?)"
_OBSERVE = "UPDATE tq_boots SET last_mono = ?, offset = ?, confirmed = ? WHERE key = ?"
_LATEST_RECORD = f"SELECT observed FROM `{schema.TABLE}` ORDER BY _id DESC LIMIT 1"
_FORGET_UNUSED = (
    f"DELETE FROM tq_boots WHERE key != ? AND key NOT IN "
    f"(SELECT DISTINCT boot FROM `{schema.TABLE}` WHERE boot IS NOT NULL)"
)


def read(conn: sqlite3.Connection) -> Dict[int, Boot]:
    return {row[0]: Boot(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6])) for row in conn.execute(_READ)}


class Boots:
    """This boot and the earlier ones that records still refer to."""

    def __init__(self, clocks: Clocks) -> None:
        self.clocks = clocks
        self.known: Dict[int, Boot] = {}
        self.current = Boot(-1, "", 0.0, 0.0, 0.0, 0.0, False)

    def register(self, conn: sqlite3.Connection) -> None:
        """Finds this boot in the file, or adds it (inside the caller's transaction)."""
        boot_id = self.clocks.boot_id()
        self.known = read(conn)
        for boot in self.known.values():
            if boot.boot_id == boot_id:  # OctoPrint restarted within the same boot
                self.current = boot
                return
        # A new boot: the observed clock goes on from the latest time seen before it,
        # so time while the machine was off never ages a record.
        latest = max((b.last_observed for b in self.known.values()), default=0.0)
        row = conn.execute(_LATEST_RECORD).fetchone()
        if row and row[0] is not None:
            latest = max(latest, row[0])
        mono, wall = self.clocks.mono(), self.clocks.wall()
        key = conn.execute(
            _INSERT, (boot_id, latest, mono, mono, wall - mono, int(bool(self.clocks.synced())))
        ).lastrowid
        self.known = read(conn)
        self.current = self.known[key]

    def look_up(self, conn: sqlite3.Connection) -> None:
        """A reader's view: this boot if the owner registered it, else a stand-in."""
        self.known = read(conn)
        boot_id = self.clocks.boot_id()
        current = [b for b in self.known.values() if b.boot_id == boot_id]
        mono, wall = self.clocks.mono(), self.clocks.wall()
        self.current = current[0] if current else Boot(-1, boot_id, 0.0, mono, mono, wall - mono, False)

    def observed_now(self) -> float:
        return self.current.observed(self.clocks.mono())

    def observe(self, conn: sqlite3.Connection) -> None:
        """Remembers how far this boot's clocks got, and whether the wall clock is known good."""
        boot = self.current
        mono, wall = self.clocks.mono(), self.clocks.wall()
        offset = wall - mono
        # A step of the wall clock against the monotonic one is what an NTP sync does.
        stepped = abs(offset - boot.offset) > STEP
        boot.confirmed = boot.confirmed or stepped or bool(self.clocks.synced())
        boot.last_mono, boot.offset = mono, offset
        with conn:
            conn.execute(_OBSERVE, (mono, offset, int(boot.confirmed), boot.key))

    def forget_unused(self, conn: sqlite3.Connection) -> None:
        """Boots no record refers to any more (inside the caller's transaction)."""
        conn.execute(_FORGET_UNUSED, (self.current.key,))
        self.known = read(conn)

    def timing(self, boot: Optional[int], mono: Optional[float], created: Any) -> Tuple[float, bool]:
        """(event time, certain) of a record made in `boot` at `mono`, queued at wall time `created`."""
        created = created if isinstance(created, (int, float)) else 0
        return event_time(self.known.get(boot) if boot is not None else None, mono, created, self.current, self.clocks)
