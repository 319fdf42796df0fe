"""The one set of fakes the unit tests share (not a test module: no tests here): clocks, timers
fired by hand, OctoPrint's settings and a delivery that always succeeds."""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable, Optional

from octoprint_tracking_queued import config
from octoprint_tracking_queued.clock import Clocks
from octoprint_tracking_queued.delivery import Delivered
from octoprint_tracking_queued.tracker import Host


class FakeClocks(Clocks):
    """Wall and monotonic clocks, boot id and kernel sync state that a test sets by hand.

    `reboot()` starts a new boot: the monotonic clock starts again near zero and the wall
    clock is whatever the board restored (fake-hwclock, 1970, ...).
    """

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 1000.0, boot: str = "boot-1") -> None:
        self.now_wall, self.now_mono, self.boot = wall, mono, boot
        self.kernel_synced: Optional[bool] = False
        super().__init__(
            wall=lambda: self.now_wall,
            mono=lambda: self.now_mono,
            boot_id=lambda: self.boot,
            synced=lambda: self.kernel_synced,
        )

    def advance(self, seconds: float) -> None:
        """Real time passes: both clocks move."""
        self.now_wall += seconds
        self.now_mono += seconds

    def jump_wall(self, seconds: float) -> None:
        """The wall clock is stepped (an NTP sync, a user's `date`): the monotonic clock is not."""
        self.now_wall += seconds

    def reboot(self, boot: str, wall: float, mono: float = 5.0, synced: Optional[bool] = False) -> None:
        self.boot, self.now_wall, self.now_mono, self.kernel_synced = boot, wall, mono, synced


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
    """consent.SettingsAccess over plain dicts; `store` is OctoPrint's save."""

    def __init__(self, server: str, bundled_id: str, **values: Any) -> None:
        self.values = config.defaults()
        self.values.update(server=server, **values)
        self.bundled = {"enabled": True, "unique_id": bundled_id}
        self.saves = 0
        self.durable: dict = {}

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

    def save_durably(self) -> None:
        self.durable = copy.deepcopy(self.values)  # what a power cut would leave of config.yaml

    def store(self, clean: dict) -> dict:
        for key, value in clean.items():
            if isinstance(value, dict):
                self.values[key].update(value)
            else:
                self.values[key] = value
        self.saves += 1
        return clean


class FakeDelivery:
    """Delivers every record, checking it goes where and under the id the test expects."""

    def __init__(self, server: str, unique_id: str) -> None:
        self.expected = (server, unique_id)
        self.sent: list[str] = []
        self.got_one = threading.Event()

    def send(self, record: dict, template: str, unique_id: str) -> Delivered:
        assert (template, unique_id) == self.expected
        self.sent.append(record["event"])
        self.got_one.set()
        return Delivered(204)


class FakeClock:
    """One clock a test sets by hand (`now`)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeHost:
    """OctoPrint as the runtime sees it (tracker.Host): online or not, what it pushed to the web
    UIs, and how often a record context was built (each asks for the user names)."""

    def __init__(self, environment: dict) -> None:
        self.environment = dict(environment)
        self.online = True
        self.messages: list[dict] = []
        self.contexts = 0

    def _user_names(self) -> list[str]:
        self.contexts += 1
        return ["alice"]

    def as_host(self) -> Host:
        return Host(
            is_online=lambda: self.online,
            printer_state=lambda: "OPERATIONAL",
            enabled_plugins=lambda: [("someplugin", "1.0")],
            unlocked_achievements=lambda: ["the_wizard"],
            user_names=self._user_names,
            send_plugin_message=self.messages.append,
            environment=lambda: dict(self.environment),
            throttle_helper=lambda: None,
            bundled_loaded=lambda: True,
        )
