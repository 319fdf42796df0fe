"""Scenario 1: SIGKILL OctoPrint again and again while it drains a large backlog to a slow server.

Every record carries an event_id, so the receiver's log tells a duplicate (same id twice,
allowed once per kill: the one record in flight) from a loss (an id never seen).
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.harness.api import wait_status
from tests.harness.faults import FAST_RETRY, id_counts, prefill, seed, slow_ok

BACKLOG = 2000
KILLS = 10
# Kill after this many new requests, plus a random part of one request's time, so kills
# land before, during and after the receiver's answer and the queue's ack.
KILL_AFTER = (10, 90)


@pytest.mark.slow
def test_crash_loop_loses_nothing(octoprint_factory, receiver):
    rng = random.Random(seed())
    receiver.behaviour = slow_ok(random.Random(rng.random()))
    server = octoprint_factory(plugin_settings=FAST_RETRY, start=False)
    backlog = prefill(server.data_folder, BACKLOG)

    started = time.monotonic()
    kills = 0
    for kills in range(1, KILLS + 1):
        server.start()
        seen = len(receiver.requests)
        target = seen + rng.randint(*KILL_AFTER)
        assert receiver.wait_count(target, timeout=60), f"draining stalled after kill {kills - 1}"
        threading.Event().wait(rng.uniform(0, 0.05))  # a random moment within one request
        server.kill()
    server.start()

    def drained(requests) -> bool:
        return set(backlog) <= {r["params"].get("event_id") for r in requests}

    assert receiver.wait_for(drained, timeout=120), "not every backlog record arrived"
    # plugin's own records of each start (startup, ping) go out after the backlog
    assert receiver.wait_event("startup", count=KILLS + 1, timeout=30)
    # Then nothing is left pending or in flight: every record was acknowledged once.
    final = wait_status(server, lambda s: s["pending"] + s["in_flight"] == 0, timeout=30)
    server.stop()

    requests = receiver.requests
    counts = id_counts(requests)
    missing = [i for i in backlog if counts[i] == 0]
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(
        f"crash loop: fired {BACKLOG} + {len(counts) - BACKLOG} own records, "
        f"received {len(requests)}, unique {len(counts)}, duplicates {duplicates}, "
        f"kills {kills}, {time.monotonic() - started:.1f}s"
    )
    assert not missing
    assert duplicates <= kills
    assert final["failed"] == 0
    # A kill between the answer and the acknowledgement sends a record twice, but it is counted
    # delivered once: the counter commits with the acknowledgement (and survives the kills).
    assert final["delivered"] == len(counts)
