"""The read side of the queue as the settings tab, the API and the command line show it.

`ReadOnlyQueue` lets the command line look at a queue the running server is using:
opening a `TrackingQueue` would resume in-flight rows (persist-queue's auto_resume) and
might move a file aside, both of which are the owner's business, not a reader's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Iterable

from .delivery import request_params
from .queue import DB_FILE, TrackingQueue


def with_sent_params(records: Iterable[dict]) -> list[dict]:
    """Each record plus `sent`: exactly the parameters its request carries (None if undecodable)."""
    return [{**record, "sent": request_params(record) if record.get("id") else None} for record in records]


class QueueMissing(Exception):
    """There is no queue database yet: nothing was ever tracked in this basedir."""


class _ReadOnlyConnections:
    """Stands in for the persist-queue object: TrackingQueue reads through `_getter` only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._getter = conn
        self._putter = conn
        self.tran_lock = threading.Lock()

    def close(self) -> None:
        self._getter.close()


class ReadOnlyQueue(TrackingQueue):
    """`TrackingQueue`'s stats, count and page over a read-only connection; every write fails."""

    def __init__(self, folder: str, max_records: int = 10000, max_age_days: int = 30) -> None:
        path = os.path.join(folder, DB_FILE)
        if not os.path.exists(path):
            raise QueueMissing(path)
        self.folder = folder
        self.max_records = max_records
        self.max_age_days = max_age_days
        self._clock = time.time
        self._lock = threading.RLock()
        self.recovered = None
        self.store_error = None
        self._unsaved_failures = 0
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        self._q = _ReadOnlyConnections(conn)
        self._rows = 0

