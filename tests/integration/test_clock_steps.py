"""Issue 8, clocks: a real `octoprint serve` whose wall clock starts 40 days behind (a board
without a real-time clock, booted with fake-hwclock's stale time) and is then stepped, as an
NTP sync does. Nothing queued before the step is dropped for age or misdated.

The server's `time.time()` is shifted by tests/harness/clock.py; its monotonic clock is not.
"""

from __future__ import annotations

import email.utils
import time

import pytest

from octoprint_tracking_queued.store import open_queue
from tests.harness.api import API, INSTALL, PLUGINS, active, status, wait_status
from tests.harness.clock import DAY, ClockShift
from tests.unit.fakes import FakeClocks
from tools.server import OctoPrintServer, _poll

pytestmark = pytest.mark.integration

BEHIND = -40 * DAY
# startup and shutdown records are made under the wrong clock too.
CLOCK = dict(PLUGINS, events=dict(PLUGINS["events"], startup=True))
SLACK = 2  # seconds: event_time is whole seconds, and the event reaches the plugin through the bus
# The worker's age-cap interval in these servers (60 s in the plugin, shortened by tq_test_events).
EXPIRE_EVERY = 3.0


def pending(server: OctoPrintServer) -> list:
    return server.api("GET", API, params={"records": "pending", "limit": 200}).json()["records"]


def fire(server: OctoPrintServer, names) -> dict:
    """Fires one install event per name; the test's own (true) clock at firing, by name."""
    fired = {}
    for name in names:
        fired[name] = time.time()
        server.fire_event(INSTALL, {"id": name, "version": "1"})
    return fired


def installs(requests: list) -> list:
    return [r for r in requests if r["event"] == "install_plugin"]


def assert_true_times(arrived: list, fired: dict) -> None:
    assert [r["params"]["plugin"] for r in arrived] == list(fired), "in the order they happened, once each"
    for request in arrived:
        when = int(request["params"]["event_time"])
        assert abs(when - fired[request["params"]["plugin"]]) <= SLACK, (request["params"], fired)


def test_40_days_behind_then_stepped_in_the_same_run(octoprint_factory, receiver, tmp_path):
    shift = ClockShift(tmp_path, BEHIND)
    receiver.stop()  # the tracking server is down, as the network is at boot
    started = time.time()
    server = octoprint_factory(plugin_settings=CLOCK, env={**shift.env(), "TQ_TEST_EXPIRE_EVERY": str(EXPIRE_EVERY)})
    shift.wait_applied(server)
    assert f"expire every {EXPIRE_EVERY} s" in server.log_text()  # the shortened interval is in force
    wait_status(server, lambda s: s["worker"]["alive"] and s["worker"]["failures"] >= 1)
    # The worker has run (it tried to send): it last aged and expired the queue before now.
    worker_ran = time.monotonic()
    fired = fire(server, ["before0", "before1", "before2"])
    wait_status(server, lambda s: active(s) == 5)  # startup, ping and the three
    # Before the step the plugin can only date them by the clock it has: 40 days ago.
    for record in installs(pending(server)):
        assert abs(record["event_time"] - (fired[record["params"]["plugin"]] + BEHIND)) <= SLACK

    shift.set(0)  # NTP steps the clock to the true time
    shift.wait_applied(server)
    fired.update(fire(server, ["after"]))
    wait_status(server, lambda s: active(s) == 6)
    # The server stays down until the worker has aged and expired the queue after the step
    # (it does so every EXPIRE_EVERY seconds; the server came back 70 s later, after
    # one pass of the plugin's 60 s interval, as here after one of the shortened one).
    assert _poll(lambda: time.monotonic() > worker_ran + EXPIRE_EVERY + 3, EXPIRE_EVERY + 10, interval=0.5)
    # The worker saw the step (it ages and expires in the same step; bounded by the poll).
    held = wait_status(server, lambda s: s["clock_confirmed"], timeout=30)
    assert active(held) == 6 and (held["dropped_age"], held["by_event"]["dropped_age"]) == (0, {})
    assert 0 <= held["oldest_pending_age"] < EXPIRE_EVERY + 60, "aged by the monotonic clock, not by the step"

    receiver.start()
    assert receiver.wait_event("install_plugin", count=4)
    done = wait_status(server, lambda s: active(s) == 0)
    assert_true_times(installs(receiver.requests), fired)
    startup = [r for r in receiver.requests if r["event"] == "startup"]
    assert len(startup) == 1 and started - SLACK <= int(startup[0]["params"]["event_time"]) <= fired["before0"]
    assert done["dropped_age"] == 0 and done["failed"] == 0
    print(
        f"FIGURE issue 8 (a): {len(installs(receiver.requests)) - 1} of 3 delivered, "
        f"dropped_age {done['dropped_age']}, delivered {done['delivered']}"
    )


@pytest.mark.parametrize("behind", [BEHIND, 86400 - time.time()], ids=["40-days-behind", "at-1970"])
def test_behind_then_restarted_with_the_true_clock(octoprint_factory, receiver, tmp_path, behind):
    shift = ClockShift(tmp_path, behind)
    receiver.stop()
    server = octoprint_factory(plugin_settings=CLOCK, env=shift.env())
    shift.wait_applied(server)
    fired = fire(server, ["a", "b", "c"])
    wait_status(server, lambda s: active(s) == 5)

    stopped = time.time()
    server.stop()  # queues the shutdown record, dated 40 days back by its clock
    shift.set(0)
    receiver.start()
    server.start()  # the worker ages and expires the queue before it sends anything
    assert receiver.wait_event("install_plugin", count=3) and receiver.wait_event("shutdown")
    done = wait_status(server, lambda s: active(s) == 0)
    assert_true_times(installs(receiver.requests), fired)
    shutdown = [r for r in receiver.requests if r["event"] == "shutdown"]
    assert len(shutdown) == 1 and abs(int(shutdown[0]["params"]["event_time"]) - stopped) <= SLACK + 3
    assert [r["event"] for r in receiver.requests].count("startup") == 2
    assert (done["dropped_age"], done["failed"]) == (0, 0)
    print(
        f"FIGURE issue 8 (b), {behind / DAY:.0f} days: {len(installs(receiver.requests))} of 3 delivered, "
        f"dropped_age {done['dropped_age']}"
    )


def test_clock_stepped_back_gives_no_negative_age_and_keeps_the_order(octoprint_factory, receiver, tmp_path):
    shift = ClockShift(tmp_path, 0)
    receiver.stop()
    server = octoprint_factory(plugin_settings=PLUGINS, env=shift.env())
    fired = fire(server, ["early0", "early1"])
    wait_status(server, lambda s: active(s) == 3)  # ping and the two
    shift.set(BEHIND)  # a bad step back (fake-hwclock restoring its stale time, say)
    shift.wait_applied(server)
    fired.update(fire(server, ["late0", "late1"]))
    s = wait_status(server, lambda s: active(s) == 5)
    assert s["oldest_pending_age"] >= 0
    assert [r["params"]["plugin"] for r in installs(pending(server))] == list(fired)

    shift.set(0)
    shift.wait_applied(server)
    receiver.start()
    assert receiver.wait_event("install_plugin", count=4)
    assert_true_times(installs(receiver.requests), fired)
    assert status(server)["dropped_age"] == 0


def test_retry_after_as_a_date_is_read_against_the_servers_clock_when_ours_is_behind(
    octoprint_factory, receiver, tmp_path
):
    # "Come back in 2 s" as an HTTP date, with the receiver's Date header (true time): a board
    # 40 days behind must not read it as "in 40 days" (then 6 hours, the cap).
    answered = []

    def busy_once(request):
        if answered:
            return 200, {}, b""
        answered.append(request)
        return 503, {"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)}, b""

    shift = ClockShift(tmp_path, BEHIND)
    receiver.behaviour = busy_once
    server = octoprint_factory(plugin_settings=PLUGINS, env=shift.env())
    assert receiver.wait_event("ping", count=2)
    s = wait_status(server, lambda s: active(s) == 0)
    assert s["worker"]["last_error"] == "HTTP 503" and s["delivered"] == 1


def test_records_of_earlier_boots_keep_or_regain_their_time(octoprint_factory, receiver):
    # Two earlier boots of the board, written by the plugin's own queue code with those boots'
    # clocks: A never learnt the true time (40 days behind), B did (NTP stepped it).
    server = octoprint_factory(plugin_settings=dict(PLUGINS, queue={"max_age_days": 30}), start=False)
    now = time.time()
    clocks = FakeClocks(wall=now + BEHIND - 3600, mono=50.0, boot="earlier-boot-a")
    queue = open_queue(str(server.data_folder), clocks=clocks)
    made = {}
    for name in ("a0", "a1"):
        made[name] = clocks.wall()
        queue.put(install_record(name, clocks.wall()))
        clocks.advance(60)
    queue.close()
    clocks.reboot("earlier-boot-b", wall=now + BEHIND - 600, mono=40.0)
    queue = open_queue(str(server.data_folder), clocks=clocks)
    true_b = now - 600  # what boot B's wall clock should have said when b0 was made
    queue.put(install_record("b0", clocks.wall()))
    clocks.advance(30)
    clocks.jump_wall(-BEHIND)  # NTP: boot B's clock is now right
    queue.observe()
    queue.close()

    server.start()
    assert receiver.wait_event("install_plugin", count=3)
    arrived = {r["params"]["plugin"]: r["params"] for r in installs(receiver.requests)}
    assert list(arrived) == ["a0", "a1", "b0"]
    # A's: the time they were made with (the only one there is), not dropped at the 30-day cap
    assert [int(arrived[n]["event_time"]) for n in ("a0", "a1")] == [int(made["a0"]), int(made["a1"])]
    assert abs(int(arrived["b0"]["event_time"]) - true_b) <= SLACK  # B's: the true time
    assert status(server)["dropped_age"] == 0


def install_record(name: str, created: float) -> dict:
    params = {"plugin": name, "plugin_version": "1"}
    return {"id": name, "event": "install_plugin", "params": params, "post": False, "created": created}
