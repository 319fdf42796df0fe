"""Smoke test of the harness itself: a real server, the virtual printer, the
test event plugin, a hard kill and a restart on the same base folder.

Runs with or without our plugin installed.
"""

import time

import pytest

from tests.harness.clock import DAY, ClockShift
from tests.harness.versions import OCTOPRINT
from tools.basedir import PLUGIN_ID

pytestmark = pytest.mark.integration

TINY_GCODE = """\
G21
G90
G28
G1 X10 Y10 Z0.3 F6000
G1 X20 Y10
G1 X20 Y20
G1 X10 Y20
G1 X10 Y10
"""


def test_server_lifecycle_printer_and_events(octoprint_factory, outbound_guard):
    server = octoprint_factory()
    print(f"server start took {server.last_start_seconds:.2f}s")

    version = server.api("GET", "/api/version")
    assert version.status_code == 200
    assert version.json()["server"] == OCTOPRINT  # the venv's, see tests/harness/versions.py

    # the plain user and anonymous are not admins
    assert server.as_user("GET", "/api/version").status_code == 200
    assert server.anonymous("GET", "/api/plugin/tq_test_events").status_code in (401, 403)
    assert server.as_user("GET", "/api/plugin/tq_test_events").status_code == 403
    assert (
        server.as_user("POST", "/api/plugin/tq_test_events", json={"command": "fire", "event": "X"}).status_code == 403
    )

    # the config the harness wrote is the one OctoPrint runs with
    settings = server.api("GET", "/api/settings").json()
    assert settings["server"]["onlineCheck"]["enabled"] is False
    assert settings["plugins"]["virtual_printer"]["enabled"] is True
    assert settings["plugins"]["tracking"]["enabled"] is False

    server.connect_virtual_printer()
    started = time.monotonic()
    done = server.print_gcode("tiny.gcode", TINY_GCODE)
    print(f"tiny print took {time.monotonic() - started:.2f}s")
    assert done["event"] == "PrintDone"
    assert server.api("GET", "/api/job").json()["state"] == "Operational"

    server.fire_event("TqHarnessSmoke", {"answer": 42})
    seen = server.wait_for_event("TqHarnessSmoke", timeout=10)
    assert seen is not None and seen["payload"] == {"answer": 42}
    assert server.wait_for_log("Fired event TqHarnessSmoke", timeout=10)

    result = server.fire_many("TqHarnessStorm", 200, {"n": 1})
    assert result["fired"] == 200
    assert server.wait_for_event("TqHarnessStorm", timeout=10, count=200)

    # power loss, then start again on the same base folder
    basedir = server.basedir
    assert server.kill() == -9
    assert not server.running
    server.start()
    assert server.basedir == basedir
    assert server.api("GET", "/api/version").status_code == 200
    print(f"restart after kill took {server.last_start_seconds:.2f}s")

    stopped = server.stop()
    assert stopped == 0, "graceful SIGTERM shutdown should exit 0"
    print(f"graceful stop took {server.last_stop_seconds:.2f}s")

    if f"plugins.{PLUGIN_ID}" in server.log_text():
        print("tracking_queued is installed in this environment")

    assert outbound_guard.attempts == []


def test_update_config_while_stopped(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings={"ping": 60}, start=False)
    assert server.plugin_settings()["server"] == receiver.url_template
    assert server.plugin_settings()["ping"] == 60
    server.update_config({"plugins": {PLUGIN_ID: {"enabled": False}}})
    assert server.plugin_settings()["enabled"] is False
    server.start()
    with pytest.raises(RuntimeError):
        server.update_config({})


def test_outbound_guard_catches_requests_to_outside_hosts(octoprint_factory, outbound_guard):
    """The safety net works: an outside URL OctoPrint is asked to fetch ends at
    the loopback proxy, never on the network. (.invalid never resolves.)"""
    server = octoprint_factory()
    response = server.api(
        "POST",
        "/api/util/test",
        json={"command": "url", "url": "http://tq-harness.example.invalid/probe", "method": "GET"},
    )
    assert response.status_code == 200
    assert response.json()["result"] is False  # the guard answered 403
    attempts = outbound_guard.attempts
    assert [a["target"] for a in attempts] == ["http://tq-harness.example.invalid/probe"]
    outbound_guard.clear()  # expected here; the fixture fails tests that leave attempts behind


def test_clock_shift_moves_the_servers_wall_clock_and_its_log_times(octoprint_factory, tmp_path):
    shift = ClockShift(tmp_path, -40 * DAY)
    started = time.time()
    server = octoprint_factory(env=shift.env())
    shift.wait_applied(server)
    # The log's dates are 40 days back; across a midnight during the start either day may show.
    days = {time.strftime("%Y-%m-%d", time.localtime(t - 40 * DAY)) for t in (started, time.time())}
    assert any(day in server.log_text() for day in days), days
    shift.set(3600)  # stepped mid-run
    shift.wait_applied(server)
    assert "Logging error" not in server.serve_log_path.read_text(encoding="utf-8")
