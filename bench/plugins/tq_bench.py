"""Bench-only OctoPrint plugin: times the tracking plugin's work inside a real server.

Copied into ``<basedir>/plugins/`` by bench/perf.py; never shipped. Everything is timed in
this process with ``time.perf_counter_ns``, beside its reference measured the same way.

POST /api/plugin/tq_bench (admin only)
    {"command": "on_event", "event", "payload", "n", "gap"}   -> {"ns": [...]}
        n calls of tracking_queued's on_event, `gap` seconds apart
    {"command": "bare_commit", "n", "gap"}                    -> {"ns": [...]}
        the reference: INSERT + COMMIT of a JSON row into a WAL database
        (synchronous=FULL, as the queue's insert) in the plugin's data folder
    {"command": "bundled_on_event", "event", "payload", "n"}  -> {"ns": [...]}
        the bundled tracking plugin's on_event, the reference of an untracked event
    {"command": "profile", "event", "payload", "n"}           -> {"text": pstats}
    {"command": "parts", "n"}                                 -> {name: median ns}
        the pieces of a tracked event's path, each alone
    {"command": "replay", "file"}                             -> {"seconds"}
        a plain keep-alive requests loop over the URLs in `file`, in a thread of the server
    {"command": "worker_profile", "seconds"}                  -> {"text": pstats}
        cProfile of the worker's loop passes for that long (blocks the server meanwhile)
    {"command": "count_start"} / {"command": "count_read"}
        counts the worker's loop passes and the runtime's timers from now on
"""

import cProfile
import io
import json
import os
import pstats
import sqlite3
import threading
import time
import uuid

import flask
import octoprint.plugin
from octoprint.access.permissions import Permissions

TRACKING = "tracking_queued"
REFERENCE_DB = "bench-reference.db"


class TqBenchPlugin(octoprint.plugin.SimpleApiPlugin):
    def __init__(self):
        self._counts = {"worker_passes": 0, "timers": 0, "timer_kinds": {}}
        self._counting = False
        self._reference = None  # the bare commit's connection
        self._lock = threading.Lock()

    def is_api_protected(self):
        return True

    def get_api_commands(self):
        return {
            "on_event": ["event", "n"],
            "bare_commit": ["n"],
            "bundled_on_event": ["event", "n"],
            "profile": ["event", "n"],
            "parts": ["n"],
            "worker_profile": ["seconds"],
            "replay": ["file"],
            "count_start": [],
            "count_read": [],
        }

    def _implementation(self, plugin_id):
        info = self._plugin_manager.get_plugin_info(plugin_id)
        if info is None or info.implementation is None:
            flask.abort(409, description=f"plugin {plugin_id} is not loaded")
        return info.implementation

    def on_api_command(self, command, data):
        if not Permissions.ADMIN.can():
            flask.abort(403)
        n = int(data.get("n") or 0)
        gap = float(data.get("gap") or 0)
        payload = data.get("payload")
        if command == "on_event":
            impl = self._implementation(TRACKING)
            return flask.jsonify(ns=_timed(lambda: impl.on_event(data["event"], payload), n, gap))
        if command == "bundled_on_event":
            impl = self._implementation("tracking")
            return flask.jsonify(ns=_timed(lambda: impl.on_event(data["event"], payload), n, gap))
        if command == "bare_commit":
            return flask.jsonify(ns=self._bare_commit(n, gap))
        if command == "profile":
            impl = self._implementation(TRACKING)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                impl.on_event(data["event"], payload)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            return flask.jsonify(text=out.getvalue())
        if command == "parts":
            runtime = self._implementation(TRACKING).runtime
            parts = runtime.instruments.probes()
            parts["queue.put"] = lambda: runtime.queue.put(json.loads(_json_row()))
            parts["enqueue"] = lambda: runtime.tracker.enqueue(json.loads(_json_row()))
            return flask.jsonify(**{name: sorted(_timed(call, n, gap))[n // 2] for name, call in parts.items()})
        if command == "replay":
            with open(data["file"], encoding="utf-8") as f:  # a request body would be too large
                urls = f.read().split()
            return flask.jsonify(seconds=_replay(urls))
        if command == "worker_profile":
            return flask.jsonify(text=self._worker_profile(float(data["seconds"])))
        if command == "count_start":
            self._count_start()
            return flask.jsonify(counting=True)
        if command == "count_read":
            with self._lock:
                return flask.jsonify(**self._counts)
        flask.abort(400)

    def _bare_commit(self, n, gap):
        # One connection for the server's life, as the queue's: a fresh file's first commits
        # (creating and growing the WAL) would cost more than the steady state.
        if self._reference is None:
            folder = self._implementation(TRACKING).get_plugin_data_folder()
            conn = sqlite3.connect(os.path.join(folder, REFERENCE_DB), check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, data BLOB)")
            conn.commit()
            self._reference = conn
        conn = self._reference
        rows = [_json_row() for _ in range(n)]
        samples = []
        for row in rows:
            started = time.perf_counter_ns()
            conn.execute("INSERT INTO rows (data) VALUES (?)", (row,))
            conn.commit()
            samples.append(time.perf_counter_ns() - started)
            if gap:
                time.sleep(gap)
        # Kept about as small as the queue, which deletes what it delivered.
        conn.execute("DELETE FROM rows")
        conn.commit()
        return samples

    def _worker_profile(self, seconds):
        """cProfile of the worker thread's loop passes over the next `seconds`."""
        profiler = cProfile.Profile()

        def profiled(run_once):
            profiler.enable()
            try:
                return run_once()
            finally:
                profiler.disable()

        undo = self._implementation(TRACKING).runtime.instruments.instrument(step=profiled)
        time.sleep(seconds)
        undo()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats("tracking_queued", 40)
        stats.print_callers("_get_protocol_attrs|get_netrc_auth|listcomp")
        return out.getvalue()

    def _count_start(self):
        counts = self._counts
        with self._lock:
            counts.update(worker_passes=0, timers=0, timer_kinds={})
        if self._counting:
            return
        self._counting = True

        def counted_step(run_once):
            with self._lock:
                counts["worker_passes"] += 1
            return run_once()

        def counted_timer(make_timer, interval, function, repeat):
            name = getattr(function, "__name__", repr(function))
            with self._lock:
                counts["timers"] += 1
                counts["timer_kinds"][name] = counts["timer_kinds"].get(name, 0) + 1
            return make_timer(interval, function, repeat)

        self._implementation(TRACKING).runtime.instruments.instrument(step=counted_step, timer=counted_timer)


def _timed(call, n, gap):
    samples = []
    for _ in range(n):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
        if gap:
            time.sleep(gap)
    return samples


def _replay(urls):
    """A plain keep-alive requests loop over `urls`, in a thread of this process as the worker is."""
    import requests

    result = {}

    def run():
        session = requests.Session()
        started = time.perf_counter()
        for url in urls:
            session.get(url, timeout=10).raise_for_status()
        result["seconds"] = time.perf_counter() - started
        session.close()

    thread = threading.Thread(target=run, name="tq_bench.replay")
    thread.start()
    thread.join()
    return result["seconds"]


def _json_row():
    # The size and shape of a queued record.
    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "event": "install_plugin",
            "params": {"plugin": "bench", "plugin_version": "1.0.0"},
            "post": False,
            "created": time.time(),
            "attempts": 0,
            "last_error": None,
        }
    ).encode("utf-8")


__plugin_name__ = "TrackingQueued bench"
__plugin_description__ = "Bench-only: times the tracking plugin inside a real server."
__plugin_version__ = "0.0.0"
__plugin_license__ = "AGPLv3"
__plugin_pythoncompat__ = ">=3.7,<4"
__plugin_implementation__ = TqBenchPlugin()
