"""OctoPrint's bundled Anonymous Usage Tracking plugin as a test oracle.

The installed `octoprint.plugins.tracking` is imported and run in this process, its own code
deciding what it would send; nothing of it is copied. What it would send is caught where it
calls `requests` (nothing leaves the process), together with what OctoPrint would hand it:
settings, environment, helpers, the connectivity check. Its 15 s timer (2.0) is caught too and
fired by the test. Used by tests/unit/test_bundled_oracle.py on every OctoPrint in the matrix.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qsl, urlsplit

from octoprint_tracking_queued import delivery

SERVER = "http://127.0.0.1:9/track/{id}/{event}/"
# OctoPrint's own kill switches for the bundled plugin; the oracle must run regardless.
_KILL_SWITCHES = ("CI", "OCTOPRINT_DISABLE_TRACKING")


@dataclass(frozen=True)
class Sent:
    """One request as it goes on the wire: event, GET or POST, decoded parameters (text)."""

    event: str
    post: bool
    params: dict


def wire(record: Optional[dict]) -> Optional[Sent]:
    """This plugin's record as its request carries it (without event_time/event_id, which the
    bundled plugin does not send)."""
    if record is None:
        return None
    return Sent(record["event"], bool(record["post"]), dict(parse_qsl(delivery.encode(record["params"]), True)))


def installed_version() -> str:
    from octoprint.util.version import get_octoprint_version_string

    return get_octoprint_version_string()


def register_plugin_events(monkeypatch: Any, names: Iterable[str]) -> None:
    """Adds plugin events to OctoPrint's Events as a server does when their plugins load (the
    bundled plugin ignores an event whose constant is missing), undone after the test."""
    from octoprint.events import Events

    for name in names:
        if name.startswith("plugin_"):
            monkeypatch.setattr(Events, Events._to_identifier(name), name, raising=False)


class _Settings:
    def __init__(self, values: dict) -> None:
        self.values = values

    def get(self, path: list, **_: Any) -> Any:
        value: Any = self.values
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def get_boolean(self, path: list, **_: Any) -> bool:
        return bool(self.get(path))

    def get_int(self, path: list, **_: Any) -> Optional[int]:
        value = self.get(path)
        return None if value is None else int(value)

    def set(self, path: list, value: Any, **_: Any) -> None:
        target = self.values
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value

    def save(self, *_: Any, **__: Any) -> None:
        pass


class _Immediate:
    """The plugin's executor: runs each submitted send at once, on this thread."""

    def submit(self, function: Callable, *args: Any, **kwargs: Any) -> None:
        function(*args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        pass


class _Timer:
    def __init__(self, interval: float, function: Callable, args: tuple = (), kwargs: Optional[dict] = None) -> None:
        self.interval, self.function, self.args, self.kwargs = interval, function, args, kwargs or {}
        self.started = self.cancelled = False

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True


class BundledTracking:
    """One instance of the bundled plugin, as OctoPrint would wire it, with its sends caught."""

    def __init__(
        self,
        monkeypatch: Any,
        unique_id: str,
        switches: Optional[dict] = None,
        environment: Optional[dict] = None,
        throttle: Optional[dict] = None,
        plugins: Iterable[tuple[str, Optional[str], bool]] = (),
        achievements: Optional[list[str]] = None,
        printer_state: str = "OPERATIONAL",
        monotonic: float = 1000.0,
    ) -> None:
        module = importlib.import_module("octoprint.plugins.tracking")
        self.module = module
        self.requests: list[tuple[str, str, str]] = []  # (method, url, encoded parameters)
        self.timers: list[_Timer] = []
        self.errors: list[str] = []  # what its on_event raised (OctoPrint would log it)
        self.now = monotonic
        for name in _KILL_SWITCHES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(module, "requests", SimpleNamespace(get=self._get, post=self._post))
        monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=lambda: self.now))
        if hasattr(module, "threading"):  # 2.0: the firmware wait is a threading.Timer
            monkeypatch.setattr(module, "threading", SimpleNamespace(Timer=self._timer))

        plugin = module.TrackingPlugin()
        plugin._executor.shutdown(wait=False)  # its own never runs: sends happen at once
        plugin._executor = _Immediate()
        defaults = plugin.get_settings_defaults()
        if switches is not None:
            defaults["events"] = {name: bool(switches.get(name)) for name in defaults["events"]}
        plugin._settings = _Settings({**defaults, "enabled": True, "unique_id": unique_id, "server": SERVER})
        plugin._logger = logging.getLogger("tests.bundled_tracking")
        plugin._connectivity_checker = SimpleNamespace(online=True)
        plugin._environment = environment
        plugin._printer = SimpleNamespace(get_state_id=lambda: printer_state)
        plugin._plugin_manager = SimpleNamespace(
            enabled_plugins={
                key: SimpleNamespace(key=key, version=version, bundled=bundled) for key, version, bundled in plugins
            },
            get_helpers=lambda *_: None,
        )
        if throttle is not None:
            plugin._helpers_get_throttle_state = lambda run_now=False: dict(throttle)
        if achievements is not None:
            plugin._helpers_get_unlocked_achievements = lambda: [SimpleNamespace(key=k) for k in achievements]
        self.plugin = plugin
        self.unique_id = unique_id

    # ~~ what it sends

    def _get(self, url: str, params: str = "", **_: Any) -> None:
        self.requests.append(("GET", url, params))

    def _post(self, url: str, data: str = "", **_: Any) -> None:
        self.requests.append(("POST", url, data))

    def _timer(self, *args: Any, **kwargs: Any) -> _Timer:
        timer = _Timer(*args, **kwargs)
        self.timers.append(timer)
        return timer

    def take(self) -> list[Sent]:
        """What it sent since the last call, decoded."""
        sent = []
        prefix, suffix = SERVER.format(id=self.unique_id, event="\0").split("\0")
        for method, url, encoded in self.requests:
            assert url.startswith(prefix) and url.endswith(suffix), urlsplit(url).path
            event = url[len(prefix) : len(url) - len(suffix)]
            sent.append(Sent(event, method == "POST", dict(parse_qsl(encoded, True))))
        self.requests.clear()
        return sent

    # ~~ driving it

    def on_event(self, event: str, payload: Any) -> list[Sent]:
        """Its on_event; an exception (OctoPrint logs it) means that nothing is sent."""
        try:
            self.plugin.on_event(event, payload)
        except Exception as error:
            self.errors.append(f"{event}: {error!r}")
        return self.take()

    def fire_timers(self) -> list[Sent]:
        """Runs every started, not cancelled timer (2.0's 15 s wait for FirmwareData)."""
        for timer in [t for t in self.timers if t.started and not t.cancelled]:
            timer.cancelled = True
            timer.function(*timer.args, **timer.kwargs)
        return self.take()

    def call(self, name: str, *args: Any) -> list[Sent]:
        """One of its own trackers (`_track_startup`, `_track_ping`, ...) or API command."""
        getattr(self.plugin, name)(*args)
        return self.take()


def octoprint_2(version: str) -> bool:
    return int(version.split(".")[0]) >= 2
