"""Issue 18, on a real `octoprint serve`: hostile text through the channels that reach a record
arrives in the inspector and at the receiver without control or format characters, and a
throttle state of the wrong type is skipped with a log line and attached to nothing."""

from __future__ import annotations

import unicodedata

import pytest

from tests.harness.api import API, PLUGINS, active, offline, wait_status

pytestmark = pytest.mark.integration

RLO, ZWSP, LRI, ESC = "\u202e", "\u200b", "\u2066", "\x1b"
THROTTLE = {
    "current_issue": True,
    "past_issue": True,
    "raw_value": "327685",  # the mask as text
    "current_undervoltage": True,
    "past_undervoltage": True,
    "current_overheat": False,
    "past_overheat": False,
}
SWITCHES = ("plugin", "commerror", "printer_safety_check", "throttled", "webui_load")


def hidden(params: dict) -> dict:
    return {k: v for k, v in params.items() if any(unicodedata.category(c) in ("Cc", "Cf") for c in str(v))}


def test_hostile_texts_and_a_mistyped_throttle_state(octoprint_factory, receiver):
    events = dict(PLUGINS["events"], **{name: True for name in SWITCHES})
    server = octoprint_factory(plugin_settings=dict(PLUGINS, events=events))
    offline(server, receiver)

    server.fire_event("plugin_pi_support_throttle_state", THROTTLE)
    server.fire_event("plugin_pluginmanager_install_plugin", {"id": f"gpj.{RLO}exe", "version": f"1{ZWSP}.0"})
    server.fire_event("Error", {"reason": "firmware", "error": f"Heater {ESC}[31mfailed{RLO} T0"})
    server.fire_event("plugin_firmware_check_warning", {"warning_type": "unsafe", "check_name": f"a{LRI}b"})
    browser = {"browser_name": f"Fire{RLO}fox", "browser_version": "120", "os_name": "Linux", "os_version": "6"}
    response = server.api("POST", API, json={"command": "track", "event": "webui_load", "payload": browser})
    assert response.status_code == 200, response.text
    wait_status(server, lambda s: active(s) == 4)  # no record of the throttle state

    stored = server.api("GET", API, params={"records": "pending", "limit": 50}).json()["records"]
    found = {r["event"]: r["params"] for r in stored}
    print(f"FIGURE issue 18 inspector: {len(stored)} records, hidden characters {[hidden(p) for p in found.values()]}")
    assert [hidden(p) for p in found.values()] == [{}] * 4
    assert found["install_plugin"] == {"plugin": "gpj.exe", "plugin_version": "1.0"}
    assert found["commerror_firmware"] == {"commerror_text": "Heater [31mfailed T0"}  # no throttle state
    assert found["printer_safety_warning"]["printer_safety_check_name"] == "ab"
    assert found["webui_load"]["browser_name"] == "Firefox"
    assert server.wait_for_log("Skipped a tracking event: throttle state with a raw_value of type str")

    receiver.start()
    assert receiver.wait_for(lambda rs: sum(r["event"] != "ping" for r in rs) == 4)
    arrived = [r for r in receiver.requests if r["event"] != "ping"]
    assert [hidden(r["params"]) for r in arrived] == [{}] * 4
    assert not [r for r in arrived if "throttled_mask" in r["params"] or r["event"].startswith("system_")]
