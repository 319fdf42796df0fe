"""The runtime without a server: fake OctoPrint callables, fake settings, fake clocks and
timers fired by hand, a real queue (store.open_queue) in tmp_path. The worker thread runs only where
a test says so; elsewhere the test takes the worker's steps itself (`run_once`)."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from typing import Any, Callable

import pytest

from octoprint_tracking_queued import api, config
from octoprint_tracking_queued.delivery import Delivered
from octoprint_tracking_queued.lock import QueueLock
from octoprint_tracking_queued.records import FIRMWARE_TIMEOUT
from octoprint_tracking_queued.runtime import PUSH_INTERVAL
from octoprint_tracking_queued.status import StatusBody, WorkerStatus
from octoprint_tracking_queued.store import open_queue
from octoprint_tracking_queued.timers import OneShots
from octoprint_tracking_queued.tracker import THROTTLE_REFRESH
from tests.harness.bus_events import THROTTLE_STATE
from tests.harness.ids import ID_RULE, REFUSED_IDS
from tests.unit.world import BUNDLED_ID, ENVIRONMENT, PRINT_DONE, SERVER, World, allowed, settings


@pytest.fixture
def make_world(tmp_path):
    worlds: list[World] = []

    def make(**values: Any) -> World:
        world = World(str(tmp_path), settings(**values))
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.runtime.worker.stop()
        world.runtime.queue.close()
        world.runtime.lock.release()


@pytest.fixture
def world(make_world) -> World:
    """Tracking enabled by a settings save (the worker thread is not started: tests step it)."""
    world = make_world()
    world.save(enabled=True)
    return world


def test_enabling_and_disabling_through_a_settings_save(make_world):
    world = make_world()  # the wizard's decision not made yet
    assert world.settings.unique_id() is None  # an instance that never opted in has no id
    world.runtime.on_event(*PRINT_DONE)
    assert world.pending() == [] and world.timers.repeating() == {}

    world.save(enabled=True)
    assert world.settings.unique_id() == BUNDLED_ID  # the bundled plugin's identity is kept
    assert world.settings.bundled["enabled"] is False  # not counted twice
    assert world.pending() == ["startup"]
    startup = world.runtime.queue.page("pending", 0, 1)[0]
    assert startup["params"] == ENVIRONMENT and startup["created"] == world.wall.now
    assert world.timers.repeating() == {"ping": 900, "pong": 86400, "refresh": THROTTLE_REFRESH}

    world.monotonic.now += 42
    world.timers.fire("ping")
    ping = world.runtime.queue.page("pending", 1, 1)[0]
    assert ping["params"] == {"octoprint_uptime": 42, "printer_state": "OPERATIONAL"}

    world.save(enabled=False)
    assert world.timers.repeating() == {}
    world.runtime.on_event(*PRINT_DONE)
    # Opting out deletes what was collected: none of it leaves later.
    assert world.pending() == []
    status = world.runtime.status()
    assert status["enabled"] is False and status["cleared"] == 2


def test_opting_out_is_final_for_what_was_collected(world, caplog):
    world.runtime.on_event(*PRINT_DONE)
    world.runtime.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200})  # a firmware wait starts
    assert world.pending() == ["startup", "print_done"]
    caplog.set_level("INFO")
    decided = []  # what config.yaml holds on the disk when the records are deleted
    clear = world.runtime.queue.clear
    world.runtime.queue.clear = lambda *a, **k: decided.append(world.settings.durable.get("enabled")) or clear(*a, **k)
    world.save(enabled=False)
    assert world.pending() == [] and "opted out" in caplog.text
    assert decided == [False]  # a power cut can no longer leave tracking on with the records gone
    world.timers.fire("_firmware_timeout")  # the wait ends after the opt-out: nothing is made
    assert world.pending() == []
    world.save(enabled=True)  # opting in again starts afresh, with the same instance id
    assert world.pending() == ["startup"]
    assert world.settings.unique_id() == BUNDLED_ID


class WatchedLock:
    """A lock that says when a caller has to wait for it."""

    def __init__(self, contended: threading.Event) -> None:
        self._lock = threading.Lock()
        self._contended = contended

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        self._contended.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_record_stored_while_opting_out_is_deleted_with_the_rest(world):
    # A ping timer thread is storing its record when the user opts out on another thread.
    storing, go_on = threading.Event(), threading.Event()
    put = world.runtime.queue.put

    def slow_put(record: dict) -> bool:
        storing.set()
        assert go_on.wait(10)
        return put(record)

    # The opt-out either clears at once (the bug) or waits for the lock the record is stored
    # under; the test waits for whichever comes first, so no interval decides the outcome.
    moved, cleared = threading.Event(), threading.Event()
    clear = world.runtime.queue.clear

    def watched_clear(*args: Any, **kwargs: Any) -> int:
        cleared.set()
        moved.set()
        return clear(*args, **kwargs)

    world.runtime.queue.put = slow_put
    world.runtime.queue.clear = watched_clear
    world.runtime.consent.lock = WatchedLock(moved)
    ping = threading.Thread(target=world.timers.fire, args=("ping",))
    ping.start()
    assert storing.wait(10)
    opt_out = threading.Thread(target=world.save, kwargs={"enabled": False})
    opt_out.start()
    assert moved.wait(10), "the opt-out neither cleared nor waited"
    assert not cleared.is_set(), "the opt-out cleared while a record was being stored"
    go_on.set()
    ping.join(10)
    opt_out.join(10)
    assert world.pending() == []
    assert world.runtime.status()["cleared"] == 2  # startup and the ping


def test_what_is_logged_never_holds_the_instance_id_or_the_url(world, caplog):
    caplog.set_level("DEBUG")
    world.runtime.on_event(*PRINT_DONE)
    while world.runtime.worker.run_once() == 0:
        pass
    assert world.delivery.sent == ["startup", "print_done"]
    assert "Sent tracking event print_done" in caplog.text
    assert BUNDLED_ID not in caplog.text and "127.0.0.1:9" not in caplog.text


def test_a_config_yaml_opt_out_clears_at_start(world, make_world):
    world.runtime.on_event(*PRINT_DONE)
    world.runtime.shutdown()
    again = make_world(enabled=False)  # config.yaml turned off while OctoPrint was stopped
    assert again.pending() == [] and again.runtime.status()["cleared"] == 3


def test_a_settings_save_applies_the_new_values(world):
    world.save(queue={"max_records": 20}, retry={"initial_delay": 1.5, "max_delay": 60}, server="http://evil/")
    runtime = world.runtime
    assert (runtime.queue.max_records, runtime.worker.initial_delay, runtime.worker.max_delay) == (20, 1.5, 60)
    assert runtime.status()["settings_errors"] == ["plugins.tracking_queued.server: can only be changed in config.yaml"]
    world.save(events={"printjob": False})
    world.runtime.on_event(*PRINT_DONE)
    assert world.pending() == ["startup"]


def test_a_saved_instance_id_is_used_from_the_next_record_on(world):
    # The runtime keeps the id rather than asking OctoPrint's settings per record.
    sent: list[tuple[str, str, Any]] = []

    def send(record: dict, template: str, unique_id: str) -> Delivered:
        sent.append((record["event"], unique_id, record["params"].get("file")))
        return Delivered(204)

    world.delivery.send = send
    world.runtime.on_event(*PRINT_DONE)
    new_id = "fedcba98-0000-4000-8000-0123456789ab"
    world.save(unique_id=new_id)
    assert world.settings.unique_id() == new_id
    world.runtime.on_event(*PRINT_DONE)
    while world.runtime.worker.run_once() == 0:
        pass
    assert [(event, unique_id) for event, unique_id, _ in sent] == [
        ("startup", new_id),
        ("print_done", new_id),
        ("print_done", new_id),
    ]
    # The file name is hashed with the instance id in force when the print ended.
    assert sent[1][2] != sent[2][2]


@pytest.mark.parametrize("bundled", REFUSED_IDS)
def test_the_bundled_plugins_id_is_adopted_only_as_a_canonical_uuid(make_world, caplog, bundled):
    world = make_world()
    world.settings.bundled["unique_id"] = bundled
    caplog.set_level("INFO")
    world.save(enabled=True)
    generated = world.settings.unique_id()
    assert generated != bundled and str(uuid.UUID(generated)) == generated
    assert uuid.UUID(generated).version == 4
    lines = [r.getMessage() for r in caplog.records if "bundled plugin's instance id" in r.getMessage()]
    assert len(lines) == 1 and bundled.strip() not in lines[0]


@pytest.mark.parametrize("refused", REFUSED_IDS)
def test_an_id_refused_through_the_api_keeps_the_one_in_force(world, refused):
    world.save(unique_id=refused)
    assert world.settings.unique_id() == BUNDLED_ID
    assert world.runtime.status()["settings_errors"] == [f"plugins.tracking_queued.unique_id: {ID_RULE}"]


@pytest.mark.parametrize("refused", ["0123456789abcdef", "0123456789abcdef0123456789abcdef"])
def test_records_made_under_a_refused_id_go_out_under_the_valid_one(make_world, refused):
    # config.yaml holds an id an older version accepted: a configuration error, nothing is
    # sent under it, and what is queued goes out once a valid id is in force.
    world = make_world(unique_id=refused)
    sent: list[tuple[str, str]] = []

    def send(record: dict, template: str, unique_id: str) -> Delivered:
        sent.append((record["event"], unique_id))
        return Delivered(204)

    world.delivery.send = send
    world.save(enabled=True)
    world.runtime.on_event(*PRINT_DONE)
    worker = world.runtime.worker
    worker.run_once()
    assert worker.state == "config_error" and sent == []
    assert world.runtime.status()["config_errors"] == [f"plugins.tracking_queued.unique_id: {ID_RULE}"]
    assert world.pending() == ["startup", "print_done"]

    valid = "fedcba98-0000-4000-8000-0123456789ab"
    world.save(unique_id=valid)
    while worker.run_once() == 0:
        pass
    assert sent == [("startup", valid), ("print_done", valid)] and world.pending() == []


def test_apply_without_a_save(world):
    effective = config.defaults()
    effective.update(server=SERVER, events={**effective["events"], "commerror": False})
    effective["queue"]["max_age_days"] = 3
    world.runtime.apply(effective)
    assert world.runtime.queue.max_age_days == 3
    world.runtime.on_event("Error", {"reason": "firmware", "error": "boom"})
    assert world.pending() == ["startup"]


def test_untracked_events_are_dismissed_before_any_context(world):
    world.save(events={"slicing": False})
    before = world.host.contexts
    for event, payload in [
        ("ZChange", {"new": 0.2}),
        ("PositionUpdate", [1, 2, 3]),  # not even its odd payload is looked at
        ("SlicingStarted", {"slicer": "cura"}),  # its switch is off
    ]:
        world.runtime.on_event(event, payload)
    assert world.host.contexts == before
    world.runtime.on_event(*PRINT_DONE)
    assert world.host.contexts == before + 1
    assert world.pending() == ["startup", "print_done"]


def test_throttle_state_is_kept_even_with_its_switch_off(world):
    world.save(events={"throttled": False})
    state = THROTTLE_STATE
    world.runtime.on_event("plugin_pi_support_throttle_state", state)
    world.runtime.on_event(*PRINT_DONE)
    assert world.pending() == ["startup", "print_done"]  # no system_throttled record
    done = world.runtime.queue.page("pending", 1, 1)[0]
    assert done["params"]["throttled_now"] is True


@pytest.mark.parametrize("switch", [True, False])
def test_a_throttle_state_of_the_wrong_type_is_skipped_with_a_log_line(world, caplog, switch):
    world.save(events={"throttled": switch})
    caplog.set_level("INFO")
    world.runtime.on_event("plugin_pi_support_throttle_state", dict(THROTTLE_STATE, raw_value="327685"))
    assert [r.getMessage() for r in caplog.records] == [
        "Skipped a tracking event: throttle state with a raw_value of type str"
    ]
    world.runtime.on_event(*PRINT_DONE)
    world.runtime.on_event("Error", {"reason": "firmware", "error": "boom"})
    assert world.pending() == ["startup", "print_done", "commerror_firmware"]  # no throttle record
    for record in world.runtime.queue.page("pending", 1, 2):
        assert not [name for name in record["params"] if name.startswith("throttled")], record

    # A good state before it stays the one attached: the bad one replaces nothing.
    world.runtime.on_event("plugin_pi_support_throttle_state", THROTTLE_STATE)
    world.runtime.on_event("plugin_pi_support_throttle_state", dict(THROTTLE_STATE, raw_value="1"))
    world.runtime.on_event(*PRINT_DONE)
    assert world.runtime.queue.page("pending", 0, 200)[-1]["params"]["throttled_mask"] == 0x50005


def test_connectivity_change_wakes_the_worker_even_when_disabled(make_world):
    world = make_world(enabled=False)
    world.runtime.on_event("ConnectivityChanged", {"old": False, "new": True})
    assert [t.name for t in world.timers.live()] == ["_run"]


def test_flush_overrides_offline(world):
    world.host.online = False
    world.runtime.on_event(*PRINT_DONE)
    worker = world.runtime.worker
    worker.run_once()
    assert (worker.state, world.delivery.sent) == ("offline", [])

    assert api.command(world.runtime, "flush", {}, allowed) == (200, {"flushing": True})
    assert worker.run_once() == 0 and worker.run_once() == 0
    worker.run_once()
    assert world.delivery.sent == ["startup", "print_done"]
    assert worker.state == "idle"
    worker.run_once()
    # The flush proved the server reachable: believed until a send fails (issue 3840's DNS case).
    assert worker.state == "idle" and worker.status()["connectivity"] == "reachable"


def test_flush_refused_while_disabled(make_world):
    world = make_world(enabled=False)
    status, body = api.command(world.runtime, "flush", {}, allowed)
    assert status == 409 and "disabled" in body["error"]


def test_flush_refused_with_a_configuration_error(make_world):
    world = make_world(enabled=True, ping=-1)
    status, body = api.command(world.runtime, "flush", {}, allowed)
    assert status == 409 and "plugins.tracking_queued.ping" in body["error"]
    assert world.runtime.status()["config_errors"] == [body["error"]]


def test_printer_reported_without_firmware_after_the_timeout(world):
    world.runtime.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200})
    assert world.pending() == ["startup"]
    (timer,) = world.timers.live("_firmware_timeout")
    assert (timer.interval, timer.repeat) == (FIRMWARE_TIMEOUT, False)
    timer.fire()
    connected = world.runtime.queue.page("pending", 1, 1)[0]
    assert connected["event"] == "printer_connected"
    assert connected["params"] == {"printer_port": "VIRTUAL", "printer_baudrate": 115200}
    # a late FirmwareData changes nothing
    world.runtime.on_event("FirmwareData", {"name": "Marlin"})
    assert world.pending() == ["startup", "printer_connected"]


def test_the_firmware_wait_is_the_runtimes_own(world):
    # Integration tests shorten it to wait seconds, not 15: the timer must take it from there.
    world.runtime.tracker.firmware_timeout = 2.0
    world.runtime.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200})
    (timer,) = world.timers.live("_firmware_timeout")
    assert timer.interval == 2.0


def test_firmware_data_in_time_leaves_the_timeout_nothing_to_do(world):
    world.runtime.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200})
    world.runtime.on_event("FirmwareData", {"name": "Marlin"})
    connected = world.runtime.queue.page("pending", 1, 1)[0]
    assert connected["params"]["firmware_name"] == "Marlin"
    world.timers.fire("_firmware_timeout")
    assert world.pending() == ["startup", "printer_connected"]


def test_pushes_are_coalesced(world):
    for n in range(20):
        world.runtime.on_event("PrintStarted", {"path": f"{n}.gcode", "origin": "local"})
    world.runtime.clear("failed")
    (push,) = world.timers.live("_run")
    assert push.interval == PUSH_INTERVAL and world.host.messages == []
    push.fire()
    assert world.host.messages == [{"type": "changed"}]  # no data: every socket gets it
    assert world.timers.live("_run") == []
    world.runtime.on_event(*PRINT_DONE)
    world.runtime.retry_failed()
    world.timers.fire("_run")
    assert world.host.messages == [{"type": "changed"}] * 2


def test_pong_carries_plugins_and_achievements(world):
    world.timers.fire("pong")
    pong = world.runtime.queue.page("pending", 1, 1)[0]
    assert pong["post"] is True
    assert (pong["params"]["plugins"], pong["params"]["achievements"]) == ("someplugin:1.0", "the_wizard")


def test_shutdown(make_world):
    world = make_world(enabled=True)
    world.host.online = False  # the worker waits rather than sends the shutdown record
    runtime = world.runtime
    runtime.start()
    assert runtime.worker.alive
    assert set(world.timers.repeating()) == {"ping", "pong", "refresh"}
    runtime.on_event("Connected", {"port": "VIRTUAL"})

    runtime.shutdown()
    assert world.pending() == ["startup", "shutdown"]
    assert world.timers.repeating() == {} and world.timers.live("_firmware_timeout") == []
    assert not runtime.worker.alive
    assert not runtime.lock.held
    with QueueLock(world.folder) as lock:  # a command line may take the queue now
        assert lock.acquire()


def test_the_worker_thread_sends(make_world):
    world = make_world(enabled=True)
    world.runtime.start()
    assert world.delivery.got_one.wait(10)
    assert world.delivery.sent[0] == "startup"


def test_a_second_runtime_on_the_same_queue_does_not_send(make_world):
    first = make_world(enabled=True)
    second = make_world(enabled=True)
    assert first.runtime.lock.held and not second.runtime.lock.held
    second.runtime.worker.run_once()
    assert second.runtime.worker.state == "locked"


def test_status_is_the_documented_body(world):
    status = world.runtime.status()
    assert set(status) == set(StatusBody.__annotations__)
    assert set(status["worker"]) == set(WorkerStatus.__annotations__)
    assert status["enabled"] is True and status["bundled_enabled"] is False
    assert status["server_is_default"] is False
    assert (status["pending"], status["config_errors"], status["settings_errors"]) == (1, [], [])


def test_webui_load(world):
    payload = {"browser_name": "Chromium", "browser_version": "120", "os_name": "Linux", "os_version": "6"}
    assert api.command(world.runtime, "track", {"event": "webui_load", "payload": payload}, lambda: False) == (
        200,
        {"queued": True},
    )
    assert world.pending() == ["startup", "webui_load"]
    world.save(enabled=False)
    assert world.runtime.track_webui_load(payload) == (False, 0.0)


def test_webui_load_is_rate_limited_per_user_and_session(world):
    payload = {"browser_name": "Chromium", "browser_version": "120", "os_name": "Linux", "os_version": "6"}
    track = {"event": "webui_load", "payload": payload}
    assert api.command(world.runtime, "track", track, lambda: False, ("bob", "s1"))[0] == 200
    status, body = api.command(world.runtime, "track", track, lambda: False, ("bob", "s1"))
    assert status == 429 and body["queued"] is False and body["retry_after"] == 60 and body["error"]
    assert api.command(world.runtime, "track", track, lambda: False, ("alice", "s2"))[0] == 200
    assert api.command(world.runtime, "track", track, lambda: False, ("bob", "s3"))[0] == 200  # another browser
    assert api.command(world.runtime, "track", track, lambda: False, ("bob", "s4"))[0] == 200
    # A script making new sessions gets no further: a few per user a minute.
    assert api.command(world.runtime, "track", track, lambda: False, ("bob", "s5"))[0] == 429
    bad = {"event": "webui_load", "payload": "nonsense"}
    assert api.command(world.runtime, "track", bad, lambda: False, ("bob", "s1"))[0] == 400  # still 400
    world.monotonic.now += 60
    assert api.command(world.runtime, "track", track, lambda: False, ("bob", "s1"))[0] == 200
    # coalesced as well: one pending load per browser and OS
    assert world.pending() == ["startup", "webui_load"]


def test_a_rate_limited_webui_load_stores_nothing(world):
    # Each load from another browser version: coalescing (same browser and OS) cannot hide a
    # record that a refused call stored before the limit said no.
    def track(version: int, caller: tuple[str, str]) -> int:
        payload = {"browser_name": "Chromium", "browser_version": str(version), "os_name": "Linux", "os_version": "6"}
        return api.command(world.runtime, "track", {"event": "webui_load", "payload": payload}, lambda: False, caller)[
            0
        ]

    assert track(1, ("bob", "s1")) == 200
    before = (world.pending(), world.runtime.status())
    assert track(2, ("bob", "s1")) == 429  # the same session within the minute
    assert (world.pending(), world.runtime.status()) == before
    for n, session in enumerate(("s2", "s3")):
        assert track(3 + n, ("bob", session)) == 200
    before = (world.pending(), world.runtime.status())
    assert track(5, ("bob", "s4")) == 429  # a fourth session of one user within the minute
    assert (world.pending(), world.runtime.status()) == before
    assert world.pending() == ["startup"] + ["webui_load"] * 3


def test_page_shows_what_is_sent(world):
    world.runtime.on_event(*PRINT_DONE)
    status, body = api.get(world.runtime, {"records": "pending", "offset": "1", "limit": "5"}, allowed)
    assert status == 200 and (body["total"], body["offset"], body["limit"]) == (2, 1, 5)
    (record,) = body["records"]
    assert record["sent"] == {**record["params"], "event_time": int(world.wall.now), "event_id": record["id"]}


def test_one_shot_timers_share_one_thread_and_honour_cancel(caplog):
    # Starting one must not start a thread: the event thread starts the push timer.
    timers = OneShots()
    fired: list[str] = []
    done = threading.Event()

    def fire(name: str) -> Callable[[], None]:
        def function() -> None:
            fired.append(name)
            if name == "last":
                done.set()
            if name == "broken":
                raise RuntimeError("boom")

        function.__name__ = name
        return function

    before = threading.active_count()
    cancelled = timers.timer(0.01, fire("cancelled"))
    for name, interval in (("last", 0.08), ("second", 0.04), ("broken", 0.02), ("first", 0.01)):
        timers.timer(interval, fire(name)).start()
        assert threading.active_count() <= before + 1
    cancelled.start()
    cancelled.cancel()
    assert done.wait(5)
    assert fired == ["first", "broken", "second", "last"]
    assert "Error in a tracking timer" in caplog.text  # logged; the timers after it still ran


def connections_of(root: object, depth: int = 3) -> list[sqlite3.Connection]:
    """Every SQLite connection held in the attributes of `root`, found by type, not by name,
    so that the test does not depend on how the queue names or nests them."""
    found: dict[int, sqlite3.Connection] = {}
    level = [root]
    for _ in range(depth):
        nested = []
        for obj in level:
            for value in getattr(obj, "__dict__", {}).values():
                if isinstance(value, sqlite3.Connection):
                    found[id(value)] = value
                elif hasattr(value, "__dict__") and not isinstance(value, type):
                    nested.append(value)
        level = nested
    return list(found.values())


def test_a_record_is_durable_before_on_event_returns_and_only_its_insert_pays_a_full_sync(world):
    # The queue as the plugin opens it (Runtime builds it). Which connection stores a record and
    # which one the worker settles it on is watched, not looked up by attribute name.
    statements: dict[int, list[str]] = {}
    connections = connections_of(world.runtime.queue)
    assert connections
    for conn in connections:
        statements[id(conn)] = log = []
        # A function, not log.append: the sqlite3 of Python 3.7 hashes the callback.
        conn.set_trace_callback(lambda sql, log=log: log.append(sql))

    def used(verb: str) -> list[sqlite3.Connection]:
        return [c for c in connections if any(s.lstrip().upper().startswith(verb) for s in statements[id(c)])]

    world.runtime.on_event(*PRINT_DONE)
    (inserting,) = used("INSERT")
    assert statements[id(inserting)][-1] == "COMMIT"  # committed before on_event returned
    # Another connection, as after a crash of this process, reads it from the file.
    other = open_queue(world.folder, read_only=True)
    try:
        assert [r["event"] for r in other.page("pending", 0, 10)] == ["startup", "print_done"]
    finally:
        other.close()
    # SQLite's synchronous levels: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    assert inserting.execute("PRAGMA synchronous").fetchone()[0] == 2  # one fsync per record, at the insert

    for log in statements.values():
        log.clear()
    while world.runtime.worker.run_once() == 0:
        pass
    assert world.delivery.sent == ["startup", "print_done"]
    (settling,) = used("DELETE")  # the acknowledgements
    assert settling is not inserting
    # NORMAL: an acknowledgement lost to a power cut is a duplicate, never a loss; no fsync of its own.
    assert settling.execute("PRAGMA synchronous").fetchone()[0] == 1
