"""Test-only OctoPrint plugin: fire arbitrary events on OctoPrint's event bus.

Installed by the integration harness into ``<basedir>/plugins/``; never shipped.

POST /api/plugin/tq_test_events (admin only)
    {"command": "fire", "event": "PrintDone", "payload": {...}}
    {"command": "fire_many", "event": "...", "payload": {...}, "count": 1000}
    {"command": "clear_seen"}
    {"command": "heartbeat", "kind": "ping"|"pong"}: runs tracking_queued's own ping or
        pong tracker, the function its RepeatedTimer calls, so a test need not wait
        the 60 s minimum interval for each heartbeat; answers once the record is stored.
Environment, read at start-up (before tracking_queued's worker starts):
    TQ_TEST_EXPIRE_EVERY: seconds between the worker's age-cap passes (60 in the plugin)
    TQ_TEST_FIRMWARE_TIMEOUT: seconds a connection waits for FirmwareData (15 in the plugin)
    so that a test waiting for either waits seconds, not minutes.
GET /api/plugin/tq_test_events (admin only)
    {"seen": [{"event", "payload", "time"}, ...], "time": time.time(), "results": [...]}:
    events this plugin received through on_event, so a test can tell that the bus delivered
    them, the server's wall clock (shifted in clock tests, see tests/harness/clock.py), and
    the plugin manager's result messages (what its UI shows after an install), which it
    sends only to the web sockets.
"""

import collections
import json
import os
import threading
import time

import flask
import octoprint.plugin
from octoprint.access.permissions import Permissions

SEEN_LIMIT = 2000


def _json_safe(value):
    # Payloads may hold objects (e.g. file storage instances) that Flask cannot
    # serialise; keep what serialises and repr() the rest.
    return json.loads(json.dumps(value, default=repr))


class TqTestEventsPlugin(
    octoprint.plugin.SimpleApiPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.StartupPlugin,
):
    def __init__(self):
        self._seen = collections.deque(maxlen=SEEN_LIMIT)
        self._seen_lock = threading.Lock()
        self._results = []

    def initialize(self):
        self._plugin_manager.register_message_receiver(self._on_plugin_message)

    def _on_plugin_message(self, plugin, data, permissions=None):
        if plugin == "pluginmanager" and isinstance(data, dict) and data.get("type") == "result":
            with self._seen_lock:
                self._results.append(_json_safe(data))

    # ~~ StartupPlugin

    def on_startup(self, host, port):
        # After every plugin's initialize() (tracking_queued's runtime exists), before
        # on_after_startup starts its worker.
        expire_every = os.environ.get("TQ_TEST_EXPIRE_EVERY")
        firmware_timeout = os.environ.get("TQ_TEST_FIRMWARE_TIMEOUT")
        if not (expire_every or firmware_timeout):
            return
        info = self._plugin_manager.get_plugin_info("tracking_queued", require_enabled=True)
        runtime = info.implementation._runtime
        if expire_every:
            runtime.worker.expire_every = float(expire_every)
        if firmware_timeout:
            runtime.tracker.firmware_timeout = float(firmware_timeout)
        self._logger.info(
            "tracking_queued timings: expire every %s s, firmware timeout %s s", expire_every, firmware_timeout
        )

    # ~~ SimpleApiPlugin

    def is_api_protected(self):
        return True

    def get_api_commands(self):
        return {
            "fire": ["event"],
            "fire_many": ["event", "count"],
            "clear_seen": [],
            "heartbeat": ["kind"],
        }

    def on_api_command(self, command, data):
        if not Permissions.ADMIN.can():
            flask.abort(403)

        if command == "clear_seen":
            with self._seen_lock:
                self._seen.clear()
            return flask.jsonify(cleared=True)

        if command == "heartbeat":
            return self._heartbeat(data.get("kind"))

        event = data.get("event")
        payload = data.get("payload")
        if not isinstance(event, str) or not event:
            flask.abort(400, description="event must be a non-empty string")
        if payload is not None and not isinstance(payload, dict):
            flask.abort(400, description="payload must be an object")

        if command == "fire":
            self._event_bus.fire(event, payload)
            self._logger.info("Fired event %s", event)
            return flask.jsonify(fired=1)

        if command == "fire_many":
            try:
                count = int(data.get("count"))
            except (TypeError, ValueError):
                flask.abort(400, description="count must be an integer")
            if count < 0:
                flask.abort(400, description="count must not be negative")
            start = time.monotonic()
            for _ in range(count):
                # a fresh dict per event: listeners may mutate their payload
                self._event_bus.fire(event, dict(payload) if payload else payload)
            elapsed = time.monotonic() - start
            self._logger.info("Fired event %s %d times in %.3fs", event, count, elapsed)
            return flask.jsonify(fired=count, seconds=elapsed)

        flask.abort(400)

    def _heartbeat(self, kind):
        info = self._plugin_manager.get_plugin_info("tracking_queued", require_enabled=True)
        if info is None:
            flask.abort(409, description="tracking_queued is not loaded")
        runtime = info.implementation._runtime
        trackers = {"ping": runtime.tracker.ping, "pong": runtime.tracker.pong}
        if kind not in trackers:
            flask.abort(400, description="kind must be ping or pong")
        trackers[kind]()
        return flask.jsonify(heartbeat=kind)

    def on_api_get(self, request):
        if not Permissions.ADMIN.can():
            flask.abort(403)
        with self._seen_lock:
            seen = list(self._seen)
            results = list(self._results)
        return flask.jsonify(seen=seen, time=time.time(), results=results)

    # ~~ EventHandlerPlugin

    def on_event(self, event, payload):
        with self._seen_lock:
            self._seen.append({"event": event, "payload": _json_safe(payload), "time": time.time()})


__plugin_name__ = "TrackingQueued test events"
__plugin_description__ = "Test-only: fires events on OctoPrint's event bus."
__plugin_version__ = "0.0.0"
__plugin_license__ = "AGPLv3"
__plugin_pythoncompat__ = ">=3.7,<4"
__plugin_implementation__ = TqTestEventsPlugin()
