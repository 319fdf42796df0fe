"""The runtime's world for unit tests (not a test module): fake OctoPrint callables, fake
settings, clocks and timers fired by hand around a real Runtime."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, Optional

from octoprint_tracking_queued import config
from octoprint_tracking_queued.delivery import Delivered
from octoprint_tracking_queued.runtime import Host, Runtime

SERVER = "http://127.0.0.1:9/track/{id}/{event}/"
BUNDLED_ID = "0123abcd-0000-4000-8000-0123456789ab"
ENVIRONMENT = {"octoprint_version": "1.11.8", "python_version": "3.11.2"}
PRINT_DONE = ("PrintDone", {"path": "a.gcode", "name": "a.gcode", "origin": "local", "time": 12})


def allowed() -> bool:
    return True


class FakeTimer:
    def __init__(self, interval: float, function: Callable[[], None], repeat: bool) -> None:
        self.interval, self.function, self.repeat = interval, function, repeat
        self.started = self.cancelled = self.fired = False

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def live(self) -> bool:
        return self.started and not self.cancelled and not (self.fired and not self.repeat)

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert self.live, f"{self.name} is not running"
        self.fired = True
        self.function()


class FakeTimers:
    """The timer factory: remembers every timer, none runs until a test fires it."""

    def __init__(self) -> None:
        self.made: list[FakeTimer] = []
        self._lock = threading.Lock()  # the worker thread may push too

    def __call__(self, interval: float, function: Callable[[], None], repeat: bool) -> FakeTimer:
        timer = FakeTimer(interval, function, repeat)
        with self._lock:
            self.made.append(timer)
        return timer

    def live(self, name: Optional[str] = None) -> list[FakeTimer]:
        with self._lock:
            return [t for t in self.made if t.live and (name is None or t.name == name)]

    def repeating(self) -> dict[str, float]:
        return {t.name: t.interval for t in self.live() if t.repeat}

    def fire(self, name: str) -> None:
        (timer,) = self.live(name)
        timer.fire()


class FakeSettings:
    """runtime.SettingsAccess over plain dicts; `store` is OctoPrint's save."""

    def __init__(self, **values: Any) -> None:
        self.values = config.defaults()
        self.values.update(server=SERVER, **values)
        self.bundled = {"enabled": True, "unique_id": BUNDLED_ID}
        self.saves = 0

    def merged(self) -> dict:
        return copy.deepcopy(self.values)

    def enabled(self) -> Optional[bool]:
        return self.values["enabled"]

    def unique_id(self) -> Optional[str]:
        return self.values["unique_id"]

    def set_unique_id(self, value: str) -> None:
        self.values["unique_id"] = value
        self.saves += 1

    def bundled_unique_id(self) -> Any:
        return self.bundled["unique_id"]

    def bundled_enabled(self) -> bool:
        return self.bundled["enabled"]

    def disable_bundled(self) -> None:
        self.bundled["enabled"] = False
        self.saves += 1

    def store(self, clean: dict) -> dict:
        for key, value in clean.items():
            if isinstance(value, dict):
                self.values[key].update(value)
            else:
                self.values[key] = value
        self.saves += 1
        return clean


class FakeDelivery:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.got_one = threading.Event()

    def send(self, record: dict, template: str, unique_id: str) -> Delivered:
        assert (template, unique_id) == (SERVER, BUNDLED_ID)
        self.sent.append(record["event"])
        self.got_one.set()
        return Delivered(204)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class World:
    """A runtime and every fake around it."""

    def __init__(self, folder: str, settings: FakeSettings) -> None:
        self.folder = folder
        self.settings = settings
        self.online = True
        self.messages: list[dict] = []
        self.contexts = 0  # how often a record context was built (it asks for the user names)
        self.timers = FakeTimers()
        self.delivery = FakeDelivery()
        self.monotonic = FakeClock(500.0)
        self.wall = FakeClock(float(int(time.time())))  # the queue's age cap uses the real clock
        self.runtime = Runtime(
            Host(
                is_online=lambda: self.online,
                printer_state=lambda: "OPERATIONAL",
                enabled_plugins=lambda: [("someplugin", "1.0")],
                unlocked_achievements=lambda: ["the_wizard"],
                user_names=self._user_names,
                send_plugin_message=self.messages.append,
                environment=lambda: dict(ENVIRONMENT),
                throttle_helper=lambda: None,
                bundled_loaded=lambda: True,
            ),
            settings,
            folder,
            user_agent="OctoPrint/1.11.8",
            delivery=self.delivery,
            timer=self.timers,
            clock=self.monotonic,
            wall=self.wall,
        )

    def _user_names(self) -> list[str]:
        self.contexts += 1
        return ["alice"]

    def pending(self) -> list[str]:
        return [r["event"] for r in self.runtime.queue.page("pending", 0, 200)]

    def save(self, **data: Any) -> None:
        self.runtime.on_settings_save(data, self.settings.store)
