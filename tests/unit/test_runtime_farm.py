"""runtime.py + farm.py: the collector as a second destination with its own consent (its endpoint)
and its own worker; the public server's opt-out leaves the collector's backlog alone."""

from __future__ import annotations

import pytest

from octoprint_tracking_queued import otlp
from octoprint_tracking_queued import runtime as runtime_module
from octoprint_tracking_queued.delivery import Delivered, Rejected, Retry
from tests.unit.world import PRINT_DONE, World, settings

ENDPOINT = "http://127.0.0.1:9"


class FakeCollector:
    def __init__(self, **_: object) -> None:
        self.batches: list = []
        self.answer = Delivered(200)
        self.closed = False

    def send(self, records, endpoint, headers, resource, scope_version=""):
        assert endpoint == ENDPOINT and headers == {"Authorization": "Bearer t"}
        self.resource = resource
        self.batches.append([r["event"] for r in records])
        self.logged = [otlp.log_record(r) for r in records]
        return self.answer

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def make_farm(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_module, "Collector", FakeCollector)
    worlds = []

    def make(enabled=None, endpoint=ENDPOINT, **values) -> World:
        collector = {"endpoint": endpoint, "headers": {"Authorization": "Bearer t"}, "resource": {"rack": 3}}
        world = World(str(tmp_path), settings(enabled=enabled, collector=collector, **values))
        world.collector = world.runtime.farm._collector
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        for worker in world.runtime.workers.values():
            worker.stop()
        world.runtime.queue.close()
        world.runtime.lock.release()


def status(world: World, dest: str) -> tuple:
    s = world.runtime.status()["destinations"][dest]
    return s["enabled"], s["pending"], s["delivered"], s["worker"]["state"]


def test_a_farm_may_send_only_to_its_collector_and_the_public_server_gets_nothing(make_farm):
    world = make_farm(enabled=False)
    world.runtime.tracker.start()  # as start() does when any destination is on (workers stepped here)
    world.runtime.on_event(*PRINT_DONE)
    assert world.runtime.queue.count("pending", "tracking") == 0
    world.runtime.worker.run_once()
    assert world.runtime.worker.state == "disabled" and world.delivery.sent == []
    assert world.runtime.farm.worker.run_once() == 0
    assert world.collector.batches == [["startup", "print_done"]]
    resource = {a["key"]: a["value"] for a in world.collector.resource["attributes"]}
    assert resource["rack"] == {"intValue": "3"} and resource["service.instance.id"]["stringValue"]
    assert status(world, "collector") == (True, 0, 2, "sending")
    assert status(world, "tracking")[:3] == (False, 0, 0)


def test_the_collector_being_down_never_holds_the_public_server(make_farm):
    world = make_farm(enabled=True)
    world.runtime.on_event(*PRINT_DONE)
    world.collector.answer = Retry("connection error: Connection refused")
    assert world.runtime.farm.worker.run_once() > 0
    assert world.runtime.worker.run_once() == 0 and world.delivery.sent == ["print_done"]
    assert status(world, "collector")[1:] == (1, 0, "backoff")
    assert world.runtime.queue.ledger.rows == 1  # kept until the collector has it too
    world.collector.answer = Delivered(200, 1, "too long")
    world.runtime.flush("collector")
    assert world.runtime.farm.worker.run_once() == 0 and world.runtime.queue.ledger.rows == 0
    assert world.runtime.status()["destinations"]["collector"]["partial_rejected"] == 1


def test_opting_out_of_anonymous_tracking_keeps_the_collectors_backlog(make_farm):
    world = make_farm(enabled=True)
    world.runtime.on_event(*PRINT_DONE)
    world.save(enabled=False)
    assert world.runtime.queue.count("all", "tracking") == 0
    assert world.runtime.queue.count("pending", "collector") == 1
    world.runtime.on_event(*PRINT_DONE)  # still recorded: the collector is on
    assert world.runtime.queue.count("pending", "collector") == 2


def test_no_collector_means_no_records_for_it_and_its_backlog_goes(make_farm):
    make_farm(enabled=True).runtime.on_event(*PRINT_DONE)
    world = make_farm(enabled=True, endpoint="")
    assert world.runtime.queue.count("all", "collector") == 0
    world.runtime.on_event(*PRINT_DONE)
    assert world.runtime.queue.count("all", "collector") == 0
    assert status(world, "collector")[0] is False


def test_a_bad_collector_setting_holds_the_collector_only_and_keeps_its_records(make_farm):
    world = make_farm(enabled=True, endpoint="ftp://collector")
    world.runtime.on_event(*PRINT_DONE)
    world.runtime.farm.worker.run_once()
    assert world.runtime.farm.worker.state == "config_error"
    assert "collector.endpoint" in world.runtime.status()["destinations"]["collector"]["config_errors"][0]
    assert world.runtime.queue.count("pending", "collector") == 1
    assert world.runtime.worker.run_once() == 0 and world.delivery.sent == ["print_done"]


def test_the_collectors_page_shows_exactly_the_log_record_it_gets(make_farm):
    world = make_farm(enabled=False)
    world.runtime.on_event(*PRINT_DONE)
    world.wall.now += 0.375  # the event's time has a fraction of a second, kept to the nanosecond
    (record,), total = world.runtime.page("pending", 0, 10, dest="collector")
    assert total == 1 and record["sent"]["eventName"] == "print_done"
    world.runtime.farm.worker.run_once()
    assert [record["sent"]] == world.collector.logged
    assert {"key": "event_id", "value": {"stringValue": record["id"]}} in record["sent"]["attributes"]


def test_a_batch_too_large_for_the_collector_is_sent_again_in_halves(make_farm):
    world = make_farm(enabled=False)
    for _ in range(4):
        world.runtime.on_event(*PRINT_DONE)
    sizes = []

    def answer(records, *args, **kwargs):
        sizes.append(len(records))
        return Rejected("HTTP 413: too large") if len(records) > 2 else Delivered(200)

    world.collector.send = answer
    worker = world.runtime.farm.worker
    assert worker.run_once() > 0 and worker.batch[0] == 2  # not a dead letter: smaller batches
    worker.flush()
    while worker.run_once() == 0 and world.runtime.queue.count("pending", "collector"):
        pass
    assert sizes == [4, 2, 2] and world.runtime.queue.count("failed", "collector") == 0
    world.runtime.on_event(*PRINT_DONE)
    world.collector.send = lambda records, *a, **k: Rejected("HTTP 413: too large")
    worker.batch = (1, 1000)
    worker.flush()
    worker.run_once()
    assert world.runtime.queue.count("failed", "collector") == 1  # one record refused: dead letter
