"""Scenarios 3 and 4: a full disk and a queue file that is corrupt, foreign, truncated or unwritable.

Real open_queue on real SQLite files; the disk is "full" through PRAGMA max_page_count,
and unwritable files are tried as the unprivileged user `nobody` (root ignores file modes).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import sqlite3
import tempfile
import time

import pytest

from octoprint_tracking_queued.delivery import Delivered, Retry
from octoprint_tracking_queued.store import DB_FILE, Writer, open_queue
from octoprint_tracking_queued.worker import Worker

QUEUE_LOGGER = "octoprint.plugins.tracking_queued.queue"


def rec(n: int, size: int = 0) -> dict:
    params = {"n": n, "blob": "x" * size} if size else {"n": n}
    return {
        "id": f"event-{n:05d}",
        "event": "print_done",
        "params": params,
        "post": False,
        "created": 1_700_000_000.0,
        "attempts": 0,
        "last_error": None,
    }


def fill_disk(q: Writer) -> None:
    """Caps the file at its current size (both connections see the same file)."""
    q.cap_file(0)


def free_disk(q: Writer) -> None:
    q.cap_file(None)


def messages(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


# ~~ scenario 3: disk full


def test_disk_full_storm_is_logged_once_and_resumes_by_itself(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=QUEUE_LOGGER)
    q = open_queue(str(tmp_path))
    for n in range(20):
        assert q.put(rec(n))
    fill_disk(q)
    refused = 0
    for n in range(20, 520):  # a storm while the disk is full; each needs new pages
        refused += not q.put(rec(n, size=3000))
    assert refused > 450
    stats = q.stats()
    assert stats["store_error"] and "full" in stats["store_error"]
    assert stats["store_failed"] == refused
    assert messages(caplog, "Cannot store tracking records") == 1
    # what was stored before stays readable and deliverable while full
    first = q.next()
    assert first.record["id"] == "event-00000"
    q.ack(first)

    free_disk(q)
    assert q.put(rec(9999))  # no restart, no user action
    stats = q.stats()
    assert stats["store_error"] is None
    assert stats["store_failed"] == refused  # now also on disk
    assert messages(caplog, "Storing tracking records works again") == 1
    q.close()
    assert open_queue(str(tmp_path)).stats()["store_failed"] == refused


def test_worker_retries_and_drains_while_the_disk_is_full(tmp_path):
    """Marking in flight, writing the retry state and deleting delivered rows all work
    on a full file, so a full disk never stops the backlog from going out."""
    q = open_queue(str(tmp_path))
    for n in range(3):
        q.put(rec(n, size=500))
    outcomes = [Retry("HTTP 503")] * 3
    sent = []

    def send(record):
        sent.append(record["id"])
        return outcomes.pop(0) if outcomes else Delivered(200)

    clock = [0.0]
    worker = Worker(q, send, lambda: None, initial_delay=0.05, max_delay=0.5, clock=lambda: clock[0], rand=lambda: 1.0)
    fill_disk(q)
    for _ in range(20):
        wait = worker.run_once()
        if wait and wait >= 300:  # idle
            break
        clock[0] += wait or 0
    assert q.stats()["in_flight"] == 0
    assert q.stats()["delivered"] == 3
    assert sent == ["event-00000"] * 4 + ["event-00001", "event-00002"]


# ~~ scenario 4: unusable queue files


def _garbage(path: str) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(8192))


def _sqlite_header_then_garbage(path: str) -> None:
    with open(path, "wb") as f:
        f.write(b"SQLite format 3\x00" + b"\xa5" * 8176)


def _truncated(path: str) -> None:
    q = open_queue(os.path.dirname(path))
    for n in range(400):
        q.put(rec(n, size=200))
    q.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 3)


def _foreign_app(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE prints (file TEXT, started REAL)")
    conn.execute("INSERT INTO prints VALUES ('benchy.gcode', 1)")
    conn.commit()
    conn.close()


def _our_table_other_columns(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ack_queue_records (_id INTEGER PRIMARY KEY, payload BLOB)")
    conn.commit()
    conn.close()


def _empty_file(path: str) -> None:
    open(path, "wb").close()


BAD_FILES = {
    "random bytes": _garbage,
    "SQLite header, garbage pages": _sqlite_header_then_garbage,
    "truncated to a third": _truncated,
    "another application's database": _foreign_app,
    "our table, other columns": _our_table_other_columns,
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_unusable_file_is_moved_aside_and_tracking_goes_on(tmp_path, caplog, name):
    caplog.set_level(logging.WARNING, logger=QUEUE_LOGGER)
    path = str(tmp_path / DB_FILE)
    BAD_FILES[name](path)
    original = open(path, "rb").read()

    q = open_queue(str(tmp_path))
    stats = q.stats()
    assert stats["recovered"] and "kept as" in stats["recovered"]
    assert messages(caplog, "kept as") == 1
    aside = [p for p in os.listdir(tmp_path) if ".unusable-" in p and not p.endswith(("-wal", "-shm"))]
    assert len(aside) == 1
    assert (tmp_path / aside[0]).read_bytes() == original  # kept, byte for byte
    assert stats["pending"] == 0
    assert q.put(rec(1))
    assert q.next().record["id"] == "event-00001"
    q.close()


def test_an_empty_file_is_simply_used(tmp_path):
    """SQLite treats a zero-byte file as a new database: nothing to keep, nothing to say."""
    _empty_file(str(tmp_path / DB_FILE))
    q = open_queue(str(tmp_path))
    assert q.recovered is None and q.put(rec(1))
    q.close()


def test_second_recovery_on_the_same_second_keeps_both_files(tmp_path, monkeypatch):
    # The clock is held on one second: the two recoveries' names collide every time, not only
    # when they happen to fall within the same second.
    monkeypatch.setattr(time, "strftime", lambda fmt, *when: "20260102-030405")
    kept = []
    for n in range(2):
        _garbage(str(tmp_path / DB_FILE))
        kept.append(open(tmp_path / DB_FILE, "rb").read() + bytes([n]))
        with open(tmp_path / DB_FILE, "ab") as file:
            file.write(bytes([n]))  # each bad file its own bytes
        open_queue(str(tmp_path)).close()
    aside = sorted(p for p in os.listdir(tmp_path) if ".unusable-" in p and not p.endswith(("-wal", "-shm")))
    assert aside == [f"{DB_FILE}.unusable-20260102-030405", f"{DB_FILE}.unusable-20260102-030405-1"]
    assert [(tmp_path / name).read_bytes() for name in aside] == kept


def run_without_root(folder) -> dict:
    """Opens the queue in a forked child that dropped root, if it had it: root ignores file
    permissions (modules are already imported: the interpreter lives where `nobody` may not
    read)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            q = open_queue(str(folder))
            ok = q.put(rec(1))
            result = {"recovered": q.recovered, "put": ok, "pending": q.stats()["pending"]}
            os.write(write, json.dumps(result).encode())
            code = 0
        except BaseException as error:
            os.write(write, json.dumps({"error": repr(error)}).encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    result = json.loads(output)
    assert "error" not in result, result["error"]
    return result


@pytest.fixture
def public_dir():
    """A folder `nobody` can reach (pytest's tmp_path lives under a 0700 folder)."""
    path = tempfile.mkdtemp(prefix="tq-faults-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(path)


def test_read_only_file_is_moved_aside(public_dir):
    folder = public_dir / "data"
    folder.mkdir()
    q = open_queue(str(folder))
    q.put(rec(1))
    q.close()
    # The folder is writable, the file is not (owned by root, 0444); set after the queue
    # made its folder owner only.
    os.chmod(folder, 0o777)
    for name in os.listdir(folder):
        os.chmod(folder / name, 0o444)
    result = run_without_root(folder)
    assert result["recovered"] and "1 record saved" in result["recovered"] and "kept as" in result["recovered"]
    assert result["put"] and result["pending"] == 2  # the file's record, saved, and the new one
    aside = [p for p in os.listdir(folder) if ".unusable-" in p and not p.endswith(("-wal", "-shm"))]
    assert len(aside) == 1


def test_read_only_folder_falls_back_to_memory(public_dir):
    """Found by this suite: when the bad file could not be moved, the plugin failed to load."""
    folder = public_dir / "data"
    folder.mkdir()
    _garbage(str(folder / DB_FILE))
    os.chmod(folder / DB_FILE, 0o444)
    os.chmod(folder, 0o555)
    result = run_without_root(folder)
    assert "memory" in result["recovered"]
    assert result["put"] and result["pending"] == 1
    assert (folder / DB_FILE).exists()  # never deleted
