"""The plugin at run time: queue, worker, delivery, lock, record maker and timers in one object.

Built from plain callables (`Host`) and a settings accessor (`SettingsAccess`) rather than
OctoPrint's objects, so unit tests build it with fakes and fire its timers by hand.
`__init__.py` hands OctoPrint's objects over as callables; `api.py` calls the commands.
What reaches OctoPrint's event thread never raises: errors are logged.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional

from flask_babel import gettext
from octoprint.events import Events
from octoprint.util import RepeatedTimer

from . import config, policy, records, system
from .clock import Clocks
from .delivery import Delivery, Outcome, with_sent_params
from .lock import QueueLock
from .queue import TrackingQueue
from .worker import Worker

if TYPE_CHECKING:
    from typing import Protocol  # novermin (type checkers only; object at run time, below)

    from .api import StatusBody
else:
    # typing.Protocol is 3.8+; these classes only describe what the runtime is handed.
    Protocol = object


class Timer(Protocol):
    def start(self) -> None: ...
    def cancel(self) -> None: ...


class SettingsAccess(Protocol):
    """The stored settings the runtime reads or writes, beyond the resolved ones."""

    def merged(self) -> Mapping[str, Any]: ...  # plugins.tracking_queued, defaults filled in
    def enabled(self) -> Optional[bool]: ...  # the user's decision, None until made
    def unique_id(self) -> Optional[str]: ...
    def set_unique_id(self, value: str) -> None: ...  # stores and saves
    def bundled_unique_id(self) -> Any: ...  # plugins.tracking.unique_id
    def bundled_enabled(self) -> bool: ...  # plugins.tracking.enabled
    def disable_bundled(self) -> None: ...  # plugins.tracking.enabled = false, saved


THROTTLE_REFRESH = 300.0
# Live updates to the settings tab: at most this many per second.
PUSH_INTERVAL = 0.5

logger = logging.getLogger("octoprint.plugins.tracking_queued")

TimerFactory = Callable[[float, Callable[[], None], bool], Timer]  # (interval, function, repeat)


class OneShots:
    """Runs one-shot timers on one daemon thread of its own.

    A `threading.Timer` is a thread: starting one costs its caller a thread start (0.1 ms,
    2 ms under load here), and the first tracked event of every push window paid that on
    OctoPrint's event thread. Here a start is a heap push; the thread sleeps until the
    earliest timer is due, and without any timer it does not wake at all."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _OneShot]] = []
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


@dataclass
class Host:
    """What the runtime needs to know of OctoPrint, as plain callables."""

    is_online: Callable[[], bool]  # the connectivity check's verdict (True when it is off)
    printer_state: Callable[[], Optional[str]]  # for ping
    enabled_plugins: Callable[[], list[tuple[str, Optional[str]]]]  # third-party (key, version), for pong
    unlocked_achievements: Callable[[], Optional[list[str]]]  # keys; None without the achievements plugin
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
        self._sessions: dict[tuple[str, str], float] = {}
        self._users: dict[str, list[float]] = {}
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


class Runtime:
    def __init__(
        self,
        host: Host,
        settings: SettingsAccess,
        folder: str,
        user_agent: str,
        delivery: Optional[Delivery] = None,
        timer: TimerFactory = thread_timer,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        octoprint_2: bool = False,
    ) -> None:
        """`octoprint_2`: make the records OctoPrint 2.0's bundled plugin makes (records.RecordMaker)."""
        self._host = host
        self._settings = settings
        self._timer = timer
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self._maker = records.RecordMaker(octoprint_2)
        self._throttle = system.ThrottleSource()
        self._timers: list[Timer] = []  # ping, pong, throttle refresh: while tracking
        self._firmware_timer: Optional[Timer] = None
        self._push_timer: Optional[Timer] = None
        self._push_lock = threading.Lock()
        self._consent = threading.Lock()  # an opt-out and a record being stored never interleave
        self._tracking = False
        self._settings_errors: list[str] = []  # refused values of the last settings save
        self.queue: Optional[TrackingQueue] = None
        self.worker: Optional[Worker] = None
        self.reload()
        if self.enabled:
            self._init_unique_id()  # events can come before start()
        # One sender per queue: the command line's flush/clear refuse while we hold this.
        self.lock = QueueLock(folder)
        if not self.lock.acquire():
            logger.warning("The tracking queue is locked by another process; sending waits until it is free")
        queue_cfg = self._effective["queue"]
        self.queue = TrackingQueue(
            folder, queue_cfg["max_records"], queue_cfg["max_age_days"], clocks=Clocks(wall=wall, mono=clock)
        )
        self.webui_limit = WebuiLoadLimit(clock)
        if not self.enabled:
            self._opt_out()  # config.yaml says off: what was collected before stays unsent
        self._delivery = delivery or Delivery(user_agent=user_agent)
        retry = self._effective["retry"]
        self.worker = Worker(
            self.queue,
            send=self._send,
            blocked=self._blocked,
            initial_delay=retry["initial_delay"],
            max_delay=retry["max_delay"],
            on_change=self._push_status,
        )

    # ~~ settings

    def reload(self) -> None:
        """Applies the stored settings; bad values in config.yaml are replaced by defaults."""
        self.apply(*config.resolve(self._settings.merged() or {}))

    def apply(self, effective: dict[str, Any], config_errors: Iterable[str] = ()) -> None:
        """Runs with these resolved settings from now on."""
        self._effective, self._config_errors = effective, list(config_errors)
        for error in self._config_errors:
            logger.error("Configuration error, value not used: %s", error)
        self.enabled = self._settings.enabled() is True
        # Read here, not per record: one OctoPrint settings lookup (~60 µs) costs a fifth of
        # the record's commit, and every record needs the id twice.
        self._unique_id = self._settings.unique_id() or ""
        self._tracked_events = records.tracked_events(effective["events"])
        if self.queue is not None:
            self.queue.max_records = effective["queue"]["max_records"]
            self.queue.max_age_days = effective["queue"]["max_age_days"]
        if self.worker is not None:
            self.worker.initial_delay = effective["retry"]["initial_delay"]
            self.worker.max_delay = effective["retry"]["max_delay"]
            self.worker.wake()

    @property
    def effective(self) -> dict[str, Any]:
        """The resolved settings in force."""
        return self._effective

    def on_settings_save(self, data: Any, store: Callable[[dict], Any]) -> Any:
        """A save from the UI or API: refuses bad values, `store`s the rest, then applies them.

        OctoPrint swallows exceptions here, so bad values are dropped rather than raised.
        """
        was_enabled = self.enabled
        clean, self._settings_errors = config.clean_update(data or {}, from_api=True)
        for error in self._settings_errors:
            logger.warning("Refused setting, old value kept: %s", error)
        result = store(clean)
        with self._consent:
            self.reload()
            opted_out = was_enabled and not self.enabled
            if opted_out:
                self._opt_out()
        if self.enabled and not was_enabled:
            self._turn_off_bundled()
            self._start_tracking()
        elif opted_out:
            self._stop_tracking()
        self._push_status()  # reload woke the worker
        return result

    def _init_unique_id(self) -> None:
        """Generated on first activation, so an instance that never opts in has no id."""
        if self._settings.unique_id():
            return
        # Keep the instance's identity: adopt the bundled plugin's id when it has one.
        bundled = self._settings.bundled_unique_id()
        try:
            unique_id = config.validate_unique_id(bundled)
        except config.SettingError as error:
            unique_id = str(uuid.uuid4())
            if bundled:
                logger.info("Not adopting the bundled plugin's instance id (%s); generated a new one", error.reason)
        self._settings.set_unique_id(unique_id)
        self._unique_id = unique_id

    def _opt_out(self) -> None:
        """Consent withdrawn: nothing collected before may leave later, not even after opting in
        again. A record being sent right now may still arrive; none after it."""
        self.queue.clear("all", reason="opted out")

    def _turn_off_bundled(self) -> None:
        """Both plugins on would count this instance twice."""
        if self._settings.bundled_enabled():
            self._settings.disable_bundled()
            logger.info("Turned the bundled Anonymous Usage Tracking plugin off")

    def bundled_enabled(self) -> bool:
        return bool(self._host.bundled_loaded() and self._settings.bundled_enabled())

    # ~~ life cycle

    def start(self) -> None:
        """After OctoPrint's start-up: the worker runs, and tracking starts when enabled."""
        self.worker.start()
        if self.enabled:
            self._turn_off_bundled()
            self._start_tracking()

    def shutdown(self) -> None:
        if self.enabled:
            # Queued, not sent: a request at exit is cut off; the record goes out after the next start.
            self._track(records.shutdown)
        self._stop_tracking()
        if self._firmware_timer:
            self._firmware_timer.cancel()
        if not self.worker.stop():
            logger.info("Tracking worker still busy at shutdown; its record stays queued")
        else:
            # A worker still sending keeps the lock until the process ends, which frees it.
            self.lock.release()

    def _start_tracking(self) -> None:
        if self._tracking or not self.enabled:
            return
        self._tracking = True
        self._init_unique_id()
        self._track(lambda ctx: records.startup(self._host.environment(), ctx))
        pi_helper = self._host.throttle_helper()
        self._throttle = system.ThrottleSource(pi_helper=pi_helper)
        if pi_helper is None:
            self._add_timer(THROTTLE_REFRESH, self._throttle.refresh)
        self._add_timer(self._effective["ping"], self._track_ping)
        if self._effective["pong"]:
            self._add_timer(self._effective["pong"], self._track_pong)

    def _stop_tracking(self) -> None:
        self._tracking = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _add_timer(self, interval: float, function: Callable[[], None]) -> None:
        timer = self._timer(interval, function, True)
        timer.start()
        self._timers.append(timer)

    # ~~ records

    def on_event(self, event: str, payload: Any) -> None:
        """From OctoPrint's event thread: commits the record, if any, before returning."""
        try:
            if event == Events.CONNECTIVITY_CHANGED:
                self.worker.wake()
                self._push_status()
                return
            if not self.enabled:
                return
            if event == records.THROTTLE_EVENT and isinstance(payload, dict):
                self._throttle.update(payload)
            if event not in self._tracked_events:
                return  # the common case: no context built, nothing written
            self._track(lambda ctx: self._maker.from_event(event, payload, ctx))
            if self._maker.awaiting_firmware and self._firmware_timer is None:
                self._firmware_timer = self._timer(records.FIRMWARE_TIMEOUT, self._firmware_timeout, False)
                self._firmware_timer.start()
        except Exception:
            logger.exception("Error while handling event %s", event)

    def _firmware_timeout(self) -> None:
        self._firmware_timer = None
        self._track(self._maker.firmware_timeout)

    def _track_ping(self) -> None:
        uptime = self._clock() - self._started
        state = self._host.printer_state()
        self._track(lambda ctx: records.ping(uptime, state, ctx))

    def _track_pong(self) -> None:
        plugins = self._host.enabled_plugins()
        try:
            achievements = self._host.unlocked_achievements()
        except Exception:
            achievements = None
        self._track(lambda ctx: records.pong(self._host.environment(), plugins, achievements, ctx))

    def track_webui_load(self, payload: Any, caller: tuple[str, str] = ("", "")) -> tuple[bool, float]:
        """The web UI of `caller` (user id, session id) loaded: (queued, seconds until this caller
        may report again when refused by the rate limit, else 0). BadPayload when it is unusable."""
        if not self.enabled:
            return False, 0.0
        record = records.webui_load(payload, self._context())
        if record is None:
            return False, 0.0
        wait = self.webui_limit.admit(*caller)
        if wait:
            return False, wait
        self._enqueue(record)
        return True, 0.0

    def _track(self, build: Callable[[records.Context], Optional[dict]]) -> None:
        """Builds a record with a fresh context and queues it; never raises into OctoPrint."""
        try:
            self._enqueue(build(self._context()))
        except records.BadPayload as error:
            logger.warning("Skipped a tracking event: %s", error)
        except Exception:
            logger.exception("Could not record a tracking event")

    def _context(self) -> records.Context:
        return records.Context(
            unique_id=self._unique_id,
            switches=self._effective["events"],
            now=self._wall(),
            throttle=self._throttle.current(),
            private_words=self._user_names(),
        )

    def _user_names(self) -> tuple[str, ...]:
        try:
            return tuple(self._host.user_names())
        except Exception:  # a user manager without a user list must not stop tracking
            return ()

    def _enqueue(self, record: Optional[dict]) -> None:
        if record is None:
            return
        # Checked and stored under the lock an opt-out clears under: a record made on
        # another thread (a timer, the web UI) just before it cannot land just after it.
        with self._consent:
            if not self.enabled:
                return
            stored = self.queue.put(record)
        if stored:
            self.worker.wake()
        self._push_status()

    # ~~ sending

    def _blocker(self) -> policy.Blocker:
        return policy.send_blocker(self.enabled, self._effective, self._config_errors)

    def _blocked(self) -> policy.Blocker:
        """Why the worker must not send now, or None."""
        blocker = self._blocker()
        if blocker:
            return blocker
        if not self.lock.acquire():
            return "locked", gettext("Another process (a command line flush or clear?) is using the queue.")
        if not self._host.is_online():
            return "offline", gettext("OctoPrint's connectivity check reports no internet connection.")
        return None

    def _send(self, record: dict) -> Outcome:
        return self._delivery.send(record, self._effective["server"], self._unique_id)

    # ~~ commands (api.py)

    def flush(self) -> Optional[str]:
        """Sends now; or the reason why not (disabled, configuration error)."""
        blocker = self._blocker()
        if blocker:  # a flush overrides the backoff and an offline verdict, never these
            return blocker[1]
        self.worker.flush()
        return None

    def retry_failed(self) -> int:
        count = self.queue.requeue_failed()
        self.worker.flush()
        self._push_status()
        return count

    def clear(self, scope: str) -> int:
        count = self.queue.clear(scope)
        self._push_status()
        return count

    def page(self, scope: str, offset: int, limit: int, **keys: Any) -> tuple[list[dict], int]:
        """A page of records, each with `sent` (exactly its request's parameters), and the total.
        `keys`: `after`/`before` a rowid or `last`, as TrackingQueue.page takes them."""
        return with_sent_params(self.queue.page(scope, offset, limit, **keys)), self.queue.count(scope)

    def status(self) -> StatusBody:
        status: dict[str, Any] = self.queue.stats()
        status["worker"] = self.worker.status()
        status["enabled"] = self._settings.enabled()
        status["config_errors"] = self._config_errors
        status["settings_errors"] = self._settings_errors
        status["server_is_default"] = self._effective["server"] == config.DEFAULT_SERVER
        status["bundled_enabled"] = self.bundled_enabled()
        return status  # type: ignore[return-value]

    # ~~ live updates

    def _push_status(self) -> None:
        """Tells open settings tabs to refresh, coalesced to a few pushes per second."""
        with self._push_lock:
            if self._push_timer is not None:
                return
            self._push_timer = self._timer(PUSH_INTERVAL, self._do_push, False)
            self._push_timer.start()

    def _do_push(self) -> None:
        with self._push_lock:
            self._push_timer = None
        try:
            # No data in the push: it reaches every logged-in socket, not only permitted ones.
            self._host.send_plugin_message({"type": "changed"})
        except Exception:
            logger.exception("Could not push the queue status")
