"""The power-cut file system (tests/harness/powercut.py) itself: what a cut keeps and what it throws away."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from tests.harness.powercut import PowerCutFS


@pytest.fixture
def disk(tmp_path):
    backing = tmp_path / "disk"
    backing.mkdir()
    (backing / "old").write_text("durable")
    fs = PowerCutFS(backing, tmp_path / "mnt").mount()
    yield fs
    fs.unmount()


def fsync_path(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_cut_keeps_what_was_fsynced_and_nothing_else(disk):
    mnt = disk.mountpoint
    with open(mnt / "old", "w") as f:  # overwritten, never synced
        f.write("changed")
    with open(mnt / "kept", "w") as f:  # synced, and its folder too
        f.write("kept")
        f.flush()
        os.fsync(f.fileno())
    fsync_path(mnt)
    with open(mnt / "orphan", "w") as f:  # synced, its name never was
        f.write("x")
        f.flush()
        os.fsync(f.fileno())
    with open(mnt / "kept", "a") as f:  # appended, never synced
        f.write(" and more")
    os.rename(mnt / "kept", mnt / "renamed")  # never synced
    os.remove(mnt / "old")  # never synced
    done = disk.cut("all", 0)
    assert done["lost"] == done["unsynced"] > 0
    assert sorted(os.listdir(mnt)) == ["kept", "old"]
    assert (mnt / "old").read_text() == "durable"
    assert (mnt / "kept").read_text() == "kept"
    assert disk.stats()["unsynced"] == 0


WRITER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE IF NOT EXISTS t (x)")
c.execute("PRAGMA synchronous=FULL")
for i in range(50):
    with c:
        c.execute("INSERT INTO t VALUES (?)", (i,))
c.execute("PRAGMA synchronous=NORMAL")
for i in range(50, 100):
    with c:
        c.execute("INSERT INTO t VALUES (?)", (i,))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["all", "prefix", "torn"])
def test_sqlite_keeps_its_synced_commits_through_a_cut(disk, mode):
    """FULL commits survive every kind of cut; NORMAL commits only until the power goes."""
    db = disk.mountpoint / "q.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE)
    assert writer.stdout.readline() == b"ready\n"
    writer.kill()  # SIGKILL: no close, no checkpoint
    writer.wait()
    writer.stdout.close()
    disk.cut(mode, 7)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        rows = [row[0] for row in conn.execute("SELECT x FROM t ORDER BY rowid")]
    finally:
        conn.close()
    assert rows[:50] == list(range(50))
    if mode == "all":
        assert rows == list(range(50))
