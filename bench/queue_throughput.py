"""Queue put and next+ack throughput, on a clean file and on one with leftover acked rows.

persist-queue keeps acked rows unless told otherwise; our queue deletes them on ack. This
shows what leftover rows (a file from another tool, or an older version) would cost.

    .venv/bin/python bench/queue_throughput.py [records] [leftover]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time

from persistqueue.sqlackqueue import AckStatus

from octoprint_tracking_queued.queue import _TABLE, TrackingQueue


def record(n: int) -> dict:
    return {
        "id": f"{n:032x}",
        "event": "print_done",
        "params": {"origin": "local", "file": "f" * 40, "elapsed": n},
        "post": False,
        "created": time.time(),
        "attempts": 0,
        "last_error": None,
    }


def run(records: int, leftover: int) -> tuple[float, float]:
    folder = tempfile.mkdtemp(prefix="tq-bench-")
    queue = TrackingQueue(folder, max_records=records + leftover + 10)
    if leftover:
        conn = queue._q._putter
        with conn:
            conn.executemany(
                f"INSERT INTO `{_TABLE}` (data, timestamp, status) VALUES (?, 0, ?)",
                ((b"{}", int(AckStatus.acked)) for _ in range(leftover)),
            )
    started = time.perf_counter()
    for n in range(records):
        queue.put(record(n))
    put_rate = records / (time.perf_counter() - started)
    started = time.perf_counter()
    while (entry := queue.next()) is not None:
        queue.ack(entry)
    get_rate = records / (time.perf_counter() - started)
    queue.close()
    return put_rate, get_rate


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    leftover = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    print(f"sqlite {sqlite3.sqlite_version}, {records} records")
    for rows in (0, leftover):
        put_rate, get_rate = run(records, rows)
        print(f"leftover acked rows {rows:>7}: put {put_rate:8.0f}/s   next+ack {get_rate:8.0f}/s")


if __name__ == "__main__":
    main()
