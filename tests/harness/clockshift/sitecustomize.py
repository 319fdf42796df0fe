"""Test-only: shifts this process's wall clock by an offset a test writes to a file.

On the PYTHONPATH of a test server (tests/harness/clock.py puts it there), Python imports
this module at start-up, before OctoPrint or the plugin, so every later ``time.time()``,
including callables bound as default arguments at import (``wall=time.time``), is the
shifted one. The offset (seconds, a float) is read from ``$TQ_CLOCK_OFFSET_FILE`` at most
every ``REREAD`` seconds, so a test steps the clock mid-run as NTP would.

Shifted: time.time, time.time_ns, and localtime/gmtime/ctime/asctime/strftime without a
time argument (log timestamps). Untouched: time.monotonic (and perf_counter), which sleeps,
Event.wait, OctoPrint's RepeatedTimer and the plugin's clock-safe ages run on, as on a
real board. Not shifted: datetime.now()/utcnow()/today(), which C code reads from the
system clock directly; neither the plugin nor OctoPrint's tracking path uses them.
Without the variable this module does nothing.
"""

import os
import time

REREAD = 0.05  # seconds of monotonic time between looks at the offset file

_path = os.environ.get("TQ_CLOCK_OFFSET_FILE")

if _path:
    _real_time, _real_time_ns, _monotonic = time.time, time.time_ns, time.monotonic
    _state = {"offset": 0.0, "next_read": float("-inf")}

    def _offset():
        now = _monotonic()
        if now >= _state["next_read"]:
            _state["next_read"] = now + REREAD
            try:
                with open(_path, encoding="ascii") as file:
                    _state["offset"] = float(file.read().strip() or 0)
            except (OSError, ValueError):
                pass  # keep the last offset: the test replaces the file atomically
        return _state["offset"]

    def _time():
        return _real_time() + _offset()

    def _time_ns():
        return _real_time_ns() + int(_offset() * 1e9)

    class _Shifted:
        """localtime/gmtime/ctime/asctime/strftime: the shifted time when called without one.

        A class, not a function: logging keeps ``time.localtime`` as ``Formatter.converter``,
        a class attribute, where a plain function would become a method and get ``self``."""

        def __init__(self, function, default, at=0):
            self._function, self._default, self._at = function, default, at  # `at`: the time argument
            self.__name__, self.__doc__ = function.__name__, function.__doc__

        def __call__(self, *args):
            if len(args) <= self._at or args[self._at] is None:
                args = (*args[: self._at], self._default())
            return self._function(*args)

    def _struct():
        return _localtime_real(_time())

    _localtime_real = time.localtime
    time.time = _time
    time.time_ns = _time_ns
    for _name in ("localtime", "gmtime", "ctime"):
        setattr(time, _name, _Shifted(getattr(time, _name), _time))
    time.asctime = _Shifted(time.asctime, _struct)
    time.strftime = _Shifted(time.strftime, _struct, at=1)
