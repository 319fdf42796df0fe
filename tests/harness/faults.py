"""Helpers shared by the process-level fault scenarios (tests/integration/test_faults_*.py)."""

from __future__ import annotations

import collections
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from octoprint_tracking_queued.store import open_queue

# Fast retries so a refused or killed receiver costs the suite little time.
FAST_RETRY = {"retry": {"initial_delay": 0.05, "max_delay": 0.5}}


def seed() -> int:
    """The random seed of a scenario: TQ_FAULT_SEED to replay one, else a fresh one (printed)."""
    value = int(os.environ.get("TQ_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fault seed: TQ_FAULT_SEED={value}")
    return value


def prefill(data_folder: Path, count: int, event: str = "backlog", destinations: Optional[int] = None) -> List[str]:
    """Writes `count` records into the plugin's queue file before OctoPrint starts, in one
    transaction, for `destinations` (schema.BIT, the queue's default if None); their ids."""
    data_folder.mkdir(parents=True, exist_ok=True)
    queue = open_queue(str(data_folder), max_records=max(count * 2, 10000))
    if destinations is not None:
        queue.set_destinations(destinations)
    now = time.time()
    ids = [uuid.uuid4().hex for _ in range(count)]
    queue.put_many(
        {"id": i, "event": event, "params": {"n": n}, "post": False, "created": now, "attempts": 0, "last_error": None}
        for n, i in enumerate(ids)
    )
    queue.close()
    return ids


def id_counts(requests: Iterable[Dict[str, Any]]) -> collections.Counter:
    """How often the receiver saw each event_id."""
    return collections.Counter(r["params"].get("event_id") for r in requests)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def slow_ok(rng: random.Random, low: float = 0.02, high: float = 0.05):
    """A receiver behaviour: every request takes low..high seconds, then 200."""

    def behaviour(request: Dict[str, Any]):
        time.sleep(rng.uniform(low, high))  # the point of the behaviour: a slow server
        return 200, {}, b"ok\n"

    return behaviour
