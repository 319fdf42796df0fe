"""The timers of tracking: one-shots on one thread of their own, repeating ones from OctoPrint."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from octoprint.util import RepeatedTimer

if TYPE_CHECKING:
    from typing import Protocol  # novermin (type checkers only)
else:
    # typing.Protocol is 3.8+ (OctoPi 0.18 has 3.7); these classes only describe what is handed over.
    Protocol = object

logger = logging.getLogger("octoprint.plugins.tracking_queued")


class Timer(Protocol):
    def start(self) -> None: ...
    def cancel(self) -> None: ...


TimerFactory = Callable[[float, Callable[[], None], bool], Timer]  # (interval, function, repeat)


class OneShots:
    """Runs one-shot timers on one daemon thread of its own.

    A `threading.Timer` is a thread: starting one costs its caller a thread start (0.1 ms,
    2 ms under load here), and the first tracked event of every push window paid that on
    OctoPrint's event thread. Here a start is a heap push; the thread sleeps until the
    earliest timer is due, and without any timer it does not wake at all."""

    def __init__(self) -> None:
        self._due: List[Tuple[float, int, _OneShot]] = []
        self._count = itertools.count()  # ties keep their order; timers are not compared
        self._condition = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def timer(self, interval: float, function: Callable[[], None]) -> Timer:
        return _OneShot(self, interval, function)

    def _schedule(self, timer: _OneShot) -> None:
        with self._condition:
            heapq.heappush(self._due, (time.monotonic() + timer.interval, next(self._count), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tracking_queued.timers", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._condition.wait(self._due[0][0] - time.monotonic() if self._due else None)
                timer = heapq.heappop(self._due)[2]
            if not timer.cancelled:
                try:
                    timer.function()
                except Exception:
                    logger.exception("Error in a tracking timer")


class _OneShot:
    def __init__(self, owner: OneShots, interval: float, function: Callable[[], None]) -> None:
        self._owner = owner
        self.interval = interval
        self.function = function
        self.cancelled = False

    def start(self) -> None:
        self._owner._schedule(self)

    def cancel(self) -> None:
        self.cancelled = True  # dropped when it comes due


_ONE_SHOTS = OneShots()


def thread_timer(interval: float, function: Callable[[], None], repeat: bool) -> Timer:
    """A daemon timer; a repeating one runs at once, then every `interval` seconds."""
    if repeat:
        return RepeatedTimer(interval, function, run_first=True, daemon=True)
    return _ONE_SHOTS.timer(interval, function)


class Coalesced:
    """Runs `function` once, `interval` seconds after the first of any number of triggers."""

    def __init__(self, timer: TimerFactory, interval: float, function: Callable[[], None]) -> None:
        self._timer = timer
        self._interval = interval
        self._function = function
        self._pending: Optional[Timer] = None
        self._lock = threading.Lock()

    def trigger(self) -> None:
        with self._lock:
            if self._pending is not None:
                return
            self._pending = self._timer(self._interval, self._run, False)
            self._pending.start()

    def _run(self) -> None:
        with self._lock:
            self._pending = None
        self._function()


class TimerSlot:
    """The timer factory the parts share; a measuring tool may wrap it (`wrap`) and undo that."""

    def __init__(self, factory: TimerFactory) -> None:
        self.factory = factory

    def __call__(self, interval: float, function: Callable[[], None], repeat: bool) -> Timer:
        return self.factory(interval, function, repeat)

    def wrap(self, wrapper: Callable[[TimerFactory, float, Callable[[], None], bool], Timer]) -> Callable[[], None]:
        inner = self.factory
        self.factory = lambda interval, function, repeat: wrapper(inner, interval, function, repeat)

        def undo() -> None:
            self.factory = inner

        return undo
