"""Opening the queue the one way the server, the command line and the bench do: check the file
found on disk, migrate it to our schema, register this boot; a bad file is moved aside and a
new queue started, and where nothing on disk can be used, records are kept in memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import Callable, Optional, Tuple

from .. import files
from . import ledger, schema
from .boots import Boots
from .file import (
    DB_FILE,
    QueueDamaged,
    QueueFile,
    QueueUnusable,
    check_schema,
    classify,
    decode,
    inspect,
    move_aside,
    pages_named,
)
from .salvage import Salvaged, salvage

Traits = Callable[[dict], Tuple[Optional[str], int]]

logger = logging.getLogger("octoprint.plugins.tracking_queued.queue")


def open_file(folder: str, boots: Boots, traits: Traits, problem: Optional[Exception] = None):
    """(the open file, why a bad file was replaced or None). `problem`: the open file was found
    bad after it was opened (`Writer.verify`)."""
    qf = None
    if problem is None:
        try:
            inspect(os.path.join(folder, DB_FILE))
            qf = QueueFile.connect(folder)
            prepare(qf.putter, boots, traits)
            files.tighten(folder)  # owner only: the file, its WAL and shm, moved-aside files
            files.sync_names(folder)
            return qf, None
        except (sqlite3.DatabaseError, QueueUnusable) as error:
            if qf is not None:
                qf.close()
            problem = classify(error) if isinstance(error, sqlite3.DatabaseError) else error
    damaged = isinstance(problem, QueueDamaged)
    report = problem.report if isinstance(problem, QueueDamaged) else ""
    try:
        moved = move_aside(folder)
        qf = QueueFile.connect(folder)
        prepare(qf.putter, boots, traits)
        # Before the fresh queue takes a record: what the bad file still holds, in its place.
        saved = salvage(moved, qf.putter, boots, traits, check=damaged and not report)
        report = report or saved.report
        files.tighten(folder)
        files.sync_names(folder)  # the move aside and the new file: both, or neither, after a cut
        recovered = replaced(problem, saved, pages_named(report), os.path.basename(moved))
    except (OSError, sqlite3.DatabaseError, QueueUnusable) as error:
        # Nothing on disk can be used (read-only folder, ...): keep tracking in memory rather
        # than failing to load; the status tells the user to fix the folder.
        qf = QueueFile.connect(":memory:")
        prepare(qf.putter, boots, traits)
        recovered = (
            f"{DB_FILE} could not be used ({problem}) and could not be moved aside "
            f"or replaced ({error}); records are kept in memory until OctoPrint restarts."
        )
    if report:
        logger.debug("The integrity check of the replaced %s says:\n%s", DB_FILE, report)
    logger.warning(recovered)
    return qf, recovered


def replaced(problem: Exception, saved: Salvaged, pages: int, kept_as: str) -> str:
    """The one sentence the status and the log say about a file that was replaced."""
    damaged = isinstance(problem, QueueDamaged)
    if damaged:
        what = f"{DB_FILE} was damaged" + (f" ({pages} page{'s' * (pages != 1)})" if pages else "")
    else:
        what = f"{DB_FILE} could not be used ({problem})"
    if saved.saved or saved.unreadable:
        return (
            f"{what}; {saved.saved} record{'s' * (saved.saved != 1)} saved, {saved.unreadable} unreadable; "
            f"the {'damaged ' * damaged}file is kept as {kept_as}."
        )
    return f"{what}; a new queue was started and the file is kept as {kept_as}."


def prepare(conn: sqlite3.Connection, boots: Boots, traits: Traits) -> None:
    """Checks the file, migrates it to our schema and registers this boot, in one transaction."""
    try:
        check_schema(conn, integrity=False)
        with conn:  # also proves the file is writable
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < 2:
                schema.MIGRATIONS[version](conn)
            for statement in (schema.CREATE_COUNTERS, schema.CREATE_BOOTS, schema.CREATE_TRIES):
                conn.execute(statement)
            boots.register(conn)
            if version < 2:
                _fill_v2_rows(conn, boots.observed_now(), traits)
            if version < 3:
                schema.MIGRATIONS[2](conn)
                _move_tries(conn)
                ledger.migrate_v2_counters(conn)
            for statement in schema.INDEXES:
                conn.execute(statement)
            if version < schema.VERSION:
                kept = ledger.Ledger(conn)
                kept.recount(conn)
                kept.store(conn)
            # Also the proof that the file is writable, even when nothing needed migrating.
            conn.execute(f"PRAGMA user_version = {schema.VERSION}")
    except sqlite3.DatabaseError as error:
        raise classify(error) from error


def _fill_v2_rows(conn: sqlite3.Connection, now: float, traits: Traits) -> None:
    """Rows of schema 1: their wall clock time may have been wrong, so their age starts now (they
    are not dropped for age before max_age_days from now) and their time is uncertain."""
    updates = []
    for rowid, data, status in conn.execute(f"SELECT _id, data, status FROM `{schema.TABLE}`").fetchall():
        record = decode(data)
        coalesce, rank = traits(record) if record else (None, schema.RANK_EVENT)
        # persist-queue's in-flight rows of a crashed run are pending again.
        state = schema.V2_FAILED if int(status) == schema.V2_FAILED else schema.READY
        updates.append((record and record["event"], coalesce, rank, now, state, rowid))
    conn.executemany(
        f"UPDATE `{schema.TABLE}` SET event = ?, coalesce = ?, rank = ?, observed = ?, status = ? WHERE _id = ?",
        updates,
    )
    if updates:
        logger.info("Upgraded %d queued records to queue schema 2", len(updates))


def _move_tries(conn: sqlite3.Connection) -> None:
    """Schema 2 kept a record's tries in its JSON; schema 3 keeps them per destination."""
    rows = []
    for rowid, data in conn.execute(
        f"SELECT _id, data FROM `{schema.TABLE}` WHERE CAST(data AS TEXT) LIKE '%\"attempts\"%'"
    ):
        record = decode(data) or {}
        attempts = record.get("attempts")
        if isinstance(attempts, int) and attempts > 0:
            rows.append(
                (schema.BIT[schema.TRACKING], rowid, attempts, record.get("last_error"), record.get("last_attempt"))
            )
    conn.executemany(schema.UPSERT_TRIES, rows)
