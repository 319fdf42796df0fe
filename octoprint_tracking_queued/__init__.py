"""OctoPrint's face of the plugin: mixins, settings, API, hooks and wiring. No tracking logic here."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Optional

import flask
import octoprint.plugin
from flask_babel import gettext
from octoprint.access import ADMIN_GROUP
from octoprint.access.permissions import Permissions
from octoprint.events import Events
from octoprint.util import RepeatedTimer
from octoprint.util.version import get_octoprint_version_string

from . import cli, config, policy, records, system, updates
from .delivery import Delivery, with_sent_params
from .lock import QueueLock
from .queue import SCOPES, TrackingQueue
from .worker import Worker

THROTTLE_REFRESH = 300.0
MAX_PAGE = 200
# Live updates to the settings tab: at most this many per second.
PUSH_INTERVAL = 0.5


class TrackingQueuedPlugin(
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.EnvironmentDetectionPlugin,
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.WizardPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.SimpleApiPlugin,
):
    def __init__(self) -> None:
        self._environment: Optional[dict] = None
        self._queue: Optional[TrackingQueue] = None
        self._worker: Optional[Worker] = None
        self._delivery: Optional[Delivery] = None
        self._maker = records.RecordMaker()
        self._throttle = system.ThrottleSource()
        self._timers: list[RepeatedTimer] = []
        self._firmware_timer: Optional[threading.Timer] = None
        self._push_timer: Optional[threading.Timer] = None
        self._push_lock = threading.Lock()
        self._settings_errors: list[str] = []  # refused values of the last settings save
        self._config_errors: list[str] = []  # bad values in config.yaml
        self._effective: dict[str, Any] = config.defaults()
        self._started = time.monotonic()
        self._tracking = False
        self._queue_lock: Optional[QueueLock] = None

    # ~~ wiring

    def initialize(self) -> None:
        if self._enabled:
            self._init_unique_id()  # events can come before on_after_startup
        self._resolve_settings()
        # One sender per queue: the command line's flush/clear refuse while we hold this.
        self._queue_lock = QueueLock(self.get_plugin_data_folder())
        if not self._queue_lock.acquire():
            self._logger.warning("The tracking queue is locked by another process; sending waits until it is free")
        queue_cfg = self._effective["queue"]
        self._queue = TrackingQueue(self.get_plugin_data_folder(), queue_cfg["max_records"], queue_cfg["max_age_days"])
        self._delivery = Delivery(user_agent=f"OctoPrint/{get_octoprint_version_string()}")
        retry = self._effective["retry"]
        self._worker = Worker(
            self._queue,
            send=self._send,
            blocked=self._blocked,
            initial_delay=retry["initial_delay"],
            max_delay=retry["max_delay"],
            on_change=self._push_status,
        )

    def _init_unique_id(self) -> None:
        """Generated on first activation, so an instance that never opts in has no id."""
        if self._settings.get(["unique_id"]):
            return
        # Keep the instance's identity: adopt the bundled plugin's id when it has one.
        adopted = self._settings.global_get(["plugins", "tracking", "unique_id"])
        try:
            unique_id = config.validate_unique_id(adopted)
        except config.SettingError:
            unique_id = str(uuid.uuid4())
        self._settings.set(["unique_id"], unique_id)
        self._settings.save()

    def _resolve_settings(self) -> None:
        self._effective, self._config_errors = config.resolve(self._settings.get([], merged=True) or {})
        for error in self._config_errors:
            self._logger.error("Configuration error, value not used: %s", error)
        if self._queue is not None:
            self._queue.max_records = self._effective["queue"]["max_records"]
            self._queue.max_age_days = self._effective["queue"]["max_age_days"]
        if self._worker is not None:
            self._worker.initial_delay = self._effective["retry"]["initial_delay"]
            self._worker.max_delay = self._effective["retry"]["max_delay"]
            self._worker.wake()

    @property
    def _enabled(self) -> bool:
        return self._settings.get_boolean(["enabled"]) is True

    def _context(self) -> records.Context:
        return records.Context(
            unique_id=self._settings.get(["unique_id"]) or "",
            switches=self._effective["events"],
            now=time.time(),
            throttle=self._throttle.current(),
            private_words=self._user_names(),
        )

    def _user_names(self) -> tuple[str, ...]:
        try:
            return tuple(user.get_name() for user in self._user_manager.get_all_users())
        except Exception:  # a user manager without a user list must not stop tracking
            return ()

    def _enqueue(self, record: Optional[dict]) -> None:
        if record is None:
            return
        if self._queue.put(record):
            self._worker.wake()
        self._push_status()

    def _blocked(self) -> Optional[tuple[str, str]]:
        """Why the worker must not send now, or None."""
        blocker = policy.send_blocker(self._enabled, self._effective, self._config_errors)
        if blocker:
            return blocker
        if not self._queue_lock.acquire():
            return "locked", gettext("Another process (a command line flush or clear?) is using the queue.")
        if not self._connectivity_checker.online:
            return "offline", gettext("OctoPrint's connectivity check reports no internet connection.")
        return None

    def _send(self, record: dict):
        return self._delivery.send(record, self._effective["server"], self._settings.get(["unique_id"]))

    # ~~ tracking on/off

    def _start_tracking(self) -> None:
        if self._tracking or not self._enabled:
            return
        self._tracking = True
        self._init_unique_id()
        self._track(lambda ctx: records.startup(self._environment_payload(), ctx))
        pi_helpers = self._plugin_manager.get_helpers("pi_support", "get_throttled") or {}
        self._throttle = system.ThrottleSource(pi_helper=pi_helpers.get("get_throttled"))
        if "get_throttled" not in pi_helpers:
            self._add_timer(THROTTLE_REFRESH, self._throttle.refresh)
        self._add_timer(self._effective["ping"], self._track_ping)
        if self._effective["pong"]:
            self._add_timer(self._effective["pong"], self._track_pong)

    def _stop_tracking(self) -> None:
        self._tracking = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _add_timer(self, interval: float, function) -> None:
        timer = RepeatedTimer(interval, function, run_first=True, daemon=True)
        timer.start()
        self._timers.append(timer)

    def _track(self, build) -> None:
        """Builds a record with a fresh context and queues it; never raises into OctoPrint."""
        try:
            self._enqueue(build(self._context()))
        except records.BadPayload as error:
            self._logger.warning("Skipped a tracking event: %s", error)
        except Exception:
            self._logger.exception("Could not record a tracking event")

    def _environment_payload(self) -> dict:
        return system.environment_payload(self._environment, get_octoprint_version_string())

    def _track_ping(self) -> None:
        uptime = time.monotonic() - self._started
        state = self._printer.get_state_id() if self._printer else None
        self._track(lambda ctx: records.ping(uptime, state, ctx))

    def _track_pong(self) -> None:
        plugins = [
            (plugin.key, plugin.version)
            for plugin in self._plugin_manager.enabled_plugins.values()
            if not plugin.bundled
        ]
        achievements = None
        helpers = self._plugin_manager.get_helpers("achievements", "get_unlocked_achievements") or {}
        if "get_unlocked_achievements" in helpers:
            try:
                achievements = [a.key for a in helpers["get_unlocked_achievements"]()]
            except Exception:
                achievements = None
        self._track(lambda ctx: records.pong(self._environment_payload(), plugins, achievements, ctx))

    def _firmware_timeout(self) -> None:
        self._firmware_timer = None
        self._track(self._maker.firmware_timeout)

    # ~~ SettingsPlugin

    def get_settings_defaults(self) -> dict:
        return config.defaults()

    def get_settings_restricted_paths(self) -> dict:
        return config.RESTRICTED_PATHS

    def get_settings_version(self) -> int:
        return 1

    def on_settings_save(self, data: dict) -> dict:
        # OctoPrint swallows exceptions here, so refuse bad values by dropping them.
        was_enabled = self._enabled
        clean, self._settings_errors = config.clean_update(data or {}, from_api=True)
        for error in self._settings_errors:
            self._logger.warning("Refused setting, old value kept: %s", error)
        result = octoprint.plugin.SettingsPlugin.on_settings_save(self, clean)
        self._resolve_settings()
        if self._enabled and not was_enabled:
            self._turn_off_bundled()
            self._start_tracking()
        elif was_enabled and not self._enabled:
            self._stop_tracking()
        self._push_status()  # _resolve_settings woke the worker
        return result

    def _turn_off_bundled(self) -> None:
        """Both plugins on would count this instance twice."""
        if self._settings.global_get_boolean(["plugins", "tracking", "enabled"]):
            self._settings.global_set_boolean(["plugins", "tracking", "enabled"], False)
            self._settings.save()
            self._logger.info("Turned the bundled Anonymous Usage Tracking plugin off")

    # ~~ EnvironmentDetectionPlugin

    def on_environment_detected(self, environment: dict, *args, **kwargs) -> None:
        self._environment = environment

    # ~~ StartupPlugin / ShutdownPlugin

    def on_after_startup(self) -> None:
        self._worker.start()
        if self._enabled:
            self._turn_off_bundled()
            self._start_tracking()

    def on_shutdown(self) -> None:
        if self._enabled:
            # Queued, not sent: a request at exit is cut off; the record goes out after the next start.
            self._track(records.shutdown)
        self._stop_tracking()
        if self._firmware_timer:
            self._firmware_timer.cancel()
        if not self._worker.stop():
            self._logger.info("Tracking worker still busy at shutdown; its record stays queued")
        else:
            # A worker still sending keeps the lock until the process ends, which frees it.
            self._queue_lock.release()

    # ~~ EventHandlerPlugin

    def on_event(self, event: str, payload: Any) -> None:
        try:
            if event == Events.CONNECTIVITY_CHANGED:
                self._worker.wake()
                self._push_status()
                return
            if not self._enabled:
                return
            if event == records.THROTTLE_EVENT and isinstance(payload, dict):
                self._throttle.update(payload)
            self._track(lambda ctx: self._maker.from_event(event, payload, ctx))
            if self._maker.awaiting_firmware and self._firmware_timer is None:
                self._firmware_timer = threading.Timer(records.FIRMWARE_TIMEOUT, self._firmware_timeout)
                self._firmware_timer.daemon = True
                self._firmware_timer.start()
        except Exception:
            self._logger.exception("Error while handling event %s", event)

    # ~~ status

    def get_status(self) -> dict:
        status = self._queue.stats()
        status["worker"] = self._worker.status()
        status["enabled"] = self._settings.get(["enabled"])
        status["config_errors"] = self._config_errors
        status["settings_errors"] = self._settings_errors
        status["server_is_default"] = self._effective["server"] == config.DEFAULT_SERVER
        status["bundled_enabled"] = self._bundled_enabled()
        return status

    def _push_status(self) -> None:
        """Tells open settings tabs to refresh, coalesced to a few pushes per second."""
        with self._push_lock:
            if self._push_timer is not None:
                return
            self._push_timer = threading.Timer(PUSH_INTERVAL, self._do_push)
            self._push_timer.daemon = True
            self._push_timer.start()

    def _do_push(self) -> None:
        with self._push_lock:
            self._push_timer = None
        try:
            # No data in the push: it reaches every logged-in socket, not only permitted ones.
            self._plugin_manager.send_plugin_message(self._identifier, {"type": "changed"})
        except Exception:
            self._logger.exception("Could not push the queue status")

    # ~~ SimpleApiPlugin

    def get_api_commands(self) -> dict:
        return {
            "track": ["event"],
            "flush": [],
            "retry_failed": [],
            "clear": ["scope"],
        }

    def is_api_protected(self) -> bool:
        return True

    def on_api_get(self, request):
        if not Permissions.PLUGIN_TRACKING_QUEUED_MANAGE.can():
            return _error(403, gettext("You are not allowed to see the tracking queue."))
        scope = request.values.get("records")
        if scope is None:
            return flask.jsonify(self.get_status())
        if scope not in ("pending", "failed"):
            return _error(400, gettext("records must be pending or failed"))
        try:
            offset = int(request.values.get("offset", 0))
            limit = int(request.values.get("limit", 50))
        except ValueError:
            return _error(400, gettext("offset and limit must be whole numbers"))
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            return _error(400, gettext("offset must be 0 or more and limit between 1 and %(max)d", max=MAX_PAGE))
        return flask.jsonify(
            # `sent`: exactly the parameters each record's request carries.
            records=with_sent_params(self._queue.page(scope, offset, limit)),
            total=self._queue.count(scope),
            offset=offset,
            limit=limit,
        )

    def on_api_command(self, command: str, data: dict):
        if command == "track":
            return self._api_track(data)
        if not Permissions.PLUGIN_TRACKING_QUEUED_MANAGE.can():
            return _error(403, gettext("You are not allowed to manage the tracking queue."))
        if command == "flush":
            blocker = policy.send_blocker(self._enabled, self._effective, self._config_errors)
            if blocker:  # a flush overrides the backoff and an offline verdict, never these
                return _error(409, blocker[1])
            self._worker.flush()
            return flask.jsonify(flushing=True)
        if command == "retry_failed":
            count = self._queue.requeue_failed()
            self._worker.flush()
            self._push_status()
            return flask.jsonify(requeued=count)
        if command == "clear":
            scope = data.get("scope")
            if not isinstance(scope, str) or scope not in SCOPES:  # a list or object is unhashable
                return _error(400, gettext("scope must be one of pending, failed, all"))
            count = self._queue.clear(scope)
            self._push_status()
            return flask.jsonify(cleared=count)
        return _error(400, gettext("Unknown command"))

    def _api_track(self, data: dict):
        event = data.get("event")
        if event != "webui_load":
            return _error(400, gettext("Only webui_load can be tracked through the API"))
        if not self._enabled:
            return flask.jsonify(queued=False)
        try:
            record = records.webui_load(data.get("payload"), self._context())
        except records.BadPayload as error:
            return _error(400, gettext("The payload is not usable: %(error)s", error=str(error)))
        self._enqueue(record)
        return flask.jsonify(queued=record is not None)

    # ~~ hooks

    def get_additional_permissions(self, *args, **kwargs) -> list:
        return [
            {
                "key": "MANAGE",
                "name": "Manage tracking queue",
                "description": gettext("Allows to see the queued tracking records and to flush or clear them"),
                "roles": ["manage"],
                "default_groups": [ADMIN_GROUP],
            }
        ]

    # ~~ TemplatePlugin / AssetPlugin / WizardPlugin

    def is_template_autoescaped(self) -> bool:
        return True

    def get_template_configs(self) -> list:
        return [
            {"type": "settings", "name": gettext("Anonymous Usage Tracking (Queued)"), "custom_bindings": True},
            {
                "type": "wizard",
                "name": gettext("Anonymous Usage Tracking (Queued)"),
                "custom_bindings": True,
                "mandatory": True,
            },
        ]

    def get_assets(self) -> dict:
        return {
            "js": ["js/tracking_queued.js"],
            "clientjs": ["clientjs/tracking_queued.js"],
            "css": ["css/tracking_queued.css"],
        }

    def is_wizard_required(self) -> bool:
        return self._settings.get(["enabled"]) is None

    def get_wizard_version(self) -> int:
        return 1

    def get_wizard_details(self) -> dict:
        # The wizard says that enabling ours turns the bundled plugin off, when it is on.
        return {"bundled_enabled": self._bundled_enabled()}

    def _bundled_enabled(self) -> bool:
        info = self._plugin_manager.get_plugin_info("tracking")
        loaded = info is not None and info.enabled
        return bool(loaded and self._settings.global_get_boolean(["plugins", "tracking", "enabled"]))


def _error(status: int, message: str):
    return flask.make_response(flask.jsonify(error=message), status)


__plugin_name__ = "Anonymous Usage Tracking (Queued)"
__plugin_description__ = "Anonymous usage tracking that queues every event on disk and delivers it later when offline"
__plugin_author__ = "OctoPrint-TrackingQueued developers"
__plugin_license__ = "AGPL-3.0-only"
__plugin_url__ = updates.HOMEPAGE
__plugin_privacypolicy__ = "https://tracking.octoprint.org/privacy"  # the tracking server's, where the data goes
__plugin_pythoncompat__ = ">=3.9,<4"
__plugin_implementation__ = TrackingQueuedPlugin()
__plugin_hooks__ = {
    "octoprint.access.permissions": __plugin_implementation__.get_additional_permissions,
    "octoprint.cli.commands": cli.commands,
    "octoprint.plugin.softwareupdate.check_config": updates.check_config,
}
