"""The plugin at run time: builds the parts in named steps, runs their life cycle and offers the
commands the API calls.

The parts: the settings in force (config.py), `Consent` (opt-in, id, the bundled plugin), the
queue (store/), the `Tracker` (events to records), the `Worker` (records to the server) and
the timers. Built from plain callables (`Host`) and a settings accessor (`SettingsAccess`), so
unit tests build it with fakes and fire its timers by hand.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from flask_babel import gettext
from octoprint.events import Events

from . import config, policy
from .clock import Clocks
from .commands import Commands
from .consent import Consent, SettingsAccess
from .delivery import Delivery, Outcome
from .farm import Farm
from .lock import QueueLock
from .otlp import Collector
from .probes import Instruments
from .store import COLLECTOR, TRACKING, Writer, open_queue
from .timers import Coalesced, TimerFactory, TimerSlot, thread_timer
from .tracker import Host, Tracker
from .worker import Worker

__all__ = ["PUSH_INTERVAL", "Host", "Runtime", "SettingsAccess"]

# Live updates to the settings tab: at most this many per second.
PUSH_INTERVAL = 0.5

logger = logging.getLogger("octoprint.plugins.tracking_queued")


class Runtime(Commands):
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
        collector: Optional[Collector] = None,
        plugin_version: str = "",
    ) -> None:
        """`octoprint_2`: make the records OctoPrint 2.0's bundled plugin makes (catalogue.RecordMaker).
        `collector`: the OTLP sender of the farm destination (tests pass a fake)."""
        self._host = host
        self._settings = settings
        self._timer = TimerSlot(timer)
        self._push = Coalesced(self._timer, PUSH_INTERVAL, self._tell_changed)
        self._settings_errors: List[str] = []  # refused values of the last settings save
        self.queue: Optional[Writer] = None
        self.worker: Optional[Worker] = None
        self.tracker: Optional[Tracker] = None
        self.farm: Optional[Farm] = None
        self.consent = Consent(settings, host.bundled_loaded)
        self._read_settings()
        self._open_queue(folder, Clocks(wall=wall, mono=clock))
        self._make_tracker(clock, wall, octoprint_2)
        self._make_worker(delivery or Delivery(user_agent=user_agent))
        self._make_farm(collector or Collector(user_agent=user_agent), user_agent.partition("/")[2], plugin_version)

    # ~~ building, in order

    def _read_settings(self) -> None:
        self.reload()
        if self.enabled:
            self.consent.ensure_unique_id()  # events can come before start()

    def _open_queue(self, folder: str, clocks: Clocks) -> None:
        # One sender per queue: the command line's flush/clear refuse while we hold this.
        self.lock = QueueLock(folder)
        if not self.lock.acquire():
            logger.warning("The tracking queue is locked by another process; sending waits until it is free")
        limits = self._effective["queue"]
        self.queue = open_queue(folder, limits["max_records"], limits["max_age_days"], clocks=clocks)
        if not self.enabled:
            self._opt_out()  # config.yaml says off: what was collected before stays unsent

    def _make_tracker(self, clock: Callable[[], float], wall: Callable[[], float], octoprint_2: bool) -> None:
        self.tracker = Tracker(
            self._host, self.consent, self.queue, self._timer, clock, wall, self._stored, octoprint_2
        )
        self.tracker.configure(self._effective)

    def _make_worker(self, delivery: Delivery) -> None:
        self._delivery = delivery
        retry = self._effective["retry"]
        self.worker = Worker(
            self.queue,
            send=self._send,
            blocked=self._blocked,
            initial_delay=retry["initial_delay"],
            max_delay=retry["max_delay"],
            on_change=self._push_status,
        )
        probes = {
            "settings.unique_id": self._settings.unique_id,
            "host.user_names": self.tracker.user_names,
            "context": self.tracker.context,
            "push_status": self._push_status,
            "worker.wake": self.worker.wake,
        }
        self.instruments = Instruments(probes, self.worker, self._timer)

    def _make_farm(self, collector: Collector, octoprint_version: str, plugin_version: str) -> None:
        self.farm = Farm(
            self.queue,
            collector,
            lambda: self.consent.unique_id,
            octoprint_version,
            plugin_version,
            self._locked,
            self._push_status,
        )
        self._configure_farm()
        self.workers = {TRACKING: self.worker, COLLECTOR: self.farm.worker}

    # ~~ settings

    @property
    def enabled(self) -> bool:
        return self.consent.enabled

    @property
    def effective(self) -> Dict[str, Any]:
        """The resolved settings in force."""
        return self._effective

    def reload(self) -> None:
        """Applies the stored settings; bad values in config.yaml are replaced by defaults."""
        self.apply(*config.resolve(self._settings.merged() or {}))

    def apply(self, effective: Dict[str, Any], config_errors: Iterable[str] = ()) -> None:
        """Runs with these resolved settings from now on."""
        self._effective, self._config_errors = effective, list(config_errors)
        for error in self._config_errors:
            logger.error("Configuration error, value not used: %s", error)
        self.consent.reload()
        if self.queue is not None:
            self.queue.max_records = effective["queue"]["max_records"]
            self.queue.max_age_days = effective["queue"]["max_age_days"]
        if self.tracker is not None:
            self.tracker.configure(effective)
        if self.worker is not None:
            self.worker.initial_delay = effective["retry"]["initial_delay"]
            self.worker.max_delay = effective["retry"]["max_delay"]
            self.worker.wake()
        if self.farm is not None:
            self._configure_farm()

    def _configure_farm(self) -> None:
        self.farm.configure(self._effective, self._config_errors, self.enabled)
        self.consent.collector = self.farm.wanted

    def on_settings_save(self, data: Any, store: Callable[[dict], Any]) -> Any:
        """A save from the UI or API: refuses bad values, `store`s the rest, then applies them.

        OctoPrint swallows exceptions here, so bad values are dropped rather than raised.
        """
        was_enabled = self.enabled
        clean, self._settings_errors = config.clean_update(data or {}, from_api=True)
        for error in self._settings_errors:
            logger.warning("Refused setting, old value kept: %s", error)
        result = store(clean)
        with self.consent.lock:
            self.reload()
            opted_out = was_enabled and not self.enabled
            if opted_out:
                self._opt_out()
        if self.enabled and not was_enabled:
            self.consent.turn_off_bundled()
            self.tracker.start()
        elif opted_out and not self.consent.recording:
            self.tracker.stop()
        self._push_status()  # reload woke the worker
        return result

    def _opt_out(self) -> None:
        """Consent withdrawn: nothing collected before may go to the public server later, not even
        after opting in again. A record being sent right now may still arrive; none after it. A
        record the collector still needs stays until the collector has it.

        The decision is on the disk before the deletion is: OctoPrint writes config.yaml only
        after this returns, and without an fsync, so a power cut in between left tracking on
        with the records gone (found by tests/powercut/test_power_cuts.py)."""
        self._settings.save_durably()
        self.queue.clear("all", reason="opted out", dest=TRACKING)

    def bundled_enabled(self) -> bool:
        return self.consent.bundled_enabled()

    # ~~ life cycle

    def start(self) -> None:
        """After OctoPrint's start-up: the worker runs, and tracking starts when enabled."""
        self.worker.start()
        self.farm.worker.start()
        if self.enabled:
            self.consent.turn_off_bundled()
        if self.consent.recording:
            self.tracker.start()

    def shutdown(self) -> None:
        self.tracker.shutdown()
        for worker in self.workers.values():
            worker.stop(timeout=0)  # both told at once: their ends overlap
        stopped = [worker.stop() for worker in self.workers.values()]
        self.farm.close()
        if not all(stopped):
            logger.info("Tracking worker still busy at shutdown; its record stays queued")
        else:
            # A worker still sending keeps the lock until the process ends, which frees it.
            self.lock.release()

    def on_event(self, event: str, payload: Any) -> None:
        """From OctoPrint's event thread: commits the record, if any, before returning."""
        try:
            if event == Events.CONNECTIVITY_CHANGED:
                self.worker.wake()
                self._push_status()
            elif self.consent.recording:
                self.tracker.on_event(event, payload)
        except Exception:
            logger.exception("Error while handling event %s", event)

    def track_webui_load(self, payload: Any, caller: Tuple[str, str] = ("", "")) -> Tuple[bool, float]:
        """See Tracker.webui_load."""
        return self.tracker.webui_load(payload, caller)

    def _stored(self, stored: bool) -> None:
        if stored:
            self.worker.wake()
            if self.farm.wanted:  # an idle destination's thread is not woken for nothing
                self.farm.worker.wake()
        self._push_status()

    # ~~ sending

    def _blocker(self) -> policy.Blocker:
        # A configuration error about the collector holds only the collector.
        errors = [e for e in self._config_errors if e not in policy.collector_errors(self._config_errors)]
        return policy.send_blocker(self.enabled, self._effective, errors)

    def _locked(self) -> policy.Blocker:
        if not self.lock.acquire():
            return "locked", gettext("Another process (a command line flush or clear?) is using the queue.")
        return None

    def _blocked(self) -> policy.Blocker:
        """Why the public server's worker must not send now, or None."""
        blocker = self._blocker() or self._locked()
        if blocker:
            return blocker
        if not self._host.is_online():
            return "offline", gettext("OctoPrint's connectivity check reports no internet connection.")
        return None

    def _send(self, record: dict) -> Outcome:
        return self._delivery.send(record, self._effective["server"], self.consent.unique_id)

    # ~~ live updates

    def _push_status(self) -> None:
        """Tells open settings tabs to refresh, coalesced to a few pushes per second."""
        self._push.trigger()

    def _tell_changed(self) -> None:
        try:
            # No data in the push: it reaches every logged-in socket, not only permitted ones.
            self._host.send_plugin_message({"type": "changed"})
        except Exception:
            logger.exception("Could not push the queue status")
