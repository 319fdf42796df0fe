"""Scenario 2: a tracking server that fails in every way we could think of.

Real Delivery, real Queue and a real Worker thread against a raw-socket server on 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time

import pytest

from octoprint_tracking_queued.delivery import MAX_RETRY_AFTER, Delivered, Delivery, Rejected, Retry
from octoprint_tracking_queued.store import open_queue
from octoprint_tracking_queued.worker import Worker
from tests.harness.faultserver import (
    FaultServer,
    answer,
    closed_port,
    dribble,
    hang,
    not_http,
    redirect_loop,
    reset,
    trickle_forever,
)

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
NOW = 1_700_000_000.0
# Connect, read: "never answers" costs the suite this much; long enough that a loopback
# answer on a machine busy with other work is never taken for a timeout (0.3 s was not).
TIMEOUT = (2.0, 2.0)
BODY_DEADLINE = 0.5
INITIAL, CAP = 0.05, 0.5


def http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


RETRYABLE = {
    "accepts, never answers": (hang, Retry("timeout")),
    "connection reset": (reset, Retry("connection error: Connection reset by peer")),
    "not HTTP (SSH banner)": (not_http, Retry("connection error: the answer is not HTTP (BadStatusLine)")),
    "500": (answer(500), Retry("HTTP 500")),
    "502": (answer(502), Retry("HTTP 502")),
    "503": (answer(503), Retry("HTTP 503")),
    "504": (answer(504), Retry("HTTP 504")),
    "429 Retry-After seconds": (answer(429, {"Retry-After": "120"}), Retry("HTTP 429", 120.0)),
    "503 Retry-After date": (answer(503, {"Retry-After": http_date(90)}), Retry("HTTP 503", 90.0)),
    "503 Retry-After far future": (
        answer(503, {"Retry-After": http_date(10 * 365 * 86400)}),
        Retry("HTTP 503", MAX_RETRY_AFTER),
    ),
    "429 Retry-After huge seconds": (answer(429, {"Retry-After": "9" * 30}), Retry("HTTP 429", MAX_RETRY_AFTER)),
    "429 Retry-After garbage": (answer(429, {"Retry-After": "soon-ish"}), Retry("HTTP 429", None)),
}
PERMANENT = {
    "404": ([answer(404)], Rejected("HTTP 404")),
    # the first request and MAX_REDIRECTS more hops
    "redirect loop": ([redirect_loop] * 4, Rejected("too many redirects")),
}


def rec(n: int) -> dict:
    return {
        "id": f"event-{n:04d}",
        "event": "print_done",
        "params": {"n": n},
        "post": False,
        "created": NOW,
        "attempts": 0,
        "last_error": None,
    }


@pytest.fixture
def server():
    s = FaultServer()
    yield s
    s.stop()


@pytest.fixture
def delivery():
    d = Delivery(timeout=TIMEOUT, clock=lambda: NOW, body_deadline=BODY_DEADLINE)
    yield d
    d.close()


def timed_send(delivery: Delivery, template: str, limit: float = 3 * sum(TIMEOUT)):
    """Sends one record in a helper thread so a hanging send fails the test instead of the suite."""
    result = []
    thread = threading.Thread(target=lambda: result.append(delivery.send(rec(1), template, UID)), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(limit)
    assert result, f"send did not return within {limit} s"
    return result[0], time.monotonic() - started


def test_refused_connection_retries(delivery):
    outcome, _ = timed_send(delivery, f"http://127.0.0.1:{closed_port()}/{{id}}/{{event}}/")
    assert outcome == Retry("connection error: Connection refused")


@pytest.mark.parametrize("name", RETRYABLE)
def test_retryable_fault_then_recovery(server, delivery, name):
    behaviour, expected = RETRYABLE[name]
    server.then(behaviour)
    outcome, elapsed = timed_send(delivery, server.template)
    assert outcome == expected
    assert elapsed < 2 * sum(TIMEOUT) + 0.5
    # the same Delivery (and its connection pool) works once the server recovers
    assert delivery.send(rec(2), server.template, UID) == Delivered(200)
    assert server.delivered[-1]["event_id"] == "event-0002"


@pytest.mark.parametrize("name", PERMANENT)
def test_permanent_fault_is_rejected_with_reason(server, delivery, name):
    behaviours, expected = PERMANENT[name]
    server.then(*behaviours)
    outcome, _ = timed_send(delivery, server.template)
    assert outcome == expected


def test_slow_byte_by_byte_answer_is_waited_for(server, delivery):
    # each byte within the read timeout: a slow but correct server is not a failure
    server.then(dribble(0.002))
    outcome, _ = timed_send(delivery, server.template)
    assert outcome == Delivered(200)


def test_endless_trickling_body_does_not_hold_the_worker(server, delivery):
    """Found by this suite: `response.content` read a never-ending body forever."""
    server.then(trickle_forever(0.05))
    outcome, elapsed = timed_send(delivery, server.template)
    assert outcome == Delivered(200)  # the status line had said 200
    assert elapsed < BODY_DEADLINE + sum(TIMEOUT)  # bounded by the body deadline, not the trickle
    assert delivery.send(rec(2), server.template, UID) == Delivered(200)


class Steps:
    """Drives Worker.run_once with a fake monotonic clock that jumps over every wait."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_stays_in_bounds_and_honours_retry_after(tmp_path, server, delivery):
    queue = open_queue(str(tmp_path))
    for n in range(3):
        queue.put(rec(n))
    faults = [RETRYABLE[name] for name in RETRYABLE]
    server.then(*(behaviour for behaviour, _ in faults))
    clock = Steps()
    worker = Worker(
        queue,
        lambda r: delivery.send(r, server.template, UID),
        lambda: None,
        initial_delay=INITIAL,
        max_delay=CAP,
        clock=clock,
        wall=lambda: NOW,
        rand=random.Random(4).random,
    )
    for failures, (_, expected) in enumerate(faults, start=1):
        wait = worker.run_once()
        ceiling = min(CAP, INITIAL * 2 ** (failures - 1))
        if expected.after is not None and expected.after > ceiling:
            assert wait == expected.after  # Retry-After is a minimum, itself capped at 6 h
        else:
            assert 0 <= wait <= ceiling
        assert worker.status()["last_error"] == expected.reason
        assert queue.stats()["pending"] == 3  # nothing lost, nothing sent twice
        clock.now += wait
    while worker.run_once() == 0:  # delivered records ask for no wait
        pass
    assert [p["event_id"] for p in server.delivered] == ["event-0000", "event-0001", "event-0002"]
    assert worker.status()["failures"] == 0
    queue.close()


def test_worker_thread_survives_every_fault_and_delivers_the_rest(tmp_path, server, delivery):
    queue = open_queue(str(tmp_path))
    count = 20
    for n in range(count):
        queue.put(rec(n))
    target = {"template": f"http://127.0.0.1:{closed_port()}/{{id}}/{{event}}/"}  # refused first
    changed = threading.Condition()

    def on_change() -> None:
        with changed:
            changed.notify_all()

    worker = Worker(
        queue,
        lambda r: delivery.send(r, target["template"], UID),
        lambda: None,
        initial_delay=INITIAL,
        max_delay=CAP,
        on_change=on_change,
    )
    server.then(
        *(b for name, (b, _) in RETRYABLE.items() if "Retry-After" not in name),
        answer(429, {"Retry-After": "1"}),
        *PERMANENT["404"][0],
        *PERMANENT["redirect loop"][0],
        reset,
        answer(503),
    )
    worker.start()
    try:
        with changed:
            assert changed.wait_for(lambda: worker.status()["last_error"] or "", timeout=5)
            assert "Connection refused" in worker.status()["last_error"]
            target["template"] = server.template
            worker.flush()
            done = changed.wait_for(lambda: queue.count("all") == queue.count("failed"), timeout=30)
        assert done, queue.stats()
        assert worker.alive
    finally:
        worker.stop()
    failed = queue.page("failed")
    assert sorted(r["last_error"] for r in failed) == ["HTTP 404", "too many redirects"]
    sent = [p["event_id"] for p in server.delivered]
    expected = [rec(n)["id"] for n in range(count) if rec(n)["id"] not in {r["id"] for r in failed}]
    assert sent == expected  # every other record exactly once, in order
    stats = queue.stats()
    assert (stats["delivered"], stats["failed"], stats["pending"]) == (count - 2, 2, 0)
    queue.close()
