"""The tracked bus events as test inputs, shared by tests/unit/test_records.py (records.py
alone) and tests/unit/test_bundled_oracle.py (against the bundled plugin)."""

from __future__ import annotations

import hashlib

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
THROTTLED = {"current_issue": True, "past_issue": True, "raw_value": 0x50005}
# A whole throttle state as pi_support sends it: under-voltage now and before.
THROTTLE_STATE = {
    **THROTTLED,
    "current_undervoltage": True,
    "past_undervoltage": True,
    "current_overheat": False,
    "past_overheat": False,
}


def file_hash(path: str) -> str:
    return hashlib.sha1(path.encode() + UID.encode()).hexdigest()


# (OctoPrint event, payload, switch, tracking event). What each sends is not written here:
# test_bundled_oracle.py runs the installed bundled plugin on the same payloads and compares.
BUS_EVENTS = [
    (
        "PrintStarted",
        {"path": "folder/benchy.gcode", "origin": "local", "name": "benchy.gcode"},
        "printjob",
        "print_started",
    ),
    ("PrintDone", {"path": "a.gcode", "origin": "local", "time": 123.7}, "printjob", "print_done"),
    ("PrintFailed", {"path": "a.gcode", "origin": "local"}, "printjob", "print_failed"),
    ("PrintCancelled", {"path": "a.gcode", "origin": "local", "time": 0}, "printjob", "print_cancelled"),
    (
        "Error",
        {"error": "Too many consecutive timeouts, printer still connected and alive?", "reason": "timeout"},
        "commerror",
        "commerror_timeout",
    ),
    ("plugin_pluginmanager_install_plugin", {"id": "octolapse", "version": "0.4.2"}, "plugin", "install_plugin"),
    ("plugin_pluginmanager_uninstall_plugin", {"id": "octolapse", "version": "0.4.2"}, "plugin", "uninstall_plugin"),
    ("plugin_pluginmanager_disable_plugin", {"id": "octolapse", "version": "1"}, "plugin", "disable_plugin"),
    (
        "plugin_softwareupdate_update_succeeded",
        {"target": "octoprint", "from_version": "1.11.7", "to_version": "1.11.8"},
        "update",
        "update_successful",
    ),
    (
        "plugin_softwareupdate_update_failed",
        {"target": "octoprint", "from_version": "1.11.7", "to_version": "1.11.8"},
        "update",
        "update_failed",
    ),
    (
        "plugin_pi_support_throttle_state",
        THROTTLE_STATE,
        "throttled",
        "system_throttled",
    ),
    (
        "plugin_pi_support_throttle_state",
        {
            "current_issue": False,
            "past_issue": True,
            "raw_value": 0x50000,
            "current_undervoltage": False,
            "past_undervoltage": True,
            "current_overheat": False,
            "past_overheat": False,
        },
        "throttled",
        "system_unthrottled",
    ),
    (
        "plugin_printer_safety_check_warning",
        {"check_name": "aneet3", "warning_type": "firmware-unsafe"},
        "printer_safety_check",
        "printer_safety_warning",
    ),
    (
        "plugin_achievements_achievement_unlocked",
        {"key": "the_wizard", "name": "The Wizard"},
        "achievements",
        "achievement_unlocked",
    ),
]

# Where this plugin sends something else than the bundled one, on purpose: (OctoPrint event,
# payload, switch, tracking event, params, why, only on 1.11). test_bundled_oracle.py checks
# that each difference is real on the OctoPrint it runs on.
ON_PURPOSE = [
    (
        "PrintFailed",
        {
            "path": "a.gcode",
            "origin": "sdcard",
            "time": 5,
            "reason": "error",
            "error": "Thermal runaway on /dev/ttyUSB0",
        },
        "printjob",
        "print_failed",
        {
            "origin": "sdcard",
            "file": file_hash("a.gcode"),
            "elapsed": 5,
            "reason": "error",
            "commerror_text": "Thermal runaway on <path>",
        },
        "free texts are scrubbed of paths, addresses and user names",
        False,
    ),
    (
        "SlicingStarted",
        {"slicer": "prusaslicer", "stl": "x.stl"},
        "slicing",
        "slicing_started",
        {"slicer": "prusaslicer"},
        "1.11.8 reads payload.get(b'slicer') and always sends 'unknown' (2.0 fixed it)",
        True,
    ),
    (
        "plugin_pluginmanager_enable_plugin",
        {"id": "octolapse", "version": None},
        "plugin",
        "enable_plugin",
        {"plugin": "octolapse"},
        "a missing value is left out, not sent as the text 'None'",
        False,
    ),
    (
        "plugin_firmware_check_warning",
        {
            "check_name": "cbd",
            "warning_type": "firmware-broken",
            "severity": "critical",
            "url": "https://example.com/x",
        },
        "printer_safety_check",
        "printer_safety_warning",
        {"printer_safety_warning_type": "firmware-broken", "printer_safety_check_name": "cbd"},
        "Firmware Check replaced Printer Safety Check; the bundled plugin listens only to the old one",
        False,
    ),
]
