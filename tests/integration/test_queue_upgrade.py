"""Issue 8, old queue files: a queue.db as the previous version left it (persist-queue's
table only, written through persist-queue as that version did, one row taken and never
acknowledged by a crash) is upgraded in place when a real `octoprint serve` starts. Its
records age from the upgrade, so records whose wall clock says 40 days are not dropped at a
30-day cap, and they are sent once each, in order, with their recorded (uncertain) time."""

from __future__ import annotations

import time

import persistqueue
import persistqueue.serializers.json
import pytest

from tests.harness.api import API, PLUGINS, active, wait_status

pytestmark = pytest.mark.integration

DAY = 86400


def previous_version_queue(folder, records) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    queue = persistqueue.SQLiteAckQueue(
        str(folder),
        name="records",
        db_file_name="queue.db",
        multithreading=True,
        serializer=persistqueue.serializers.json,
        auto_resume=True,
    )
    for record in records:
        queue.put(record)
    queue.get()  # in flight when the process died: never acknowledged
    queue.close()


def test_a_previous_versions_queue_file_is_upgraded_and_sent(octoprint_factory, receiver):
    receiver.stop()
    server = octoprint_factory(plugin_settings=dict(PLUGINS, queue={"max_age_days": 30}), start=False)
    stale = time.time() - 40 * DAY  # by a wall clock that may have been wrong
    old = [
        {"id": f"old{n}", "event": "install_plugin", "params": {"plugin": f"old{n}", "plugin_version": "1"},
         "post": False, "created": stale + n, "attempts": 0, "last_error": None}
        for n in range(3)
    ]  # fmt: skip
    previous_version_queue(server.data_folder, old)
    server.start()
    assert server.wait_for_log("Upgraded 3 queued records to queue schema 2")
    s = wait_status(server, lambda s: active(s) == 4)  # the three, and this start's ping
    assert s["dropped_age"] == 0 and s["oldest_pending_certain"] is False
    shown = server.api("GET", API, params={"records": "pending"}).json()["records"][:3]
    assert [(r["id"], r["time_uncertain"]) for r in shown] == [("old0", True), ("old1", True), ("old2", True)]

    receiver.start()
    assert receiver.wait_event("install_plugin", count=3)
    wait_status(server, lambda s: active(s) == 0)
    arrived = [r["params"] for r in receiver.requests if r["event"] == "install_plugin"]
    assert [p["event_id"] for p in arrived] == ["old0", "old1", "old2"]
    assert [int(p["event_time"]) for p in arrived] == [int(r["created"]) for r in old]
