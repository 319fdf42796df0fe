"""Issue 18: the data folder 0700 and its files 0600 whatever the umask; existing ones tightened."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Iterator

import pytest

from octoprint_tracking_queued import files
from octoprint_tracking_queued.lock import QueueLock
from octoprint_tracking_queued.store import DB_FILE, open_queue
from tests.unit.fakes import FakeClocks


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    with umask(0o022):  # the usual one, which leaves new files 0644
        yield


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def modes(folder: Path) -> dict[str, int]:
    return {"": mode(folder), **{p.name: mode(p) for p in folder.iterdir()}}


def record(n: int) -> dict:
    return {"id": f"r{n}", "event": "print_done", "params": {"n": n}, "post": False, "created": 1.0}


def test_a_new_folder_is_0700_and_an_old_one_is_tightened(tmp_path):
    new = tmp_path / "data" / "tracking_queued"
    assert files.private_dir(str(new)) == str(new)
    assert mode(new) == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    files.private_dir(str(old))
    assert mode(old) == 0o700


def test_tighten_takes_group_and_other_bits_from_every_file(tmp_path):
    folder = tmp_path / "q"
    folder.mkdir(mode=0o755)
    for name, file_mode in [("queue.db", 0o644), ("queue.db-wal", 0o666), ("queue.lock", 0o640), ("mine", 0o400)]:
        (folder / name).write_text("x")
        os.chmod(folder / name, file_mode)
    outside = tmp_path / "outside"
    outside.write_text("not ours")
    os.chmod(outside, 0o644)
    (folder / "link").symlink_to(outside)
    (folder / "sub").mkdir(mode=0o755)
    files.tighten(str(folder))
    assert {name: m for name, m in modes(folder).items() if name != "link"} == {
        "": 0o700,
        "queue.db": 0o600,
        "queue.db-wal": 0o600,
        "queue.lock": 0o600,
        "mine": 0o400,  # never widened
        "sub": 0o755,  # only files are ours
    }
    assert mode(outside) == 0o644, "a link is not followed out of the folder"


def test_tighten_never_raises(tmp_path):
    files.tighten(str(tmp_path / "missing"))


def test_a_private_file_is_0600_from_its_first_byte(tmp_path):
    new = tmp_path / "export.jsonl"
    with files.open_private(str(new)) as out:
        assert mode(new) == 0o600
        out.write("ä\n")
    assert new.read_text(encoding="utf-8") == "ä\n"
    old = tmp_path / "old.jsonl"
    old.write_text("earlier export, longer than the new one\n")
    os.chmod(old, 0o644)
    with files.open_private(str(old)) as out:
        assert mode(old) == 0o600 and old.read_text() == ""
        out.write("new\n")
    assert old.read_text() == "new\n"


def test_a_pipe_is_written_but_not_changed(tmp_path):
    # Like /dev/null or a process substitution: not a file of ours to change.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    with files.open_private(str(fifo)) as out:
        out.write("x\n")
    reader.join(10)
    assert received == ["x\n"] and mode(fifo) == 0o644


def test_the_queue_and_lock_are_owner_only_under_umask_0022(tmp_path):
    folder = tmp_path / "tracking_queued"
    lock = QueueLock(str(folder))
    assert lock.acquire()  # the server takes it before it opens the queue
    assert modes(folder) == {"": 0o700, "queue.lock": 0o600}
    queue = open_queue(str(folder), clocks=FakeClocks())
    try:
        queue.put_many(record(n) for n in range(20))
        names = {"queue.db", "queue.db-wal", "queue.db-shm", "queue.lock"}
        assert names <= set(modes(folder))
        assert modes(folder) == {"": 0o700, **{name: 0o600 for name in names}}
    finally:
        queue.close()
        lock.release()
    # The WAL and shm SQLite makes later take the database file's mode.
    queue = open_queue(str(folder), clocks=FakeClocks())
    try:
        queue.put(record(99))
        assert set(modes(folder).values()) == {0o700, 0o600}
    finally:
        queue.close()


def test_an_old_queue_is_tightened_when_it_opens(tmp_path):
    folder = tmp_path / "tracking_queued"
    queue = open_queue(str(folder), clocks=FakeClocks())
    queue.put(record(1))
    queue.close()
    # As an earlier version left them under umask 0022.
    os.chmod(folder, 0o755)
    for path in folder.iterdir():
        os.chmod(path, 0o644)
    queue = open_queue(str(folder), clocks=FakeClocks())
    try:
        assert set(modes(folder).values()) == {0o700, 0o600}
        assert queue.count() == 1
    finally:
        queue.close()


def test_a_file_moved_aside_is_owner_only(tmp_path):
    folder = tmp_path / "tracking_queued"
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_FILE)
    conn.execute("CREATE TABLE foreign_data (x)")  # not a queue: moved aside as it is
    conn.commit()
    conn.close()
    assert mode(folder / DB_FILE) == 0o644
    queue = open_queue(str(folder), clocks=FakeClocks())
    try:
        assert queue.recovered
        aside = [p for p in folder.iterdir() if ".unusable-" in p.name]
        assert aside and {mode(p) for p in aside} == {0o600}
        assert set(modes(folder).values()) == {0o700, 0o600}
    finally:
        queue.close()
