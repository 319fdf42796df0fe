"""The documented hook for measuring the plugin at run time (bench/plugins/tq_bench.py), so a
benchmark needs none of the runtime's private attributes."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from .timers import Timer, TimerFactory, TimerSlot
from .worker import Worker


class Instruments:
    def __init__(self, probes: Dict[str, Callable[[], Any]], worker: Worker, timers: TimerSlot) -> None:
        self._probes = probes
        self._worker = worker
        self._timers = timers

    def probes(self) -> Dict[str, Callable[[], Any]]:
        """The steps of tracking one event, each callable alone, so they can be timed."""
        return dict(self._probes)

    def instrument(
        self,
        step: Optional[Callable[[Callable[[], Any]], Any]] = None,
        timer: Optional[Callable[[TimerFactory, float, Callable[[], None], bool], Timer]] = None,
    ) -> Callable[[], None]:
        """Wraps each pass of the worker (`step(run_once)`) and each timer made from now on
        (`timer(factory, interval, function, repeat)`); returns the undo."""
        worker = self._worker
        undo_timer = self._timers.wrap(timer) if timer is not None else None
        if step is not None:
            run_once = worker.run_once
            # The worker's loop calls self.run_once(): an instance attribute shadows it.
            worker.run_once = lambda: step(run_once)  # type: ignore[method-assign]

        def undo() -> None:
            worker.__dict__.pop("run_once", None)
            if undo_timer is not None:
                undo_timer()

        return undo
