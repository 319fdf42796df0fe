"""Event to record to queue: OctoPrint's events, the ping and pong heartbeats, the firmware wait
and the web UI's page loads (rate-limited). What reaches OctoPrint's event thread never raises."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from . import catalogue, records, system
from .consent import Consent
from .store import Writer
from .timers import Timer, TimerFactory

THROTTLE_REFRESH = 300.0

logger = logging.getLogger("octoprint.plugins.tracking_queued")


@dataclass
class Host:
    """What the runtime needs to know of OctoPrint, as plain callables."""

    is_online: Callable[[], bool]  # the connectivity check's verdict (True when it is off)
    printer_state: Callable[[], Optional[str]]  # for ping
    enabled_plugins: Callable[[], List[Tuple[str, Optional[str]]]]  # third-party (key, version), for pong
    unlocked_achievements: Callable[[], Optional[List[str]]]  # keys; None without the achievements plugin
    user_names: Callable[[], Iterable[str]]  # scrubbed from free texts
    send_plugin_message: Callable[[dict], None]  # to the open web UIs
    environment: Callable[[], dict]  # the startup and pong parameters
    throttle_helper: Callable[[], Optional[Callable[[], Any]]]  # pi_support's get_throttled, if loaded
    bundled_loaded: Callable[[], bool]  # the bundled tracking plugin is loaded and enabled


class WebuiLoadLimit:
    """Any logged-in browser may report a page load, so a reload loop or a script could flood
    the queue: one report per user and session a minute, and a few per user across sessions."""

    WINDOW = 60.0
    PER_USER = 3

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sessions: Dict[Tuple[str, str], float] = {}
        self._users: Dict[str, List[float]] = {}
        self._lock = threading.Lock()

    def admit(self, user: str, session: str) -> float:
        """0 when this caller may report now (counted), else the seconds until it may."""
        now = self._clock()
        with self._lock:
            if len(self._sessions) > 1000:  # forget callers whose minute is over
                self._sessions = {k: t for k, t in self._sessions.items() if now - t < self.WINDOW}
                self._users = {u: ts for u, ts in self._users.items() if ts and now - ts[-1] < self.WINDOW}
            recent = [t for t in self._users.get(user, []) if now - t < self.WINDOW]
            last = self._sessions.get((user, session))
            waits = []
            if last is not None and now - last < self.WINDOW:
                waits.append(self.WINDOW - (now - last))
            if len(recent) >= self.PER_USER:
                waits.append(self.WINDOW - (now - recent[0]))
            if waits:
                return max(waits)
            self._sessions[(user, session)] = now
            self._users[user] = [*recent, now]
            return 0.0


class Tracker:
    """Makes records and stores them; `stored(bool)` is told after each try."""

    def __init__(
        self,
        host: Host,
        consent: Consent,
        queue: Writer,
        timer: TimerFactory,
        clock: Callable[[], float],
        wall: Callable[[], float],
        stored: Callable[[bool], None],
        octoprint_2: bool = False,
    ) -> None:
        self._host = host
        self._consent = consent
        self._queue = queue
        self._timer = timer
        self._clock = clock
        self._wall = wall
        self._stored = stored
        self._started = clock()
        self._maker = catalogue.RecordMaker(octoprint_2)
        self._throttle = system.ThrottleSource()
        self._timers: List[Timer] = []  # ping, pong, throttle refresh: while tracking
        self._firmware_timer: Optional[Timer] = None
        # How long a connection waits for FirmwareData; tests that wait for it shorten it.
        self.firmware_timeout = records.FIRMWARE_TIMEOUT
        self._tracking = False
        self._effective: Dict[str, Any] = {}
        self._tracked_events: frozenset = frozenset()
        self.webui_limit = WebuiLoadLimit(clock)

    def configure(self, effective: Dict[str, Any]) -> None:
        self._effective = effective
        self._tracked_events = catalogue.tracked_events(effective["events"])

    # ~~ while tracking

    def start(self) -> None:
        if self._tracking or not self._consent.recording:
            return
        self._tracking = True
        self._consent.ensure_unique_id()
        self.track(lambda ctx: records.startup(self._host.environment(), ctx))
        pi_helper = self._host.throttle_helper()
        self._throttle = system.ThrottleSource(pi_helper=pi_helper)
        if pi_helper is None:
            self._add_timer(THROTTLE_REFRESH, self._throttle.refresh)
        self._add_timer(self._effective["ping"], self.ping)
        if self._effective["pong"]:
            self._add_timer(self._effective["pong"], self.pong)

    def stop(self) -> None:
        self._tracking = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def shutdown(self) -> None:
        if self._consent.recording:
            # Queued, not sent: a request at exit is cut off; the record goes out after the next start.
            self.track(records.shutdown)
        self.stop()
        if self._firmware_timer:
            self._firmware_timer.cancel()

    def _add_timer(self, interval: float, function: Callable[[], None]) -> None:
        timer = self._timer(interval, function, True)
        timer.start()
        self._timers.append(timer)

    # ~~ records

    def on_event(self, event: str, payload: Any) -> None:
        """A tracked event: its record is committed before this returns."""
        if event == records.THROTTLE_EVENT:
            try:
                state = records.throttle_state(payload)
            except records.BadPayload as error:
                # Skipped whole: neither a record nor a state for later records to carry.
                logger.warning("Skipped a tracking event: %s", error)
                return
            self._throttle.update(state)
        if event not in self._tracked_events:
            return  # the common case: no context built, nothing written
        self.track(lambda ctx: self._maker.from_event(event, payload, ctx))
        if self._maker.awaiting_firmware and self._firmware_timer is None:
            self._firmware_timer = self._timer(self.firmware_timeout, self._firmware_timeout, False)
            self._firmware_timer.start()

    def _firmware_timeout(self) -> None:
        self._firmware_timer = None
        self.track(self._maker.firmware_timeout)

    def ping(self) -> None:
        uptime = self._clock() - self._started
        state = self._host.printer_state()
        self.track(lambda ctx: records.ping(uptime, state, ctx))

    def pong(self) -> None:
        plugins = self._host.enabled_plugins()
        try:
            achievements = self._host.unlocked_achievements()
        except Exception:
            achievements = None
        self.track(lambda ctx: records.pong(self._host.environment(), plugins, achievements, ctx))

    def webui_load(self, payload: Any, caller: Tuple[str, str] = ("", "")) -> Tuple[bool, float]:
        """The web UI of `caller` (user id, session id) loaded: (queued, seconds until this caller
        may report again when refused by the rate limit, else 0). BadPayload when it is unusable."""
        if not self._consent.recording:
            return False, 0.0
        record = records.webui_load(payload, self.context())
        if record is None:
            return False, 0.0
        wait = self.webui_limit.admit(*caller)
        if wait:
            return False, wait
        self.enqueue(record)
        return True, 0.0

    def track(self, build: Callable[[records.Context], Optional[dict]]) -> None:
        """Builds a record with a fresh context and queues it; never raises into OctoPrint."""
        try:
            self.enqueue(build(self.context()))
        except records.BadPayload as error:
            logger.warning("Skipped a tracking event: %s", error)
        except Exception:
            logger.exception("Could not record a tracking event")

    def context(self) -> records.Context:
        return records.Context(
            unique_id=self._consent.unique_id,
            switches=self._effective["events"],
            now=self._wall(),
            throttle=self._throttle.current(),
            private_words=self.user_names(),
        )

    def user_names(self) -> Tuple[str, ...]:
        try:
            return tuple(self._host.user_names())
        except Exception:  # a user manager without a user list must not stop tracking
            return ()

    def enqueue(self, record: Optional[dict]) -> None:
        if record is None:
            return
        # Checked and stored under the lock an opt-out clears under: a record made on another
        # thread (a timer, the web UI) just before it cannot land just after it.
        with self._consent.lock:
            if not self._consent.recording:
                return
            stored = self._queue.put(record)
        self._stored(stored)
