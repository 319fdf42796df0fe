"""Issue 2 end to end: a real `octoprint serve` with the plugin, the virtual printer and a
receiver on 127.0.0.1. Events arrive once, in order, with the time they happened, across
outages, SIGKILL and graceful restarts."""

from __future__ import annotations

import hashlib
import socket
import time
from collections import Counter

import pytest

from tests.harness.bus_events import THROTTLE_STATE
from tests.harness.versions import OCTOPRINT, OCTOPRINT_2
from tools.server import _poll

pytestmark = pytest.mark.integration

PLUGIN_API = "/api/plugin/tracking_queued"

TINY_GCODE = "G21\nG90\nG28\nG1 X10 Y10 Z0.3 F6000\nG1 X20 Y10\nG1 X20 Y20\n"


# (event fired on the bus, payload, tracking event, params expected at the receiver)
FIRED = [
    (
        "SlicingStarted",
        {"slicer": "prusaslicer", "stl": "x.stl", "gcode": "x.gcode"},
        "slicing_started",
        {"slicer": "prusaslicer"},
    ),
    (
        "plugin_pluginmanager_install_plugin",
        {"id": "octolapse", "version": "0.4.2"},
        "install_plugin",
        {"plugin": "octolapse", "plugin_version": "0.4.2"},
    ),
    (
        "plugin_pluginmanager_disable_plugin",
        {"id": "octolapse", "version": "0.4.2"},
        "disable_plugin",
        {"plugin": "octolapse", "plugin_version": "0.4.2"},
    ),
    (
        "plugin_softwareupdate_update_succeeded",
        {"target": "octoprint", "from_version": "1.11.7", "to_version": "1.11.8"},
        "update_successful",
        {"target": "octoprint", "from_version": "1.11.7", "to_version": "1.11.8"},
    ),
    (
        "plugin_pi_support_throttle_state",
        THROTTLE_STATE,
        "system_throttled",
        {
            "throttled_now": "True",
            "throttled_past": "True",
            "throttled_mask": str(0x50005),
            "throttled_voltage_now": "True",
            "throttled_voltage_past": "True",
            "throttled_overheat_now": "False",
            "throttled_overheat_past": "False",
        },
    ),
    (
        "plugin_firmware_check_warning",
        {
            "check_name": "cbd",
            "warning_type": "firmware-broken",
            "severity": "critical",
            "url": "https://example.com/x",
        },
        "printer_safety_warning",
        {"printer_safety_warning_type": "firmware-broken", "printer_safety_check_name": "cbd"},
    ),
    (
        "plugin_printer_safety_check_warning",
        {"check_name": "aneet3", "warning_type": "firmware-unsafe"},
        "printer_safety_warning",
        {"printer_safety_warning_type": "firmware-unsafe", "printer_safety_check_name": "aneet3"},
    ),
    (
        "plugin_achievements_achievement_unlocked",
        {"key": "hey_its_me", "name": "x"},
        "achievement_unlocked",
        {"achievement": "hey_its_me"},
    ),
]


def status(server) -> dict:
    response = server.api("GET", PLUGIN_API)
    assert response.status_code == 200, response.text
    return response.json()


def pending(server, limit=200) -> list:
    response = server.api("GET", PLUGIN_API, params={"records": "pending", "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()["records"]


def wait_status(server, predicate, timeout=30) -> dict:
    seen = {}

    def check():
        seen["status"] = status(server)
        return predicate(seen["status"])

    assert _poll(check, timeout), f"status never matched: {seen.get('status')}"
    return seen["status"]


def params_of(request) -> dict:
    return {k: v for k, v in request["params"].items() if k not in ("event_time", "event_id")}


def by_event(receiver, name) -> list:
    return [r for r in receiver.requests if r["event"] == name]


def test_online_print_job_and_fired_events_arrive_once(octoprint_factory, receiver):
    server = octoprint_factory(env={"CI": "true"})  # CI must not stop sending to loopback
    uid = server.plugin_settings()["unique_id"]
    assert receiver.wait_event("startup")

    server.connect_virtual_printer()
    server.print_gcode("benchy.gcode", TINY_GCODE)
    for event, payload, *_ in FIRED:
        server.fire_event(event, payload)
    # OctoPrint 1.11 fires one serial error twice: it must be recorded once
    error = {"error": "Printer halted. kill() called!", "reason": "firmware"}
    server.fire_event("Error", error)
    server.fire_event("Error", error)
    browser = {"browser_name": "Chrome", "browser_version": "120.0", "os_name": "Linux", "os_version": "x86_64"}
    assert server.plugin_command("track", event="webui_load", payload=browser).status_code == 200

    expected = {tracked: params for _, _, tracked, params in FIRED if tracked != "printer_safety_warning"}
    for name in [
        *expected,
        "print_started",
        "print_done",
        "printer_connected",
        "commerror_firmware",
        "webui_load",
        "ping",
        "pong",
    ]:
        assert receiver.wait_event(name), f"{name} did not arrive: {receiver.events}"
    assert receiver.wait_event("printer_safety_warning", count=2)
    wait_status(server, lambda s: s["pending"] == 0 and s["in_flight"] == 0)

    requests = receiver.requests
    assert all(r["id"] == uid for r in requests)
    ids = Counter(r["params"]["event_id"] for r in requests)
    assert max(ids.values()) == 1, "an event arrived twice"
    # OctoPrint's own achievements plugin unlocks real ones too (first print, ...)
    counts = Counter(r["event"] for r in requests if r["params"].get("achievement", "hey_its_me") == "hey_its_me")
    for name in [
        *expected,
        "print_started",
        "print_done",
        "printer_connected",
        "commerror_firmware",
        "webui_load",
        "startup",
    ]:
        assert counts[name] == 1, (name, counts)

    for name, params in expected.items():
        assert params in [params_of(r) for r in by_event(receiver, name)], name
    warnings = sorted(params_of(r)["printer_safety_check_name"] for r in by_event(receiver, "printer_safety_warning"))
    assert warnings == ["aneet3", "cbd"]

    file_hash = hashlib.sha1(("benchy.gcode" + uid).encode()).hexdigest()
    # What the bundled plugin of the OctoPrint we run on sends: 2.0 adds the connector, drops the port.
    connector = {"printer_connector": "serial"} if OCTOPRINT_2 else {}
    started = params_of(by_event(receiver, "print_started")[0])
    assert started == {"origin": "local", "file": file_hash, **connector}
    done = params_of(by_event(receiver, "print_done")[0])
    assert done["file"] == file_hash and done["origin"] == "local"
    connected = params_of(by_event(receiver, "printer_connected")[0])
    port = {} if OCTOPRINT_2 else {"printer_port": "VIRTUAL", "printer_baudrate": "115200"}
    assert connected == {"firmware_name": "Virtual Marlin 1.0", **connector, **port}
    # the throttle state fired before is attached, as the bundled plugin does
    assert params_of(by_event(receiver, "commerror_firmware")[0]) == {
        "commerror_text": error["error"],
        "throttled_now": "True",
        "throttled_past": "True",
        "throttled_mask": str(0x50005),
    }
    assert params_of(by_event(receiver, "webui_load")[0]) == browser
    pong = by_event(receiver, "pong")[0]
    assert pong["method"] == "POST" and pong["params"]["version"] == OCTOPRINT
    startup = params_of(by_event(receiver, "startup")[0])
    assert startup["version"] == pong["params"]["version"] and "python" in startup
    assert status(server)["delivered"] >= len(requests) - 1


def test_outage_delivers_everything_in_order_with_original_time(octoprint_factory, receiver):
    server = octoprint_factory()
    assert receiver.wait_event("startup")
    wait_status(server, lambda s: s["pending"] == 0 and s["in_flight"] == 0)
    receiver.stop()
    receiver.clear()

    names = [f"plugin{n}" for n in range(6)]
    for name in names:
        server.fire_event("plugin_pluginmanager_install_plugin", {"id": name, "version": "1.0"})
    wait_status(server, lambda s: s["pending"] + s["in_flight"] >= len(names) and s["worker"]["failures"] >= 2)
    queued = {r["params"]["plugin"]: r for r in pending(server) if r["event"] == "install_plugin"}
    assert sorted(queued) == names
    head = pending(server)[0]  # head of line: only the oldest is being tried
    assert head["attempts"] >= 1 and "refused" in head["last_error"].lower()
    assert status(server)["worker"]["state"] in ("backoff", "sending")

    receiver.start()
    assert receiver.wait_event("install_plugin", count=len(names))
    arrived = [r for r in receiver.requests if r["event"] == "install_plugin"]
    assert [r["params"]["plugin"] for r in arrived] == names
    for request in arrived:
        record = queued[request["params"]["plugin"]]
        assert request["params"]["event_time"] == str(int(record["created"]))
        assert request["params"]["event_id"] == record["id"]
        assert request["received"] > record["created"]
    wait_status(server, lambda s: s["pending"] == 0)


def test_sigkill_while_offline_loses_nothing(octoprint_factory, receiver):
    server = octoprint_factory()
    assert receiver.wait_event("startup")
    receiver.stop()
    receiver.clear()
    names = [f"crash{n}" for n in range(8)]
    for name in names:
        server.fire_event("plugin_pluginmanager_enable_plugin", {"id": name, "version": "2"})
    wait_status(server, lambda s: s["pending"] + s["in_flight"] >= len(names))
    ids = {r["params"]["plugin"]: r["id"] for r in pending(server) if r["event"] == "enable_plugin"}
    assert sorted(ids) == names

    server.kill()
    server.start()
    receiver.start()
    for name in names:
        assert receiver.wait_for(lambda reqs, n=name: any(r["params"].get("event_id") == ids[n] for r in reqs)), (
            f"{name} lost after SIGKILL"
        )
    arrived = Counter(r["params"]["event_id"] for r in receiver.requests if r["event"] == "enable_plugin")
    assert set(arrived) == set(ids.values())
    assert max(arrived.values()) <= 2  # at most one duplicate per crash
    assert [r["params"]["plugin"] for r in receiver.requests if r["event"] == "enable_plugin"][: len(names)] == names


def test_graceful_stop_while_offline_sends_shutdown_after_restart(octoprint_factory, receiver):
    server = octoprint_factory()
    assert receiver.wait_event("startup")
    receiver.stop()
    receiver.clear()
    stopped_at = time.time()
    server.stop()
    restarted_at = time.time()
    server.start()
    receiver.start()
    assert receiver.wait_event("shutdown") and receiver.wait_event("startup")
    shutdown = by_event(receiver, "shutdown")[0]
    assert int(stopped_at) <= int(shutdown["params"]["event_time"]) <= restarted_at
    # it is the first thing sent after the restart: it was queued before the new startup
    first = [r["event"] for r in receiver.requests if r["event"] in ("shutdown", "startup")]
    assert first[:2] == ["shutdown", "startup"]


def test_disable_variable_stops_all_sending(octoprint_factory, receiver):
    server = octoprint_factory(env={"OCTOPRINT_DISABLE_TRACKING": "1"})
    s = wait_status(server, lambda s: s["pending"] >= 1)  # startup is queued, not sent
    assert s["worker"]["state"] == "disabled"
    assert "OCTOPRINT_DISABLE_TRACKING" in s["worker"]["reason"]
    server.plugin_command("flush")
    server.fire_event("plugin_pluginmanager_install_plugin", {"id": "x", "version": "1"})
    wait_status(server, lambda s: s["pending"] >= 2 and s["worker"]["state"] == "disabled")
    assert receiver.requests == []


def test_bad_config_yaml_value_is_a_visible_error_and_events_stay_queued(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings={"server": "file:///etc/passwd"})
    s = wait_status(server, lambda s: s["pending"] >= 1)
    assert s["worker"]["state"] == "config_error"
    assert any("plugins.tracking_queued.server" in e for e in s["config_errors"])
    assert "plugins.tracking_queued.server" in server.log_text()
    assert receiver.requests == []


def test_bad_setting_through_the_api_keeps_the_old_value(octoprint_factory, receiver):
    server = octoprint_factory()
    response = server.api(
        "POST",
        "/api/settings",
        json={
            "plugins": {
                "tracking_queued": {
                    "queue": {"max_records": "lots"},
                    "retry": {"max_delay": -1},
                    "events": {"slicing": False},
                }
            }
        },
    )
    assert response.status_code == 200
    settings = server.api("GET", "/api/settings").json()["plugins"]["tracking_queued"]
    assert settings["queue"]["max_records"] == 10000
    assert settings["retry"]["max_delay"] == 1.0
    assert settings["events"]["slicing"] is False  # the good part of the same save is kept
    errors = status(server)["settings_errors"]
    assert any("queue.max_records" in e for e in errors) and any("retry.max_delay" in e for e in errors)
    # the restricted paths cannot be changed through the API at all
    server.api(
        "POST", "/api/settings", json={"plugins": {"tracking_queued": {"server": "http://127.0.0.1:1/{id}/{event}"}}}
    )
    assert server.plugin_settings()["server"] == receiver.url_template


def test_offline_verdict_holds_sending_and_online_wakes_the_worker(octoprint_factory, receiver):
    # OctoPrint's connectivity check probes a loopback port we open and close at will.
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", 0))
    probe.listen(8)
    port = probe.getsockname()[1]
    check = {"enabled": True, "host": "127.0.0.1", "port": port, "name": "", "interval": 3600}
    # Long retry delays: a delivery within the test's timeouts can only come from a wake-up.
    server = octoprint_factory(
        plugin_settings={"retry": {"initial_delay": 600, "max_delay": 600}},
        extra_config={"server": {"onlineCheck": check}},
    )
    assert receiver.wait_event("startup")

    def recheck(interval):  # a changed check setting makes OctoPrint check at once
        response = server.api("POST", "/api/settings", json={"server": {"onlineCheck": {"interval": interval}}})
        assert response.status_code == 200

    probe.close()
    recheck(3601)
    wait_status(server, lambda s: s["worker"]["state"] == "offline")
    before = len(receiver.requests)
    for n in range(3):
        server.fire_event("plugin_pluginmanager_install_plugin", {"id": f"off{n}", "version": "1"})
    s = wait_status(server, lambda s: s["pending"] >= 3)
    assert s["worker"]["state"] == "offline" and s["worker"]["failures"] == 0
    assert len(receiver.requests) == before  # the receiver is up, yet nothing was tried

    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", port))
    probe.listen(8)
    try:
        recheck(3602)
        assert receiver.wait_event("install_plugin", count=3)
    finally:
        probe.close()
    assert [r["params"]["plugin"] for r in by_event(receiver, "install_plugin")] == ["off0", "off1", "off2"]


FIRMWARE_WAIT = 2.0  # the server's firmware timeout here (the plugin's 15 s, shortened by tq_test_events)


def test_printer_connected_without_firmware_data_is_reported_after_the_timeout(octoprint_factory, receiver):
    server = octoprint_factory(env={"TQ_TEST_FIRMWARE_TIMEOUT": str(FIRMWARE_WAIT)})
    assert receiver.wait_event("startup")
    assert f"firmware timeout {FIRMWARE_WAIT} s" in server.log_text()  # the shortened wait is in force
    fired_at = time.time()
    # The payload of the OctoPrint we run on; its bundled plugin sends what is expected.
    connection = {"port": "/dev/ttyACM0", "baudrate": 250000}
    if OCTOPRINT_2:
        server.fire_event("Connected", {"connector": "serial", **connection})
        sent = {"printer_connector": "serial"}
    else:
        server.fire_event("Connected", connection)
        sent = {"printer_port": "/dev/ttyACM0", "printer_baudrate": "250000"}
    assert receiver.wait_event("printer_connected", timeout=30)
    request = by_event(receiver, "printer_connected")[0]
    assert params_of(request) == sent
    # Not before the wait is over (fired_at is taken before the event is fired).
    assert request["received"] - fired_at >= FIRMWARE_WAIT
