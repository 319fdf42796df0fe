"""The one thread that drains the queue, oldest record first, with capped exponential backoff.

It sleeps on an Event and is woken by a new record, a flush, a connectivity or settings
change, or stop. `run_once` is one step of the loop; tests drive it with a fake clock.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .delivery import Delivered, Outcome, Rejected, Retry, request_params
from .store import TRACKING, Entry, Writer
from .vocabulary import (
    BACKOFF,
    IDLE,
    LOCKED,
    OFFLINE,
    SENDING,
    STOPPED,
    VERDICT_OFFLINE,
    VERDICT_ONLINE,
    VERDICT_REACHABLE,
)

logger = logging.getLogger("octoprint.plugins.tracking_queued.worker")

EXPIRE_EVERY = 60.0
# While blocked (offline, disabled, ...) a wake-up is what matters; this only bounds
# how late the age cap is applied.
BLOCKED_WAIT = 300.0
# A command line flush holds the queue lock only briefly and cannot wake us.
BLOCKED_RECHECK = {LOCKED: 5.0}
IDLE_WAIT = 300.0
STOP_TIMEOUT = 3.0
# Reasons a flush may override: the connectivity check can be wrong, the user's choice not.
FLUSH_OVERRIDES = {OFFLINE}
# A backlog drain logs its first records one by one, then one summary line at its end.
LOG_EACH = 5

SendFn = Callable[[dict], Outcome]
SendManyFn = Callable[[List[dict]], Outcome]
BlockedFn = Callable[[], Optional[Tuple[str, str]]]  # evaluated at import: no tuple[...] before 3.9
LABELS = {TRACKING: "Tracking server"}


def settle(queue: Writer, entry: Any, outcome: Outcome) -> None:
    """What an answer means for the queue: delivered rows go, refused ones fail, others wait.
    `entry`: one Entry, or the entries of one batch (one answer for all)."""
    if isinstance(outcome, Delivered):
        queue.ack(entry)
        if outcome.rejected:
            queue.count_partial(entry.dest if isinstance(entry, Entry) else entry[0].dest, outcome.rejected)
    elif isinstance(outcome, Rejected):
        queue.reject(entry, outcome.reason)
    else:
        queue.retry_later(entry, outcome.reason)


def _answer(send: Callable[[Any], Outcome], what: Any) -> Outcome:
    try:
        return send(what)
    except Exception as error:  # a bug in sending must not lose the record
        logger.exception("Unexpected error while sending a tracking record")
        return Retry(f"internal error: {type(error).__name__}")


def send_next(
    queue: Writer, send: SendFn, sending: Callable[[], None] = lambda: None, dest: str = TRACKING
) -> Optional[Tuple[Entry, Outcome]]:
    """The drain step of the worker and of the command line's flush: the oldest pending record
    goes out with the time its event really happened, and its answer is settled. None when
    nothing is pending; `sending` is told just before a request."""
    entry = queue.next(dest)
    if entry is None:
        return None
    sending()
    outcome = _answer(send, entry.outgoing)
    settle(queue, entry, outcome)
    return entry, outcome


def send_batch(
    queue: Writer,
    send: SendManyFn,
    dest: str,
    limit: int,
    max_bytes: int = 0,
    sending: Callable[[], None] = lambda: None,
) -> Optional[Tuple[List[Entry], Outcome]]:
    """As `send_next`, for a destination that takes many records per request: the oldest
    `limit` go out in one request, and its one answer settles them all in one transaction."""
    entries = queue.next_batch(dest, limit, max_bytes)
    if not entries:
        return None
    sending()
    outcome = _answer(send, [entry.outgoing for entry in entries])
    settle(queue, entries, outcome)
    return entries, outcome


def backoff_delay(failures: int, initial: float, cap: float, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, initial * 2^(failures-1))]."""
    ceiling = min(cap, initial * (2 ** min(max(failures - 1, 0), 62)))
    return rand() * ceiling


class Worker:
    def __init__(
        self,
        queue: Writer,
        send: SendFn,
        blocked: BlockedFn,
        initial_delay: float = 10.0,
        max_delay: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        on_change: Optional[Callable[[], None]] = None,
        dest: str = TRACKING,
        batch: Tuple[int, int] = (0, 0),
        upkeep: bool = True,
    ) -> None:
        """`dest`: the destination this worker drains (each has its own worker, so one being down
        never holds another). `batch`: (records, bytes) per request, with `send` taking a list;
        (0, 0) sends one record per request. `upkeep`: this worker checks the file and expires
        old records (one worker per queue does)."""
        self.queue = queue
        self.dest = dest
        self.batch = batch
        self._upkeep = upkeep
        self._send = send
        self._blocked = blocked
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        # Seconds between passes of the age cap; tests that wait for one shorten it.
        self.expire_every = EXPIRE_EVERY
        self._clock = clock
        self._wall = wall
        self._rand = rand
        self._on_change = on_change or (lambda: None)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._flush = False
        self._failures = 0
        self._next_attempt = 0.0  # monotonic
        self._next_expire = 0.0
        # OctoPrint's check can say offline while the server is reachable (a blocked DNS
        # port): then one record is tried every max_delay, and a success is believed.
        self._next_probe = 0.0
        self.connectivity = VERDICT_ONLINE
        self._drain: Counter = Counter()  # events delivered since the queue last ran dry
        self.state = IDLE
        self.reason: Optional[str] = None
        self.last_error: Optional[str] = None
        self.last_error_at: Optional[float] = None
        self.last_success_at: Optional[float] = None
        self.last_partial: Optional[str] = None  # the last partialSuccess: how many were dropped, why

    # ~~ control (any thread)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            name = "tracking_queued.worker" + ("" if self.dest == TRACKING else "." + self.dest)
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stops the thread; True when it ended within `timeout` (a request in flight may not)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def wake(self) -> None:
        self._wake.set()

    def flush(self) -> None:
        """Send now, ignoring the backoff timer (and an 'offline' verdict)."""
        self._flush = True
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        next_attempt = None
        if self.state == BACKOFF:
            next_attempt = self._wall() + max(0.0, self._next_attempt - self._clock())
        return {
            "state": self.state,
            "reason": self.reason,
            "next_attempt": next_attempt,
            "failures": self._failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_success_at": self.last_success_at,
            "last_partial": self.last_partial,
            "connectivity": self.connectivity,
            "alive": self.alive,
        }

    # ~~ the loop

    def _run(self) -> None:
        try:
            if self._upkeep:
                self.queue.verify()  # reads the whole file: here, not while OctoPrint starts
        except Exception:
            logger.exception("Could not check the tracking queue's file")
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                timeout = self.run_once()
            except Exception:  # never let the thread die: log, then back off
                logger.exception("Unexpected error in the tracking worker")
                timeout = self._fail("internal error", None)
            if timeout != 0:
                self._wake.wait(timeout)
        self._end_drain()
        self._set_state(STOPPED)

    def _set_state(self, state: str, reason: Optional[str] = None) -> None:
        changed = (state, reason) != (self.state, self.reason)
        self.state, self.reason = state, reason
        if changed:
            self._on_change()

    def _fail(self, reason: str, after: Optional[float]) -> float:
        self._failures += 1
        delay = backoff_delay(self._failures, self.initial_delay, self.max_delay, self._rand)
        if after is not None:
            delay = max(delay, after)  # Retry-After is a minimum
        self._next_attempt = self._clock() + delay
        self._flush = False
        self.last_error, self.last_error_at = reason, self._wall()
        self._set_state(BACKOFF, reason)
        return delay

    def run_once(self) -> Optional[float]:
        """One step: returns 0 to go on at once, else seconds to sleep (None: until woken)."""
        if self._stopping.is_set():
            return None
        now = self._clock()
        if self._upkeep and now >= self._next_expire:
            self._next_expire = now + self.expire_every
            self.queue.observe()
            if self.queue.expire():
                self._on_change()
        wait = self._hold(now)
        if wait is not None:
            self._end_drain()
            return wait
        sent = self._send_step()
        if sent is None:
            self._flush = False
            self._end_drain()
            self._set_state(IDLE)
            return IDLE_WAIT
        entries, outcome = sent
        events = ", ".join(sorted({str(entry.record.get("event")) for entry in entries}))
        if self.connectivity != VERDICT_ONLINE:
            self.connectivity = VERDICT_OFFLINE if isinstance(outcome, Retry) else VERDICT_REACHABLE
            self._next_probe = now + self.max_delay
        if isinstance(outcome, Delivered):
            self._failures = 0
            self._next_attempt = 0.0
            self.last_success_at = self._wall()
            for entry in entries:
                self._log_delivery(entry.outgoing)
            if outcome.rejected:
                self.last_partial = f"{outcome.rejected} rejected: {outcome.message or 'no reason given'}"
                logger.warning(
                    "%s dropped %d of %d records: %s", self.label, outcome.rejected, len(entries), outcome.message
                )
            self._on_change()
            return 0
        if isinstance(outcome, Rejected):
            self.last_error, self.last_error_at = outcome.reason, self._wall()
            logger.warning("%s refused event %s: %s", self.label, events, outcome.reason)
            self._on_change()
            return 0
        self._end_drain()
        logger.info("Tracking event %s not delivered to %s (%s), will retry", events, self.dest, outcome.reason)
        return self._fail(outcome.reason, outcome.after)

    @property
    def label(self) -> str:
        return LABELS.get(self.dest, self.dest.capitalize())

    def _send_step(self) -> Optional[Tuple[Sequence[Entry], Outcome]]:
        sending = lambda: self._set_state(SENDING)  # noqa: E731
        if self.batch[0]:
            return send_batch(self.queue, self._send, self.dest, self.batch[0], self.batch[1], sending)
        one = send_next(self.queue, self._send, sending, self.dest)
        return None if one is None else ([one[0]], one[1])

    def _hold(self, now: float) -> Optional[float]:
        """Seconds to wait before the next record may go, or None to send now."""
        blocked = self._blocked()
        if blocked is None:
            self.connectivity = VERDICT_ONLINE
        elif blocked[0] == OFFLINE:
            if self.connectivity == VERDICT_ONLINE:  # the verdict just turned: believe it for a while
                self.connectivity = VERDICT_OFFLINE
                self._next_probe = now + self.max_delay
            if not (self._flush or self.connectivity == VERDICT_REACHABLE or now >= self._next_probe):
                self._set_state(*blocked)
                return min(BLOCKED_WAIT, self._next_probe - now)
        elif not (self._flush and blocked[0] in FLUSH_OVERRIDES):
            self._set_state(*blocked)
            return BLOCKED_RECHECK.get(blocked[0], BLOCKED_WAIT)
        if not self._flush and now < self._next_attempt:
            self._set_state(BACKOFF, self.last_error)
            return self._next_attempt - now
        return None

    def _log_delivery(self, outgoing: dict) -> None:
        """Every payload that leaves is in the log (never the URL or the instance id)."""
        event = outgoing.get("event")
        if sum(self._drain.values()) < LOG_EACH:
            logger.info("Sent tracking event %s, payload: %r", event, request_params(outgoing))
        self._drain[event] += 1

    def _end_drain(self) -> None:
        total = sum(self._drain.values())
        if total > LOG_EACH:
            kinds = ", ".join(f"{event} {count:,}" for event, count in sorted(self._drain.items()))
            where = "" if self.dest == TRACKING else f" to the {self.dest}"
            logger.info("Delivered %s queued tracking records%s: %s", f"{total:,}", where, kinds)
        self._drain.clear()
