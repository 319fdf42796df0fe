"""What a damaged queue file gives back: 1,000 pending records, N garbled pages, then the queue
opened as the plugin opens it (open_queue, then the worker's integrity check).

    .venv/bin/python bench/salvage.py [--records 1000] [--pages 3] [--seeds 1 2 3]

Prints one markdown row per seed: the file's pages, the pages garbled, the rows still readable
one at a time from the damaged file, and what is pending in the queue afterwards.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octoprint_tracking_queued.store import DB_FILE, open_queue
from tests.harness.damage import garble, readable, record


def run(records: int, pages: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        q = open_queue(folder, max_records=records * 2)
        q.put_many(record(n) for n in range(records))
        q.close()
        path = os.path.join(folder, DB_FILE)
        total = os.path.getsize(path) // 4096
        hit = garble(path, pages, seed)
        can_read = len(readable(path, records))
        q = open_queue(folder, max_records=records * 2)
        q.verify()  # the worker's first step: the integrity check
        stats = q.stats()
        q.close()
        aside = [p for p in os.listdir(folder) if ".unusable-" in p and not p.endswith(("-wal", "-shm"))]
        return {
            "seed": seed,
            "file pages": total,
            "garbled": len(hit),
            "readable one by one": can_read,
            "pending after": stats["pending"],
            "salvaged": stats.get("salvaged"),
            "unreadable": stats.get("unreadable"),
            "moved aside": len(aside),
            "recovered": stats["recovered"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--pages", type=int, nargs="+", default=[3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    rows = [run(args.records, n, seed) for n in args.pages for seed in args.seeds]
    keys = [k for k in rows[0] if k != "recovered"]
    print("| " + " | ".join(keys) + " |")
    print("|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    for row in rows:
        print(f"seed {row['seed']}: {row['recovered']}")
    print(f"sqlite {sqlite3.sqlite_version}")


if __name__ == "__main__":
    main()
