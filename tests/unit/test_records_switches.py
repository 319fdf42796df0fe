"""catalogue.tracked_events: the set the runtime dismisses untracked bus events with must hold
every event RecordMaker makes a record of, and nothing behind a switch that is off."""

from __future__ import annotations

from typing import Optional

import pytest

from octoprint_tracking_queued import catalogue, config, records

THROTTLE = {
    "current_issue": True,
    "past_issue": True,
    "raw_value": 5,
    "current_undervoltage": True,
    "past_undervoltage": True,
    "current_overheat": False,
    "past_overheat": False,
}
# One usable payload per event RecordMaker knows.
PAYLOADS = {
    "PrintStarted": {"path": "a.gcode", "origin": "local"},
    "PrintDone": {"path": "a.gcode", "origin": "local", "time": 3},
    "PrintFailed": {"path": "a.gcode", "origin": "local", "time": 3, "reason": "error"},
    "PrintCancelled": {"path": "a.gcode", "origin": "local", "time": 3},
    "Error": {"reason": "firmware", "error": "boom"},
    "FirmwareData": {"name": "Marlin"},  # after Connected
    "SlicingStarted": {"slicer": "cura"},
    "plugin_pluginmanager_install_plugin": {"id": "x", "version": "1"},
    "plugin_pluginmanager_uninstall_plugin": {"id": "x", "version": "1"},
    "plugin_pluginmanager_enable_plugin": {"id": "x", "version": "1"},
    "plugin_pluginmanager_disable_plugin": {"id": "x", "version": "1"},
    "plugin_softwareupdate_update_succeeded": {"target": "octoprint", "from_version": "1", "to_version": "2"},
    "plugin_softwareupdate_update_failed": {"target": "octoprint", "from_version": "1", "to_version": "2"},
    "plugin_pi_support_throttle_state": THROTTLE,
    "plugin_printer_safety_check_warning": {"warning_type": "sanity", "check_name": "x"},
    "plugin_firmware_check_warning": {"warning_type": "sanity", "check_name": "x"},
    "plugin_achievements_achievement_unlocked": {"key": "the_wizard"},
}


def record_of(event: str, switches: dict) -> Optional[dict]:
    maker = catalogue.RecordMaker()
    ctx = records.Context(unique_id="id", switches=switches, now=1000.0)
    if event == "FirmwareData":
        maker.from_event("Connected", {"port": "VIRTUAL"}, ctx)
    return maker.from_event(event, PAYLOADS[event], ctx)


def test_every_switch_is_a_setting():
    assert set(catalogue.SWITCH_EVENTS) <= set(config.EVENT_SWITCHES)


def test_all_on_tracks_every_event_the_maker_knows():
    tracked = catalogue.tracked_events(config.defaults()["events"])
    assert tracked == set(PAYLOADS) | {"Connected"}
    for event in PAYLOADS:
        assert record_of(event, config.defaults()["events"]) is not None, event


@pytest.mark.parametrize("switch", sorted(catalogue.SWITCH_EVENTS))
def test_a_switch_off_removes_exactly_its_events(switch):
    switches = {**config.defaults()["events"], switch: False}
    tracked = catalogue.tracked_events(switches)
    assert tracked == catalogue.tracked_events(config.defaults()["events"]) - set(catalogue.SWITCH_EVENTS[switch])
    for event in set(PAYLOADS) - tracked:
        assert record_of(event, switches) is None, event


def test_a_missing_switch_counts_as_on():
    assert catalogue.tracked_events({}) == catalogue.tracked_events(config.defaults()["events"])
    assert "PrintDone" not in catalogue.tracked_events({"printjob": False})


def test_untracked_events_make_no_record():
    assert "ZChange" not in catalogue.tracked_events({})
    ctx = records.Context(unique_id="id", switches={}, now=1000.0)
    assert catalogue.RecordMaker().from_event("ZChange", {"new": 1}, ctx) is None
