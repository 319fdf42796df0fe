"""The runtime in a world of fakes (tests/unit/fakes.py): what test_runtime.py and
test_runtime_farm.py build (not a test module: no tests here)."""

from __future__ import annotations

import time
from typing import Any

from octoprint_tracking_queued.runtime import Runtime
from tests.unit.fakes import FakeClock, FakeDelivery, FakeHost, FakeSettings, FakeTimers

SERVER = "http://127.0.0.1:9/track/{id}/{event}/"
BUNDLED_ID = "0123abcd-0000-4000-8000-0123456789ab"
ENVIRONMENT = {"octoprint_version": "1.11.8", "python_version": "3.11.2"}
PRINT_DONE = ("PrintDone", {"path": "a.gcode", "name": "a.gcode", "origin": "local", "time": 12})


def allowed() -> bool:
    return True


class World:
    """A runtime and every fake around it."""

    def __init__(self, folder: str, settings: FakeSettings) -> None:
        self.folder = folder
        self.settings = settings
        self.host = FakeHost(ENVIRONMENT)
        self.timers = FakeTimers()
        self.delivery = FakeDelivery(SERVER, BUNDLED_ID)
        self.monotonic = FakeClock(500.0)
        self.wall = FakeClock(float(int(time.time())))  # the queue's age cap uses the real clock
        self.runtime = Runtime(
            self.host.as_host(),
            settings,
            folder,
            user_agent="OctoPrint/1.11.8",
            delivery=self.delivery,
            timer=self.timers,
            clock=self.monotonic,
            wall=self.wall,
        )

    def pending(self) -> list[str]:
        return [r["event"] for r in self.runtime.queue.page("pending", 0, 200)]

    def save(self, **data: Any) -> None:
        self.runtime.on_settings_save(data, self.settings.store)


def settings(**values: Any) -> FakeSettings:
    """The settings of a test server: records go to a loopback template, the bundled plugin
    has an id to adopt."""
    return FakeSettings(SERVER, BUNDLED_ID, **values)
