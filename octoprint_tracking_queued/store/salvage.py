"""Salvage: every record a damaged queue file still holds, copied into the fresh queue that
replaces it, with its id, place, times and destinations.

A damaged page costs the rows on it, not the file: the rows are read in order of their id,
and where a read fails the ids after it are tried one at a time until the rows read again
(the same one-by-one read that finds the readable rows by hand). The moved-aside file is
never opened itself: a scratch copy is, so the kept file stays as it was, byte for byte.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from . import schema
from .boots import Boots
from .file import CHECK_LINES, decode
from .ledger import GLOBAL, PER_DESTINATION, Delta, Key, Ledger

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")
Traits = Callable[[dict], Tuple[Optional[str], int]]

# After a failed read, this many ids in a row must read (row or no row) before a scan resumes.
RESUME = 32
# With no sequence to bound the ids, this many ids in a row without a row end the search.
NO_ROW_LIMIT = 10000
_SUFFIXES = ("", "-wal", "-shm")
CHECK = f"PRAGMA quick_check({CHECK_LINES})"
_BOOTS = "SELECT key, boot_id, t0, m0, last_mono, offset, confirmed FROM tq_boots"
_INSERT_BOOT = "INSERT INTO tq_boots (key, boot_id, t0, m0, last_mono, offset, confirmed) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_ROW = (
    f"INSERT INTO `{schema.TABLE}` (_id, data, timestamp, status, event, coalesce, rank, boot, mono, observed, "
    "need, dead) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class Salvaged:
    saved: int = 0  # records copied into the fresh queue
    unreadable: int = 0  # records the damaged file held that could not be read
    report: str = ""  # the integrity check of the file, when asked for


def salvage(moved: str, conn: sqlite3.Connection, boots: Boots, traits: Traits, check: bool = False) -> Salvaged:
    """Copies what can be read from the moved-aside file `moved` into the fresh queue of `conn`
    (just prepared, still empty), in one transaction; with `check`, also runs the integrity
    check on it (damage found while opening names no pages). Never raises: a file that yields
    nothing yields Salvaged(0, 0)."""
    report = ""
    scratch = moved + ".salvage"
    try:
        for suffix in ("", "-wal"):  # the WAL may hold the latest commits
            if os.path.exists(moved + suffix):
                shutil.copyfile(moved + suffix, scratch + suffix)
        source = sqlite3.connect(scratch)
        try:
            if check:
                try:
                    report = "\n".join(row[0] for row in source.execute(CHECK))
                except sqlite3.DatabaseError as error:
                    report = f"the check broke off: {error}"
            found = _read(source)
        finally:
            source.close()
    except (OSError, sqlite3.Error) as error:
        logger.debug("Nothing salvaged from %s: %s", os.path.basename(moved), error)
        return Salvaged(report=report)
    finally:
        for suffix in _SUFFIXES:
            if os.path.exists(scratch + suffix):
                os.remove(scratch + suffix)
    if found is None:
        return Salvaged(report=report)
    try:
        saved = _write(conn, found, boots, traits)
    except sqlite3.Error as error:  # the fresh queue stays empty rather than half filled
        logger.warning("Could not copy the records read from %s: %s", os.path.basename(moved), error)
        saved = Salvaged()
    saved.report = report
    return saved


@dataclass
class _Found:
    columns: List[str]
    rows: List[tuple]
    failed_ids: int
    undecodable: int
    expected: Optional[int]  # rows the file's kept counts say it held
    sequence: int
    boots: List[tuple]
    tries: List[tuple]
    counters: Dict[str, int]


def _try(read: Callable[[], list]) -> list:
    """What a read returns, or what it got before it failed."""
    got: list = []
    try:
        got.extend(read())
    except sqlite3.DatabaseError:
        pass
    return got


def _read(source: sqlite3.Connection) -> Optional[_Found]:
    if schema.TABLE not in schema.tables(source):
        return None
    columns = schema.columns(source)
    if columns not in schema.known_columns():
        return None  # not our table: nothing in it is a record of ours
    counters = dict(_try(lambda: source.execute(schema.READ_COUNTERS).fetchall()))
    seq = _try(lambda: source.execute(schema.SEQUENCE, (schema.TABLE,)).fetchall())
    sequence = int(seq[0][0]) if seq else 0
    rows, failed_ids = _rows(source, columns, sequence or None)
    good = []
    for row in rows:
        record = decode(row[1])
        if record is not None:
            good.append(row)
    expected = sequence - counters["removed"] if sequence and "removed" in counters else None
    return _Found(
        columns,
        good,
        failed_ids,
        len(rows) - len(good),
        expected,
        sequence,
        _try(lambda: source.execute(_BOOTS).fetchall()),
        _try(lambda: source.execute("SELECT dest, id, attempts, last_error, last_attempt FROM tq_tries").fetchall()),
        counters,
    )


def _rows(source: sqlite3.Connection, columns: List[str], bound: Optional[int]) -> Tuple[List[tuple], int]:
    """The readable rows in id order, and how many ids could not be read."""
    names = ", ".join(columns)
    scan = f"SELECT {names} FROM `{schema.TABLE}` WHERE _id > ? ORDER BY _id"
    one = f"SELECT {names} FROM `{schema.TABLE}` WHERE _id = ?"
    rows: List[tuple] = []
    last, failed = 0, 0
    while bound is None or last < bound:
        try:
            for row in source.execute(scan, (last,)):
                # A garbled page can give rows with made-up ids: only a record moves the scan on.
                if row[0] > last and (bound is None or row[0] <= bound) and decode(row[1]) is not None:
                    rows.append(row)
                    last = row[0]
            return rows, failed
        except sqlite3.DatabaseError:
            pass
        # The scan broke after `last`: try the ids one at a time until they read again.
        streak = empty = 0
        while streak < RESUME and (bound is None or last < bound) and empty < NO_ROW_LIMIT:
            last += 1
            try:
                row = source.execute(one, (last,)).fetchone()
            except sqlite3.DatabaseError:
                failed += 1
                streak = 0
                continue
            streak += 1
            empty = 0 if row else empty + 1
            if row:
                rows.append(row)
        if empty >= NO_ROW_LIMIT:
            break
    return rows, failed


def _write(conn: sqlite3.Connection, found: _Found, boots: Boots, traits: Traits) -> Salvaged:
    now = boots.observed_now()
    saved = len(found.rows)
    if found.expected is not None:
        unreadable = max(0, found.expected - saved)
    else:
        unreadable = found.failed_ids + found.undecodable
    with conn:
        # The records' boots keep their keys, so their times read as before; this boot is
        # registered again after them (found among them when OctoPrint restarted within it).
        conn.execute("DELETE FROM tq_boots")
        conn.executemany(_INSERT_BOOT, found.boots)
        conn.executemany(_INSERT_ROW, [_as_v3(found.columns, row, now, traits) for row in found.rows])
        ids = {row[0] for row in found.rows}
        conn.executemany(schema.UPSERT_TRIES, [t for t in found.tries if t[1] in ids])
        conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (found.sequence, schema.TABLE))
        boots.register(conn)
        kept = Ledger(conn)
        kept.recount(conn)
        kept.store(conn)
        delta = Delta()
        for name, value in found.counters.items():  # the counts since install go on
            key = Key.parse(name)
            if key.name in PER_DESTINATION or key.name in GLOBAL:
                delta.count(key.name, value, key.dest, key.event)
        delta.count("salvaged", saved)
        delta.count("unreadable", unreadable)
        delta.write(conn)
    return Salvaged(saved, unreadable)


def _as_v3(columns: List[str], row: tuple, now: float, traits: Traits) -> tuple:
    """A row of any schema version as schema 3 stores it."""
    value = dict(zip(columns, row))
    if "need" not in value:  # versions 1 and 2 had one destination; failed rows were its dead letters
        bit = schema.BIT[schema.TRACKING]
        value["need"], value["dead"] = bit, bit if value["status"] == schema.V2_FAILED else 0
    if "observed" not in value:  # version 1: as its migration does, the age starts now
        record = decode(value["data"]) or {}
        coalesce, rank = traits(record)
        value.update(event=record.get("event"), coalesce=coalesce, rank=rank, boot=None, mono=None, observed=now)
    return (
        value["_id"],
        value["data"],
        value["timestamp"],
        schema.READY,
        value["event"],
        value["coalesce"],
        value["rank"],
        value["boot"],
        value["mono"],
        value["observed"],
        value["need"],
        value["dead"],
    )
