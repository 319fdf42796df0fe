"""Damage a queue file the way a cheap SD card does after a power cut: whole pages garbled.

`garble` overwrites most of N pages of the records table (chosen by a seed) with random
bytes; `readable` counts the rows that can still be read one at a time, the figure a
salvage must reach. Used by tests/faults/test_faults_salvage.py and bench/salvage.py.
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import List, Sequence
from urllib.parse import quote

TABLE = "ack_queue_records"


def record(n: int, size: int = 0) -> dict:
    """A pending record like the plugin's, `size` bytes of padding in its parameters."""
    return {
        "id": f"{n:032x}",
        "event": "print_done",
        "params": {"n": n, "blob": "x" * size} if size else {"n": n},
        "post": False,
        "created": 1_700_000_000.0 + n,
    }


def table_pages(path: str) -> List[int]:
    """The pages (1-based) of the records table's b-tree, leaves and interior alike."""
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(path, "rb") as f:
        data = f.read()
    pages, todo = [], [root]
    while todo:  # walk the b-tree from its root: interior pages (0x05) list their children
        page = todo.pop()
        pages.append(page)
        base = (page - 1) * page_size
        head = base + (100 if page == 1 else 0)
        if data[head] == 0x05:
            cells = int.from_bytes(data[head + 3 : head + 5], "big")
            todo.append(int.from_bytes(data[head + 8 : head + 12], "big"))
            for i in range(cells):
                offset = int.from_bytes(data[head + 12 + 2 * i : head + 14 + 2 * i], "big")
                todo.append(int.from_bytes(data[base + offset : base + offset + 4], "big"))
    return sorted(pages)


def garble(path: str, count: int, seed: int, page_size: int = 4096) -> Sequence[int]:
    """Random bytes over most of `count` pages from the table's middle (its leaves, not its
    first or last); returns the pages. The file must have no WAL left (close it first)."""
    rng = random.Random(seed)
    pages = table_pages(path)
    middle = pages[len(pages) // 5 : len(pages) - len(pages) // 5] or pages
    chosen = sorted(rng.sample(middle, min(count, len(middle))))
    with open(path, "r+b") as f:
        for page in chosen:
            start = (page - 1) * page_size + page_size // 16  # most of the page, not its very start
            f.seek(start)
            f.write(bytes(rng.getrandbits(8) for _ in range(page_size - page_size // 8)))
    return chosen


def readable(path: str, last_id: int) -> List[int]:
    """The ids in 1..last_id whose row can be read and decoded on its own (SELECT ... WHERE _id = ?)."""
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    found = []
    try:
        for rowid in range(1, last_id + 1):
            try:
                row = conn.execute(f"SELECT data FROM `{TABLE}` WHERE _id = ?", (rowid,)).fetchone()
                if row is not None and isinstance(json.loads(row[0]), dict):
                    found.append(rowid)
            except (sqlite3.DatabaseError, ValueError, TypeError):
                pass
    finally:
        conn.close()
    return found
