"""Queue put and next+ack throughput, on an empty queue and behind a backlog.

Delivered rows are deleted and counts are kept, not counted, so neither rate should
depend on how many records wait behind the head of the queue.

    .venv/bin/python bench/queue_throughput.py [records] [backlog]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time

from octoprint_tracking_queued.store import open_queue


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


def run(records: int, backlog: int) -> tuple[float, float]:
    folder = tempfile.mkdtemp(prefix="tq-bench-")
    queue = open_queue(folder, max_records=records + backlog + 10)
    started = time.perf_counter()
    for n in range(records):
        queue.put(record(n))
    put_rate = records / (time.perf_counter() - started)
    # The backlog goes behind the records drained below.
    queue.put_many(record(n) for n in range(backlog))
    started = time.perf_counter()
    for _ in range(records):
        queue.ack(queue.next())
    get_rate = records / (time.perf_counter() - started)
    queue.close()
    return put_rate, get_rate


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    backlog = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    print(f"sqlite {sqlite3.sqlite_version}, {records} records")
    for rows in (0, backlog):
        put_rate, get_rate = run(records, rows)
        print(f"backlog {rows:>7}: put {put_rate:8.0f}/s   next+ack {get_rate:8.0f}/s")


if __name__ == "__main__":
    main()
