"""Power cuts, not only kill -9: OctoPrint's base folder lies on the power-cut file system
(tests/harness/powercut.py), and each cut SIGKILLs the server and then throws away every write
that was not fsynced (all of it, all after a random prefix, or with the last kept write torn).
The server then restarts on the same folder.

(a) events being queued, (b) a backlog draining, (c) an opt-out, (d) start-up with a migration
from schema 2, (e) a backlog draining to the public server and a farm's collector at once: every
record the status counted as pending before a cut is delivered to each destination that needs it,
at most SYNC_EVERY + 1 duplicates per cut on average for the public server (the worker fsyncs its
acknowledgements every SYNC_EVERY records; one more may be in flight) and one batch more for the
collector, told apart by `event_id`; an opt-out took effect whole or not at all, and the queue
file always opens without being moved aside. TQ_FAULT_SEED replays a run, TQ_POWER_CUTS sets
the cuts per scenario (20). Needs root and Debian's fuse3 (./dev installs it).
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import List, Set

import pytest

from octoprint_tracking_queued.otlp import BATCH_RECORDS
from octoprint_tracking_queued.store import BIT, COLLECTOR, TRACKING
from octoprint_tracking_queued.store.file import SYNC_EVERY
from tests.harness.api import API, status, wait_status
from tests.harness.faults import FAST_RETRY, id_counts, prefill, seed, slow_ok
from tests.harness.powercut import MODES, PowerCutFS

CUTS = int(os.environ.get("TQ_POWER_CUTS", "20"))
V2_FILE = Path(__file__).resolve().parents[1] / "data" / "queue-v2.db"
# Each cut restarts OctoPrint (about 2-4 s here): the four scenarios take some 10 minutes, so
# they run once, on the default OctoPrint and Python (./dev test), not on every leg.
pytestmark = [pytest.mark.slow, pytest.mark.integration]


class Rig:
    """One OctoPrint server whose base folder is on the power-cut file system."""

    def __init__(self, factory, tmp_path: Path, receiver, settings=None) -> None:
        # OctoPrint marks a start as incomplete until it finished; a cut that undoes the mark's
        # removal would start it in safe mode, without third-party plugins: not what is tested.
        self.server = factory(
            plugin_settings={**FAST_RETRY, **(settings or {})},
            extra_config={"server": {"ignoreIncompleteStartup": True}},
            start=False,
        )
        self.receiver = receiver
        self.backing = tmp_path / "disk"
        os.rename(self.server.basedir, self.backing)  # what is on the disk before the first cut
        self.fs = PowerCutFS(self.backing, self.server.basedir).mount()
        self.rng = random.Random(seed())
        self.cuts: List[dict] = []
        self.marks: List[int] = []

    @property
    def disk_data(self) -> Path:
        """The plugin's data folder on the disk itself: what is written here is durable."""
        return self.backing / "data" / "tracking_queued"

    def cut(self) -> dict:
        self.server.kill()
        self.marks.append(logged(self.receiver))  # what arrived before this cut
        # The first cut drops everything unsynced: what the first start made (the data folder,
        # the queue file's name) is exactly what an unsynced folder loses.
        mode = self.rng.choice(MODES) if self.cuts else "all"
        done = self.fs.cut(mode, self.rng.randrange(2**32))
        self.cuts.append({"mode": mode, **done})
        return done

    def start(self) -> None:
        self.server.start()
        # The queue file opened as it was: never moved aside (the worker's check runs first).
        s = wait_status(self.server, lambda s: s["worker"]["alive"])
        assert s["recovered"] is None, s["recovered"]

    def moved_aside(self) -> List[str]:
        return [p for p in os.listdir(self.disk_data) if ".unusable-" in p] if self.disk_data.exists() else []

    def close(self) -> None:
        self.server.kill()
        self.fs.unmount()


@pytest.fixture
def rig(octoprint_factory, tmp_path, receiver):
    made: List[Rig] = []

    def make(settings=None) -> Rig:
        made.append(Rig(octoprint_factory, tmp_path, receiver, settings))
        return made[-1]

    yield make
    for r in made:
        r.close()


# A newer heartbeat or page load supersedes a pending one (counted): it is not owed delivery.
COALESCING = {"ping", "pong", "webui_load"}


def pending_ids(server) -> Set[str]:
    """The ids of every record the status counts as pending (paged through the API), but the
    heartbeats and page loads a newer one of their kind may supersede."""
    ids: Set[str] = set()
    after = None
    while True:
        params = {"records": "pending", "limit": 200, **({"after": after} if after else {})}
        page = server.api("GET", API, params=params).json()
        ids.update(r["id"] for r in page["records"] if r["event"] not in COALESCING)
        if len(page["records"]) < 200:
            return ids
        after = page["records"][-1]["rowid"]


def logged(receiver) -> int:
    """How many requests the receiver logged, once the killed server's last one is in: its
    handler may still be writing the log when the process dies, and nothing new can start."""
    count = -1
    while count != len(receiver.requests):
        count = len(receiver.requests)
        threading.Event().wait(0.05)
    return count


def accepted(requests: List[dict]) -> List[dict]:
    """The requests the receiver took (a 503 is a try, not a delivery)."""
    return [q for q in requests if q["status"] < 300]


def delivered(requests: List[dict]) -> Set[str]:
    return {q["params"].get("event_id") for q in accepted(requests)}


def duplicates_per_cut(r: Rig) -> List[int]:
    """Each repeated delivery, charged to the first cut after the record's first delivery."""
    first: dict = {}
    per_cut = [0] * len(r.marks)
    for index, request in enumerate(r.receiver.requests):
        if request["status"] >= 300:
            continue
        event_id = request["params"].get("event_id")
        if event_id not in first:
            first[event_id] = index
            continue
        cut = next((k for k, mark in enumerate(r.marks) if mark > first[event_id]), None)
        assert cut is not None and r.marks[cut] <= index, f"{event_id} delivered twice without a cut between"
        per_cut[cut] += 1
    return per_cut


def report(name: str, r: Rig, duplicates: int, lost: int, started: float) -> None:
    modes = {m: sum(c["mode"] == m for c in r.cuts) for m in MODES}
    lost_writes = sum(c["lost"] for c in r.cuts)
    print(
        f"power cuts ({name}): {len(r.cuts)} cuts {modes}, {lost_writes} unsynced writes thrown away, "
        f"records lost {lost}, duplicates {duplicates} (at most {SYNC_EVERY + 1} per cut), {time.monotonic() - started:.0f}s"
    )


def check_delivery(r: Rig, must: Set[str], name: str, started: float) -> None:
    r.receiver.behaviour = None  # 200 from now on
    if not r.server.running:
        r.start()
    arrived = r.receiver.wait_for(lambda reqs: must <= delivered(reqs), timeout=120)
    missing = must - delivered(r.receiver.requests)
    assert arrived, (
        f"{len(missing)} records counted as pending before a cut never arrived: {sorted(missing)[:5]}, {status(r.server)}, cuts {r.cuts}"
    )
    counts = id_counts(accepted(r.receiver.requests))
    duplicates = {i: c - 1 for i, c in counts.items() if c > 1}
    lost = len([i for i in must if counts[i] == 0])
    per_cut = duplicates_per_cut(r)
    report(name, r, sum(duplicates.values()), lost, started)
    print(f"  duplicates per cut: {per_cut}")
    assert lost == 0
    # A cut re-sends at most the records acknowledged since the worker's last fsync, plus the one
    # in flight. A record re-sent after one cut can lose its acknowledgement again in the next,
    # and is charged to the cut after its first delivery each time: so the bound is on the sum.
    assert sum(duplicates.values()) == sum(per_cut) <= (SYNC_EVERY + 1) * len(r.marks)
    assert r.moved_aside() == []


def test_a_power_cuts_while_events_are_queued(rig, receiver):
    started = time.monotonic()
    r = rig()
    receiver.behaviour = lambda request: (503, {}, b"")  # nothing leaves: everything queued stays pending
    must: Set[str] = set()
    for n in range(CUTS):
        r.start()
        stop = threading.Event()

        def fire(cycle: int = n, stop: threading.Event = stop) -> None:
            k = 0
            while not stop.is_set():
                try:
                    r.server.fire_event("plugin_pluginmanager_install_plugin", {"id": f"p{cycle}-{k}", "version": "1"})
                except Exception:
                    return  # the cut came
                k += 1

        thread = threading.Thread(target=fire)
        thread.start()
        threading.Event().wait(r.rng.uniform(0.2, 0.6))
        must |= pending_ids(r.server)  # counted as pending: must arrive
        threading.Event().wait(r.rng.uniform(0, 0.2))
        r.cut()
        stop.set()
        thread.join()
    check_delivery(r, must, "a: queueing", started)


def test_b_power_cuts_while_a_backlog_drains(rig, receiver):
    started = time.monotonic()
    r = rig()
    backlog = set(prefill(r.disk_data, 1500))
    receiver.behaviour = slow_ok(random.Random(r.rng.random()), 0.005, 0.02)
    for _ in range(CUTS):
        r.start()
        seen = len(receiver.requests)
        assert receiver.wait_count(seen + r.rng.randint(5, 40), timeout=60), "draining stalled"
        threading.Event().wait(r.rng.uniform(0, 0.02))  # a random moment within a request
        r.cut()
    check_delivery(r, backlog, "b: draining", started)


def test_e_power_cuts_while_a_backlog_drains_to_both_destinations(rig, receiver, collector):
    """Issue 19: the farm's collector keeps the same promise through a cut as the public server."""
    started = time.monotonic()
    r = rig({"collector": {"endpoint": collector.url}})
    backlog = set(prefill(r.disk_data, 1500, destinations=BIT[TRACKING] | BIT[COLLECTOR]))
    rng = random.Random(r.rng.random())
    receiver.behaviour = slow_ok(rng, 0.005, 0.02)
    collector.behaviour = slow_ok(rng, 0.05, 0.3)  # a batch takes a while: cuts land within one
    for _ in range(CUTS):
        r.start()
        seen, batches = len(receiver.requests), len(collector.requests)
        assert receiver.wait_count(seen + r.rng.randint(5, 40), timeout=60), "the public drain stalled"
        assert collector.wait_for(lambda qs, n=batches: len(qs) > n, timeout=60), "the collector's drain stalled"
        threading.Event().wait(r.rng.uniform(0, 0.3))  # the next batch is on its way
        r.cut()
    collector.behaviour = None
    check_delivery(r, backlog, "e: both destinations, public server", started)
    assert collector.wait_for(lambda qs: backlog <= {x["event_id"] for x in collector.records()}, timeout=120)
    counts = collections.Counter(x["event_id"] for x in collector.records() if x["event_id"] in backlog)
    duplicates = sum(c - 1 for c in counts.values())
    print(
        f"power cuts (e: both destinations, collector): {len(r.cuts)} cuts, records lost "
        f"{len(backlog - set(counts))}, duplicates {duplicates} (at most {BATCH_RECORDS + SYNC_EVERY} per cut), "
        f"{len(collector.requests)} batches"
    )
    # A cut re-sends at most the batch in flight and what was acknowledged since the last fsync
    # (a batch of more than SYNC_EVERY records is synced as it is acknowledged).
    assert duplicates <= (BATCH_RECORDS + SYNC_EVERY) * len(r.cuts)
    assert collector.invalid == []


def set_enabled(server, enabled: bool):
    return server.api("POST", "/api/settings", json={"plugins": {"tracking_queued": {"enabled": enabled}}})


def test_c_power_cuts_during_an_opt_out(rig, receiver):
    started = time.monotonic()
    r = rig({"enabled": True, "events": {"plugin": True}})
    took_effect = 0
    for n in range(CUTS):
        receiver.behaviour = lambda request: (503, {}, b"")
        r.start()
        if not status(r.server)["enabled"]:
            assert set_enabled(r.server, True).status_code == 200
        for k in range(5):
            r.server.fire_event("plugin_pluginmanager_install_plugin", {"id": f"c{n}-{k}", "version": "1"})
        before = pending_ids(r.server)
        assert before
        thread = threading.Thread(target=lambda: _quietly(set_enabled, r.server, False))
        thread.start()
        # The save takes a few milliseconds: cut before, during or after it.
        threading.Event().wait(r.rng.choice([0.0, r.rng.uniform(0, 0.01), r.rng.uniform(0, 0.05)]))
        r.cut()
        thread.join()

        receiver.clear()
        receiver.behaviour = None
        r.start()
        s = status(r.server)
        if s["enabled"] is False:  # it took effect: nothing of it left, nothing sent, even after opting in
            took_effect += 1
            assert s["unsent"] == 0 and not (before & pending_ids(r.server))
            assert set_enabled(r.server, True).status_code == 200
            r.server.fire_event("plugin_pluginmanager_install_plugin", {"id": f"marker{n}", "version": "1"})
            marker = f"marker{n}"  # queued after anything left: once it arrived, nothing older is coming
            assert receiver.wait_for(
                lambda reqs, marker=marker: any(q["params"].get("plugin") == marker for q in accepted(reqs)), timeout=30
            )
            assert not before & delivered(receiver.requests)
        else:  # it never happened: every record is delivered
            assert s["enabled"] is True
            arrived = receiver.wait_for(lambda reqs, before=before: before <= delivered(reqs), timeout=30)
            assert arrived, (
                f"a mix: tracking on, {len(before - delivered(receiver.requests))} of {len(before)} never sent; {s}; {r.cuts[-1]}"
            )
        assert r.moved_aside() == []
        r.server.kill()  # a clean slate of the receiver for the next cycle
    print(
        f"power cuts (c: opt-out): {len(r.cuts)} cuts, took effect {took_effect}, never happened {CUTS - took_effect}"
    )
    # Nothing is delivered before a cut here (the receiver refuses until then): no duplicates can arise.
    report("c: opt-out", r, 0, 0, started)


def _quietly(call, *args) -> None:
    try:
        call(*args)
    except Exception:
        pass  # the cut came first


def write_v2_queue(folder: Path, cycle: int, count: int) -> Set[str]:
    """A schema 2 queue file (the fixture's, plus `count` pending records), durable on the disk;
    returns the ids it holds pending."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(folder / name)
    path = folder / "queue.db"
    shutil.copyfile(V2_FILE, path)
    conn = sqlite3.connect(path)
    ids = {f"v2-{cycle}-{n}" for n in range(count)}
    with conn:
        for n in range(count):
            record = {"id": f"v2-{cycle}-{n}", "event": "backlog", "params": {"n": n}, "created": time.time()}
            conn.execute(
                "INSERT INTO ack_queue_records (data, timestamp, status, event, rank, observed) VALUES (?, ?, 1, ?, 2, ?)",
                (json.dumps(record).encode(), time.time(), "backlog", 0.0),
            )
        pending = conn.execute("SELECT data FROM ack_queue_records WHERE status = 1").fetchall()
    conn.close()
    assert ids <= {json.loads(row[0])["id"] for row in pending}
    return {json.loads(row[0])["id"] for row in pending}


def test_d_power_cuts_during_a_start_with_migration(rig, receiver):
    started = time.monotonic()
    r = rig()
    receiver.behaviour = None
    duplicates = lost = 0
    for n in range(CUTS):
        must = write_v2_queue(r.disk_data, n, 200)
        receiver.clear()
        r.server.start()  # the migration runs while OctoPrint starts; the cut comes then or soon after
        threading.Event().wait(r.rng.uniform(0, 0.5))
        r.cut()
        r.start()
        assert receiver.wait_for(lambda reqs, must=must: must <= delivered(reqs), timeout=60)
        counts = id_counts(accepted(receiver.requests))
        duplicates += sum(c - 1 for i, c in counts.items() if c > 1 and i in must)
        lost += len([i for i in must if not counts[i]])
        assert sum(c - 1 for i, c in counts.items() if c > 1 and i in must) <= SYNC_EVERY + 1
        assert r.moved_aside() == []
        r.server.kill()
    report("d: migration", r, duplicates, lost, started)
