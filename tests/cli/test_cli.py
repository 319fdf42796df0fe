"""`octoprint plugins tracking_queued:…` run as a real subprocess against a basedir with known records.

The server is stopped in every test; "running" is simulated by holding the queue lock
the way the server does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from werkzeug import Response

from octoprint_tracking_queued.lock import QueueLock
from octoprint_tracking_queued.store import Writer, open_queue
from tests.unit.fakes import FakeClocks
from tools.collector import Collector

OCTOPRINT = [sys.executable, "-m", "octoprint"]
UNIQUE_ID = "c1100000-0000-4000-8000-000000001111"  # the form the plugin accepts: hex and dashes
CREATED = 1_700_000_000


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


def record(n: int, event: str = "print_done") -> dict:
    return {
        "id": f"id{n}",
        "event": event,
        "params": {"n": n},
        "post": False,
        "created": CREATED + n,
        "attempts": 0,
        "last_error": None,
    }


class Basedir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path / "data" / "tracking_queued"

    def configure(self, **plugin: object) -> None:
        config = {
            "server": {"firstRun": False, "onlineCheck": {"enabled": False}},
            "plugins": {"tracking": {"enabled": False}, "tracking_queued": plugin},
        }
        (self.path / "config.yaml").write_text(yaml.safe_dump(config))

    def fill(self, pending: int, failed: int = 0, confirmed: bool = True) -> None:
        """`failed` dead-lettered records f0.. first, then `pending` records id0.."""
        # Queued in an earlier boot whose clock was right: each record is sent with its
        # `created` time, one second apart.
        clocks = FakeClocks(wall=CREATED, mono=100.0, boot="an-earlier-boot")
        clocks.kernel_synced = confirmed  # False: that boot's clock was never known to be right
        queue = open_queue(str(self.data), clocks=clocks)
        for n in range(failed):
            queue.put(dict(record(n), id=f"f{n}"))
            queue.reject(queue.next(), "HTTP 400")
        for n in range(pending):
            queue.put(record(n))
            clocks.advance(1)
        queue.close()

    def queue(self) -> Writer:
        return open_queue(str(self.data))

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CI", "OCTOPRINT_DISABLE_TRACKING", "OCTOPRINT_TRACKING_DISABLED")
        }
        return subprocess.run(
            OCTOPRINT + ["--basedir", str(self.path), "plugins", *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=60,
            env=env,
        )


@pytest.fixture
def basedir(tmp_path, httpserver) -> Basedir:
    base = Basedir(tmp_path / "basedir")
    base.path.mkdir()
    base.configure(
        enabled=True,
        unique_id=UNIQUE_ID,
        server=httpserver.url_for("/track/{id}/{event}/").replace("%7B", "{").replace("%7D", "}"),
    )
    return base


def counts(base: Basedir) -> tuple[int, int]:
    queue = base.queue()
    try:
        return queue.count("pending"), queue.count("failed")
    finally:
        queue.close()


def test_status_counts_and_oldest(basedir):
    basedir.fill(pending=3, failed=1)
    result = basedir.run("tracking_queued:status")
    assert result.returncode == 0, result.stderr
    assert "Pending: 3, in flight: 0, failed: 1" in result.stdout
    assert "OctoPrint server: not running" in result.stdout
    assert "Tracking: enabled" in result.stdout
    assert "Oldest pending event:" in result.stdout


def test_status_shows_the_collector_with_its_own_counts_never_its_headers(basedir):
    basedir.configure(
        enabled=False,
        unique_id=UNIQUE_ID,
        collector={"endpoint": "http://127.0.0.1:9", "headers": {"Authorization": "Bearer cli-secret"}},
    )
    queue = basedir.queue()
    queue.set_destinations(2)  # the collector's only (schema.BIT)
    queue.put_many([record(0), record(1)])
    queue.reject(queue.next_batch("collector", 1), "HTTP 400")
    queue.close()
    result = basedir.run("tracking_queued:status")
    assert result.returncode == 0, result.stderr
    assert "Collector: http://127.0.0.1:9/v1/logs" in result.stdout
    assert "Collector pending: 1, failed: 1, delivered since install: 0" in result.stdout
    assert "Pending: 0, in flight: 0, failed: 0" in result.stdout
    assert "cli-secret" not in result.stdout + result.stderr


def test_status_without_database(basedir):
    result = basedir.run("tracking_queued:status")
    assert result.returncode == 0, result.stderr
    assert "No queue database yet" in result.stdout
    assert not (basedir.data / "queue.db").exists()  # reading created nothing


def test_list_pending_shows_sent_params_and_limit(basedir):
    basedir.fill(pending=5, failed=1)
    result = basedir.run("tracking_queued:list", "--limit", "2")
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("    {")]
    assert sent == [
        {"n": 0, "event_id": "id0", "event_time": CREATED},
        {"n": 1, "event_id": "id1", "event_time": CREATED + 1},
    ]
    assert "2 of 5 pending records shown." in result.stdout


def test_list_shows_when_each_event_happened_and_whether_that_is_certain(basedir):
    basedir.fill(pending=2)
    lines = [line for line in basedir.run("tracking_queued:list").stdout.splitlines() if line.startswith("#")]
    assert [line.split("  ")[1] for line in lines] == [
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(CREATED + n)) for n in range(2)
    ]
    assert "uncertain" not in "".join(lines)

    other = Basedir(basedir.path.parent / "unconfirmed")
    other.path.mkdir()
    other.configure(enabled=True, unique_id=UNIQUE_ID)
    other.fill(pending=1, confirmed=False)
    result = other.run("tracking_queued:list")
    assert result.returncode == 0, result.stderr
    assert "(time uncertain)  print_done" in result.stdout


def test_list_failed(basedir):
    basedir.fill(pending=2, failed=1)
    result = basedir.run("tracking_queued:list", "--failed")
    assert result.returncode == 0, result.stderr
    assert "last error: HTTP 400" in result.stdout
    assert "1 of 1 failed records shown." in result.stdout


def test_list_rejects_bad_limit(basedir):
    result = basedir.run("tracking_queued:list", "--limit", "0")
    assert result.returncode == 2
    assert "--limit" in result.stderr


def test_export_writes_json_lines(basedir, tmp_path):
    basedir.fill(pending=2, failed=1)
    target = tmp_path / "export.jsonl"
    target.write_text("an earlier export, readable by everyone\n" * 100)
    target.chmod(0o644)
    umask = os.umask(0o022)  # the usual one; the command inherits it
    try:
        result = basedir.run("tracking_queued:export", str(target))
    finally:
        os.umask(umask)
    assert result.returncode == 0, result.stderr
    assert "Exported 3 records" in result.stdout
    # Every record in one file: as private as the queue (issue 18).
    assert target.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in lines] == [("f0", "failed"), ("id0", "pending"), ("id1", "pending")]
    assert lines[1]["sent"] == {"n": 0, "event_id": "id0", "event_time": CREATED}


def test_export_to_stdout(basedir):
    basedir.fill(pending=2)
    result = basedir.run("tracking_queued:export", "-")
    assert result.returncode == 0, result.stderr
    # OctoPrint's CLI says "Initializing settings & plugin subsystem..." on stdout first.
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert [json.loads(line)["id"] for line in lines] == ["id0", "id1"]


def test_read_only_commands_work_while_server_holds_lock(basedir):
    basedir.fill(pending=2)
    with QueueLock(str(basedir.data)) as lock:
        assert lock.acquire()
        result = basedir.run("tracking_queued:status")
        assert "OctoPrint server: running" in result.stdout
        assert "Pending: 2" in result.stdout
        assert basedir.run("tracking_queued:list").returncode == 0


def test_flush_sends_everything_in_order(basedir, httpserver):
    basedir.fill(pending=3, failed=1)
    httpserver.expect_request(f"/track/{UNIQUE_ID}/print_done/").respond_with_data("ok")
    result = basedir.run("tracking_queued:flush")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[3/3] print_done: delivered" in result.stdout
    assert "Delivered 3, refused 0, still pending 0." in result.stdout
    sent = [dict(request.args) for request, _ in httpserver.log]
    assert [s["event_id"] for s in sent] == ["id0", "id1", "id2"]
    assert sent[0] == {"n": "0", "event_id": "id0", "event_time": str(CREATED)}
    assert counts(basedir) == (0, 1)  # failed records wait for retry_failed


def test_flush_sends_when_each_event_really_happened_as_the_worker_does(basedir, httpserver):
    # A boot whose wall clock was a day behind when the record was made, then stepped right:
    # the record's `created` is a day early, its true time is CREATED.
    day = 86400
    clocks = FakeClocks(wall=CREATED - day, mono=100.0, boot="an-earlier-boot")
    queue = open_queue(str(basedir.data), clocks=clocks)
    queue.put(dict(record(0), created=CREATED - day))
    clocks.jump_wall(day)  # NTP steps the clock
    queue.observe()
    assert queue.page("pending")[0]["event_time"] == CREATED
    queue.close()
    httpserver.expect_request(f"/track/{UNIQUE_ID}/print_done/").respond_with_data("ok")
    result = basedir.run("tracking_queued:flush")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [request.args["event_time"] for request, _ in httpserver.log] == [str(CREATED)]


def test_flush_stops_when_the_server_fails_and_keeps_the_rest(basedir, httpserver):
    basedir.fill(pending=3)
    responses = iter([Response("ok"), Response("busy", status=503)])
    httpserver.expect_request(f"/track/{UNIQUE_ID}/print_done/").respond_with_handler(lambda _: next(responses))
    result = basedir.run("tracking_queued:flush")
    assert result.returncode == 1
    assert "[2/3] print_done: not delivered (HTTP 503)" in result.stdout
    assert "Delivered 1, refused 0, still pending 2." in result.stdout
    assert counts(basedir) == (2, 0)


def test_flush_moves_refused_records_to_failed(basedir, httpserver):
    basedir.fill(pending=2)
    httpserver.expect_request(f"/track/{UNIQUE_ID}/print_done/").respond_with_data("no", status=400)
    result = basedir.run("tracking_queued:flush")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused by the server (HTTP 400), moved to failed" in result.stdout
    assert counts(basedir) == (0, 2)


def test_flush_refuses_while_server_runs(basedir, httpserver):
    basedir.fill(pending=2)
    with QueueLock(str(basedir.data)) as lock:
        assert lock.acquire()
        result = basedir.run("tracking_queued:flush")
    assert result.returncode == 1
    assert "OctoPrint is running and owns the tracking queue" in result.stderr
    assert "Settings > Anonymous Usage Tracking (Queued)" in result.stderr
    assert httpserver.log == []
    assert counts(basedir) == (2, 0)


def test_flush_respects_disabled_tracking(basedir, httpserver):
    basedir.configure(enabled=False, unique_id=UNIQUE_ID)
    basedir.fill(pending=2)
    result = basedir.run("tracking_queued:flush")
    assert result.returncode == 1
    assert "Nothing was sent: Anonymous usage tracking is disabled" in result.stderr
    assert httpserver.log == []
    assert counts(basedir) == (2, 0)


def test_clear_pending_with_yes(basedir):
    basedir.fill(pending=3, failed=1)
    result = basedir.run("tracking_queued:clear", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Removed 3 pending records." in result.stdout
    assert counts(basedir) == (0, 1)


def test_clear_asks_and_aborts_on_no(basedir):
    basedir.fill(pending=1, failed=2)
    result = basedir.run("tracking_queued:clear", "--failed", input="n\n")
    assert "Remove 2 failed records for good?" in result.stdout
    assert result.returncode == 1
    assert counts(basedir) == (1, 2)


def test_clear_all_after_confirmation(basedir):
    basedir.fill(pending=1, failed=2)
    result = basedir.run("tracking_queued:clear", "--all", input="y\n")
    assert result.returncode == 0, result.stderr
    assert "Removed 3 queued records." in result.stdout
    assert counts(basedir) == (0, 0)


def test_clear_refuses_while_server_runs(basedir):
    basedir.fill(pending=2)
    with QueueLock(str(basedir.data)) as lock:
        assert lock.acquire()
        result = basedir.run("tracking_queued:clear", "--yes")
    assert result.returncode == 1
    assert "OctoPrint is running" in result.stderr
    assert counts(basedir) == (2, 0)


def test_flush_collector_sends_its_backlog_in_batches_to_a_strict_collector(basedir):
    collector = Collector().start()
    try:
        basedir.configure(
            enabled=False,
            unique_id=UNIQUE_ID,
            collector={"endpoint": collector.url, "headers": {"Authorization": "Bearer t"}},
        )
        queue = basedir.queue()
        queue.set_destinations(2)  # the collector's only (schema.BIT)
        queue.put_many([record(n) for n in range(150)])
        queue.close()
        result = basedir.run("tracking_queued:flush", "--collector")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[100/150] delivered" in result.stdout and "[150/150] delivered" in result.stdout
        assert "Delivered 150, refused 0, still pending 0." in result.stdout
        assert len(collector.requests) == 2 and collector.invalid == []
        assert [r["event_id"] for r in collector.records()] == [f"id{n}" for n in range(150)]
        assert collector.records()[0]["resource"]["service.instance.id"] == UNIQUE_ID
    finally:
        collector.stop()


def test_list_export_and_clear_act_on_the_collectors_records_with_collector(basedir, tmp_path):
    basedir.configure(enabled=True, unique_id=UNIQUE_ID, collector={"endpoint": "http://127.0.0.1:9"})
    # Queued in an earlier boot never confirmed: each is dated by its `created`.
    queue = open_queue(str(basedir.data), clocks=FakeClocks(wall=CREATED, mono=100.0, boot="an-earlier-boot"))
    queue.set_destinations(3)  # both destinations need them (schema.BIT)
    queue.put_many([record(0), record(1, "print_failed"), record(2)])
    queue.reject(queue.next_batch("collector", 1), "HTTP 400")  # id0: dead for the collector only
    queue.close()

    listed = basedir.run("tracking_queued:list", "--collector")
    assert listed.returncode == 0, listed.stderr
    sent = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("    {")]
    # Exactly the log records the collector gets.
    assert [(s["eventName"], s["timeUnixNano"]) for s in sent] == [
        ("print_failed", str((CREATED + 1) * 10**9)),
        ("print_done", str((CREATED + 2) * 10**9)),
    ]
    assert "2 of 2 pending records shown." in listed.stdout

    target = tmp_path / "collector.jsonl"
    exported = basedir.run("tracking_queued:export", "--collector", str(target))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["id"], r["status"], r["sent"]["eventName"]) for r in lines] == [
        ("id0", "failed", "print_done"),
        ("id1", "pending", "print_failed"),
        ("id2", "pending", "print_done"),
    ]

    cleared = basedir.run("tracking_queued:clear", "--collector", "--yes")
    assert cleared.returncode == 0, cleared.stderr
    assert "Removed 2 pending records." in cleared.stdout
    queue = basedir.queue()
    try:
        # The public server still gets all three; the collector keeps only its dead letter.
        assert [queue.count(s, "collector") for s in ("pending", "failed")] == [0, 1]
        assert [queue.count(s) for s in ("pending", "failed")] == [3, 0]
    finally:
        queue.close()
