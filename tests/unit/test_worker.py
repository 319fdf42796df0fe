"""worker.py: FIFO delivery, backoff and Retry-After, dead letters, blocking and flush, the offline verdict, the delivery log."""

import logging
import re
import threading

import pytest

from octoprint_tracking_queued.delivery import Delivered, Rejected, Retry
from octoprint_tracking_queued.store import open_queue
from octoprint_tracking_queued.worker import IDLE_WAIT, Worker, backoff_delay
from tests.unit.fakes import FakeClock


class Server:
    """Answers with a scripted sequence of outcomes and remembers what it got."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.got = []

    def __call__(self, record):
        self.got.append(record["params"]["n"])
        return self.outcomes.pop(0) if self.outcomes else Delivered(200)


def rec(n):
    return {
        "id": f"r{n}",
        "event": "print_done",
        "params": {"n": n},
        "post": False,
        "created": 1.0,
        "attempts": 0,
        "last_error": None,
    }


@pytest.fixture
def queue(tmp_path):
    q = open_queue(str(tmp_path))
    yield q
    q.close()


def make(queue, send, blocked=lambda: None, rand=lambda: 1.0, clock=None):
    clock = clock or FakeClock()
    return Worker(queue, send, blocked, initial_delay=10, max_delay=900, clock=clock, wall=clock, rand=rand), clock


def run_until_idle(worker, clock, limit=100):
    """Runs steps, jumping the fake clock over every wait; returns the waits."""
    waits = []
    for _ in range(limit):
        wait = worker.run_once()
        if wait == IDLE_WAIT and worker.state == "idle":
            return waits
        if wait:
            waits.append(wait)
            clock.now += wait
    raise AssertionError("worker did not go idle")


def test_fifo_delivery(queue):
    for n in range(5):
        queue.put(rec(n))
    server = Server()
    worker, clock = make(queue, server)
    assert run_until_idle(worker, clock) == []
    assert server.got == [0, 1, 2, 3, 4]
    assert queue.stats()["delivered"] == 5


def test_retry_backs_off_exponentially_then_delivers_in_order(queue):
    queue.put(rec(1))
    queue.put(rec(2))
    server = Server(Retry("HTTP 503"), Retry("HTTP 503"), Retry("timeout"))
    worker, clock = make(queue, server)
    waits = run_until_idle(worker, clock)
    assert waits == [10, 20, 40]  # rand() == 1: the ceiling of full jitter
    assert server.got == [1, 1, 1, 1, 2]  # head of line: 2 waits for 1
    assert queue.stats()["delivered"] == 2


def test_backoff_is_capped():
    for failures in range(1, 80):
        assert 0 <= backoff_delay(failures, 10, 900, lambda: 1.0) <= 900
        assert backoff_delay(failures, 10, 900, lambda: 0.0) == 0
    assert backoff_delay(50, 10, 900, lambda: 1.0) == 900
    assert backoff_delay(3, 10, 900, lambda: 0.5) == 20


def test_retry_after_is_a_minimum(queue):
    queue.put(rec(1))
    worker, clock = make(queue, Server(Retry("HTTP 429", after=3600)), rand=lambda: 0.1)
    assert run_until_idle(worker, clock) == [3600]


def test_rejected_is_dead_lettered_and_queue_moves_on(queue):
    queue.put(rec(1))
    queue.put(rec(2))
    server = Server(Rejected("HTTP 404"))
    worker, clock = make(queue, server)
    assert run_until_idle(worker, clock) == []
    assert server.got == [1, 2]
    stats = queue.stats()
    assert (stats["failed"], stats["delivered"]) == (1, 1)
    assert worker.last_error == "HTTP 404"


def test_blocked_sends_nothing(queue):
    queue.put(rec(1))
    server = Server()
    worker, clock = make(queue, server, blocked=lambda: ("offline", "no internet"))
    worker.run_once()
    assert server.got == []
    assert (worker.state, worker.reason) == ("offline", "no internet")


def test_flush_ignores_backoff_and_offline(queue):
    queue.put(rec(1))
    server = Server(Retry("HTTP 500"))
    offline = {"value": None}
    worker, clock = make(queue, server, blocked=lambda: offline["value"])
    assert worker.run_once() == 10  # failed once, backing off
    assert worker.run_once() == 10 and worker.state == "backoff"
    offline["value"] = ("offline", "no internet")
    worker.flush()
    assert worker.run_once() == 0
    assert server.got == [1, 1]
    assert queue.stats()["delivered"] == 1


def test_flush_does_not_override_disabled(queue):
    queue.put(rec(1))
    server = Server()
    worker, clock = make(queue, server, blocked=lambda: ("disabled", "off"))
    worker.flush()
    worker.run_once()
    assert server.got == []


def test_exception_in_send_keeps_the_record(queue):
    queue.put(rec(1))

    def boom(record):
        raise RuntimeError("bug")

    worker, clock = make(queue, boom)
    assert worker.run_once() == 10
    assert queue.stats()["pending"] == 1
    assert queue.page("pending")[0]["last_error"] == "internal error: RuntimeError"


def test_thread_wakes_on_put_and_stops_quickly(queue):
    delivered = threading.Event()

    def send(record):
        delivered.set()
        return Delivered(200)

    worker = Worker(queue, send, lambda: None)
    worker.start()
    try:
        queue.put(rec(1))
        worker.wake()
        assert delivered.wait(5)
    finally:
        assert worker.stop(timeout=3)
    assert not worker.alive and worker.state == "stopped"


def test_each_sent_payload_is_logged_then_a_drain_is_summarised(queue, caplog):
    caplog.set_level(logging.INFO, logger="octoprint.plugins.tracking_queued.worker")
    queue.put(rec(0))
    worker, clock = make(queue, Server())
    run_until_idle(worker, clock)
    [line] = [r.getMessage() for r in caplog.records]
    # Exactly the request's parameters: the record's params, its true time and its id; nothing else
    # of the record (the worker knows neither the URL nor the instance id: test_runtime.py).
    assert re.fullmatch(
        r"Sent tracking event print_done, payload: \{'n': 0, 'event_time': \d+, 'event_id': 'r0'\}", line
    )
    caplog.clear()
    queue.put_many(rec(n) for n in range(1, 13))
    queue.put({**rec(13), "event": "startup"})
    run_until_idle(worker, clock)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # five records one by one, then the summary
    for n, line in enumerate(lines[:5], start=1):
        assert re.fullmatch(
            rf"Sent tracking event print_done, payload: \{{'n': {n}, 'event_time': \d+, 'event_id': 'r{n}'\}}", line
        )
    assert lines[5] == "Delivered 13 queued tracking records: print_done 12, startup 1"


def test_a_wrong_offline_verdict_is_probed_every_max_delay_and_a_success_believed(queue):
    for n in range(3):
        queue.put(rec(n))
    server = Server(Retry("connection refused"))
    worker, clock = make(queue, server, blocked=lambda: ("offline", "OctoPrint says offline"))
    assert worker.run_once() == 300  # the verdict just turned: believed for max_delay (900 s)
    assert server.got == [] and worker.status()["connectivity"] == "offline"
    clock.now += 900
    worker.run_once()  # one probe, which fails
    assert server.got == [0] and worker.connectivity == "offline"
    clock.now += 899
    assert worker.run_once() > 0 and server.got == [0]
    clock.now += 1
    assert worker.run_once() == 0  # the next probe arrives: now it is believed reachable
    assert worker.status()["connectivity"] == "reachable"
    run_until_idle(worker, clock)
    assert server.got == [0, 0, 1, 2]


def test_the_age_cap_runs_every_expire_every_seconds_of_the_worker(queue):
    # The integration tests shorten this interval to wait seconds, not a minute, for a pass:
    # it must be the one the worker keeps to.
    passes = []
    expire = queue.expire

    def counted() -> int:
        passes.append(clock.now)
        return expire()

    queue.expire = counted
    server = Server(*[Retry("down")] * 50)
    queue.put(rec(0))
    worker, clock = make(queue, server, rand=lambda: 0.0)  # every retry at once
    worker.expire_every = 5.0
    for _ in range(12):
        worker.run_once()
        clock.now += 1
    assert passes == [1000.0, 1005.0, 1010.0]
