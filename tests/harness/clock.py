"""A test server's wall clock, shifted and stepped by the test, as on a board without a
real-time clock (fake-hwclock's stale time at boot, then an NTP step).

``ClockShift(folder)`` owns an offset file; ``env()`` goes into ``octoprint_factory(env=...)``
and puts ``tests/harness/clockshift`` (a ``sitecustomize``) on the server's PYTHONPATH, so the
server's ``time.time()`` is the real time plus the offset, read again within 50 ms of a
change. Its monotonic clock is untouched, as a real clock step leaves it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict

from tools.server import OctoPrintServer, _poll

SITECUSTOMIZE_DIR = Path(__file__).resolve().parent / "clockshift"
DAY = 86400.0


class ClockShift:
    def __init__(self, folder: Path, offset: float = 0.0) -> None:
        self.path = Path(folder) / "clock-offset"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set(offset)

    def set(self, offset: float) -> None:
        """The server's wall clock is ``offset`` seconds ahead (negative: behind) from now on."""
        self.offset = float(offset)
        temporary = self.path.with_suffix(".new")
        temporary.write_text(repr(self.offset), encoding="ascii")
        os.replace(temporary, self.path)  # the server never reads half a number

    def env(self) -> Dict[str, str]:
        paths = [str(SITECUSTOMIZE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {"PYTHONPATH": os.pathsep.join(paths), "TQ_CLOCK_OFFSET_FILE": str(self.path)}

    def wait_applied(self, server: OctoPrintServer, timeout: float = 10) -> None:
        """Until the running server's wall clock shows the offset (within a second)."""
        assert _poll(lambda: abs(server.server_time() - time.time() - self.offset) < 1.0, timeout), (
            f"the server's clock never took the offset {self.offset}"
        )
