"""The queue file's schema: persist-queue's table plus our columns and tables, as named SQL.

persist-queue creates `ack_queue_records` (_id, data, timestamp, status); version 2 added the
columns that make eviction, coalescing and clock-safe ages cheap, version 3 the per-destination
state: `need` (the destinations that still need the record) and `dead` (those that refused it
for good, a subset of `need`), one bit per destination. A row whose `need` is empty is gone.
`PRAGMA user_version` holds the version; each step of `MIGRATIONS` takes a file one version up
inside the transaction that opens it.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Dict, List, Tuple

from persistqueue.sqlackqueue import AckStatus

QUEUE_NAME = "records"
TABLE = "ack_queue_records"
VERSION = 3

# Where records go, in bit order: the public tracking server, and a print farm's own collector.
TRACKING, COLLECTOR = "tracking", "collector"
DESTINATIONS = (TRACKING, COLLECTOR)
BIT = {name: 1 << index for index, name in enumerate(DESTINATIONS)}

READY = int(AckStatus.ready)
# Version 2 kept dead letters as persist-queue's ack_failed; version 3 in `dead`.
V2_FAILED = int(AckStatus.ack_failed)

PQ_COLUMNS = ["_id", "data", "timestamp", "status"]
V2_COLUMNS = {
    "event": "TEXT",  # tracking event name, for counting drops per kind
    "coalesce": "TEXT",  # records with the same key supersede each other; NULL: never
    "rank": "INTEGER NOT NULL DEFAULT 2",  # eviction order at the cap: lowest first
    "boot": "INTEGER",  # tq_boots.key of the boot it was made in
    "mono": "REAL",  # monotonic clock at creation
    "observed": "REAL",  # observed clock at creation (clock.py): its age for max_age_days
}
V3_COLUMNS = {
    "need": f"INTEGER NOT NULL DEFAULT {BIT[TRACKING]}",
    "dead": "INTEGER NOT NULL DEFAULT 0",
}
COLUMNS = PQ_COLUMNS + list(V2_COLUMNS) + list(V3_COLUMNS)
OWN_TABLES = {TABLE, "tq_counters", "tq_boots", "tq_tries", "sqlite_sequence"}

# What a record is worth when the queue is full (catalogue.py gives each event its rank).
RANK_EVENT = 2


def live(bit: int) -> str:
    """SQL: the record still waits for the destination of `bit` (not sent, not refused)."""
    return f"(need & ~dead & {bit}) != 0"


def dead(bit: int) -> str:
    return f"(dead & {bit}) != 0"


# ~~ named statements

CREATE_COUNTERS = "CREATE TABLE IF NOT EXISTS tq_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
CREATE_BOOTS = (
    "CREATE TABLE IF NOT EXISTS tq_boots (key INTEGER PRIMARY KEY, boot_id TEXT UNIQUE NOT NULL, "
    "t0 REAL NOT NULL, m0 REAL NOT NULL, last_mono REAL NOT NULL, offset REAL NOT NULL, "
    "confirmed INTEGER NOT NULL)"
)
# A record's tries per destination, written only when a try fails: an insert touches nothing here.
CREATE_TRIES = (
    "CREATE TABLE IF NOT EXISTS tq_tries (dest INTEGER NOT NULL, id INTEGER NOT NULL, "
    "attempts INTEGER NOT NULL, last_error TEXT, last_attempt REAL, PRIMARY KEY (dest, id)) WITHOUT ROWID"
)
# Partial indexes: an ordinary event's insert touches none of them.
INDEXES = [
    f"CREATE INDEX IF NOT EXISTS tq_dead ON `{TABLE}` (_id) WHERE dead != 0",
    f"CREATE INDEX IF NOT EXISTS tq_low_value ON `{TABLE}` (rank, _id) WHERE rank < {RANK_EVENT}",
    f"CREATE INDEX IF NOT EXISTS tq_coalesce ON `{TABLE}` (coalesce) WHERE coalesce IS NOT NULL",
]
DROP_V2_INDEXES = ["DROP INDEX IF EXISTS tq_failed"]

INSERT = (
    f"INSERT INTO `{TABLE}` (data, timestamp, status, event, coalesce, rank, boot, mono, observed, need) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SEQUENCE = "SELECT seq FROM sqlite_sequence WHERE name = ?"
READ_COUNTERS = "SELECT name, value FROM tq_counters"
BUMP_COUNTER = (
    "INSERT INTO tq_counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
)
SET_COUNTER = "INSERT OR REPLACE INTO tq_counters (name, value) VALUES (?, ?)"
UPSERT_TRIES = (
    "INSERT INTO tq_tries (dest, id, attempts, last_error, last_attempt) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(dest, id) DO UPDATE SET attempts = excluded.attempts, last_error = excluded.last_error, "
    "last_attempt = excluded.last_attempt"
)
BUMP_TRIES = (
    "INSERT INTO tq_tries (dest, id, attempts, last_error, last_attempt) VALUES (?, ?, 1, ?, ?) "
    "ON CONFLICT(dest, id) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error, "
    "last_attempt = excluded.last_attempt"
)
DELETE_ORPHAN_TRIES = f"DELETE FROM tq_tries WHERE id NOT IN (SELECT _id FROM `{TABLE}`)"


def tally_sql(where: str) -> str:
    """One pass over the rows `where` selects: how many, how many failed anywhere, how many
    wait for nothing but refused destinations, and per destination the live and the dead."""
    parts = ["COUNT(*)", "TOTAL(dead != 0)", "TOTAL(need & ~dead = 0)"]
    for name in DESTINATIONS:
        parts += [f"TOTAL({live(BIT[name])})", f"TOTAL({dead(BIT[name])})"]
    return f"SELECT {', '.join(parts)} FROM `{TABLE}` WHERE {where}"


# ~~ migrations: version -> the step that takes a file from it to the next


def _to_2(conn: sqlite3.Connection) -> None:
    columns = _columns(conn)
    for name, kind in V2_COLUMNS.items():
        if name not in columns:
            conn.execute(f"ALTER TABLE `{TABLE}` ADD COLUMN {name} {kind}")


def _to_3(conn: sqlite3.Connection) -> None:
    columns = _columns(conn)
    for name, kind in V3_COLUMNS.items():
        if name not in columns:
            conn.execute(f"ALTER TABLE `{TABLE}` ADD COLUMN {name} {kind}")
    # Every earlier record was for the tracking server; its dead letters stay dead there.
    bit = BIT[TRACKING]
    conn.execute(
        f"UPDATE `{TABLE}` SET need = {bit}, dead = CASE WHEN status = {V2_FAILED} THEN {bit} ELSE 0 END, "
        f"status = {READY}"
    )
    for statement in DROP_V2_INDEXES:
        conn.execute(statement)


MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], None]] = {0: _to_2, 1: _to_2, 2: _to_3}


def _columns(conn: sqlite3.Connection) -> List[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info(`{TABLE}`)")]


def known_columns() -> List[List[str]]:
    """The column lists a file of ours may have: persist-queue's alone, version 2's, version 3's."""
    return [PQ_COLUMNS, PQ_COLUMNS + list(V2_COLUMNS), COLUMNS]


def tables(conn: sqlite3.Connection) -> set:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def columns(conn: sqlite3.Connection) -> List[str]:
    return _columns(conn)


Tally = Tuple[float, ...]
