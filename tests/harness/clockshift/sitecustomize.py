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

    def _defaulting(function):
        """localtime/gmtime/ctime: the shifted time when called without one."""

        def shifted(secs=None):
            return function(_time() if secs is None else secs)

        shifted.__name__, shifted.__doc__ = function.__name__, function.__doc__
        return shifted

    def _strftime(format, t=None, _real=time.strftime):
        return _real(format, time.localtime() if t is None else t)

    def _asctime(t=None, _real=time.asctime):
        return _real(time.localtime() if t is None else t)

    time.time = _time
    time.time_ns = _time_ns
    for _name in ("localtime", "gmtime", "ctime"):
        setattr(time, _name, _defaulting(getattr(time, _name)))
    time.asctime = _asctime
    time.strftime = _strftime
