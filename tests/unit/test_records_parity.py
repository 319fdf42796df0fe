"""Per OctoPrint version: the payloads its event bus really delivered, through records.py, give
what that version's bundled tracking plugin sends.

The payloads in tests/unit/payloads/ were captured from real servers by
tests/harness/capture_payloads.py (virtual printer: connect, a print done, one cancelled,
one failed by a firmware error). The expected parameters are written out from reading the
bundled plugin of each version (src/octoprint/plugins/tracking/__init__.py of 1.11.8 and
2.0.0rc7), not computed by the code under test.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from octoprint_tracking_queued import catalogue, records
from octoprint_tracking_queued.config import EVENT_SWITCHES

PAYLOADS = Path(__file__).resolve().parent / "payloads"
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def ctx() -> records.Context:
    return records.Context(unique_id=UID, switches={name: True for name in EVENT_SWITCHES}, now=1.0)


def captured(version: str) -> list:
    data = json.loads((PAYLOADS / f"{version}.json").read_text(encoding="utf-8"))
    assert data["octoprint"] == version
    return data["events"]


def payload(version: str, event: str) -> dict:
    return copy.deepcopy(next(item["payload"] for item in captured(version) if item["event"] == event))


def sha(path: str) -> str:
    return hashlib.sha1(path.encode() + UID.encode()).hexdigest()


def achievement(key: str) -> tuple:
    return "achievement_unlocked", {"achievement": key}


DONE, CANCELLED, FAILED = sha("capture done.gcode"), sha("capture cancelled.gcode"), sha("capture failed.gcode")

# 1.11.8: printer_connected on the first FirmwareData after Connected with the connection's
# port and baud rate; print events origin + file hash, elapsed when int(time) is not 0,
# PrintFailed its reason and the error text.
EXPECTED_1_11_8 = [
    achievement("the_wizard"),
    (
        "printer_connected",
        {"firmware_name": "Virtual Marlin 1.0", "printer_port": "VIRTUAL", "printer_baudrate": 115200},
    ),
    ("print_started", {"origin": "local", "file": DONE}),
    achievement("santas_little_helper"),
    ("print_done", {"origin": "local", "file": DONE, "elapsed": 1}),
    achievement("one_small_step_for_man"),
    achievement("sprint"),
    ("print_started", {"origin": "local", "file": CANCELLED}),
    ("print_cancelled", {"origin": "local", "file": CANCELLED, "elapsed": 2}),
    achievement("all_beginnings_are_hard"),
    ("print_failed", {"origin": "local", "file": CANCELLED, "elapsed": 2, "reason": "cancelled"}),
    ("print_started", {"origin": "local", "file": FAILED}),
    ("commerror_firmware", {"commerror_text": "MINTEMP triggered! - Not SD printing"}),
    (
        "print_failed",
        {
            "origin": "local",
            "file": FAILED,
            "elapsed": 2,
            "reason": "error",
            "commerror_text": "MINTEMP triggered! - Not SD printing",
        },
    ),
]

# 2.0.0rc7: printer_connected has the connector and the firmware name, no port or baud rate;
# print events also carry the payload's connector as printer_connector.
EXPECTED_2_0_0RC7 = [
    achievement("the_wizard"),
    achievement("the_more_the_merrier"),
    ("printer_connected", {"printer_connector": "serial", "firmware_name": "Virtual Marlin 1.0"}),
    ("print_started", {"origin": "local", "file": DONE, "printer_connector": "serial"}),
    achievement("santas_little_helper"),
    ("print_done", {"origin": "local", "file": DONE, "printer_connector": "serial", "elapsed": 1}),
    achievement("one_small_step_for_man"),
    achievement("sprint"),
    ("print_started", {"origin": "local", "file": CANCELLED, "printer_connector": "serial"}),
    ("print_cancelled", {"origin": "local", "file": CANCELLED, "printer_connector": "serial", "elapsed": 2}),
    achievement("all_beginnings_are_hard"),
    (
        "print_failed",
        {"origin": "local", "file": CANCELLED, "printer_connector": "serial", "elapsed": 2, "reason": "cancelled"},
    ),
    ("print_started", {"origin": "local", "file": FAILED, "printer_connector": "serial"}),
    ("commerror_firmware", {"commerror_text": "MINTEMP triggered! - T:21.30/ 0.00 B:21.30/ 0.00 @:64"}),
    (
        "print_failed",
        {
            "origin": "local",
            "file": FAILED,
            "printer_connector": "serial",
            "elapsed": 2,
            "reason": "error",
            "commerror_text": "unknown",  # 2.0 puts no text in PrintFailed; its Error has it
        },
    ),
]


@pytest.mark.parametrize(
    "version,octoprint_2,expected",
    [("1.11.8", False, EXPECTED_1_11_8), ("2.0.0rc7", True, EXPECTED_2_0_0RC7)],
)
def test_captured_events_give_what_the_bundled_plugin_of_that_version_sends(version, octoprint_2, expected):
    maker = catalogue.RecordMaker(octoprint_2=octoprint_2)
    made = []
    for item in captured(version):
        record = maker.from_event(item["event"], item["payload"], ctx())
        if record is not None:
            made.append((record["event"], record["params"]))
    assert made == expected


def test_on_2_0_a_connection_without_firmware_data_reports_the_connector_only():
    # 2.0's bundled plugin reports after 15 s with printer_connector and no firmware name.
    maker = catalogue.RecordMaker(octoprint_2=True)
    assert maker.from_event("Connected", payload("2.0.0rc7", "Connected"), ctx()) is None
    assert maker.firmware_timeout(ctx())["params"] == {"printer_connector": "serial"}


def test_on_1_11_a_connection_without_firmware_data_reports_port_and_baud_rate():
    # 1.11.8's bundled plugin waits for FirmwareData for ever; ours reports after 15 s anyway.
    maker = catalogue.RecordMaker(octoprint_2=False)
    maker.from_event("Connected", payload("1.11.8", "Connected"), ctx())
    assert maker.firmware_timeout(ctx())["params"] == {"printer_port": "VIRTUAL", "printer_baudrate": 115200}


def test_on_2_0_no_port_or_baud_rate_leaves_even_for_a_connection_event_in_1_11_form():
    # A plugin may fire Connected the 1.11 way on 2.0: 2.0's bundled plugin still sends no port.
    maker = catalogue.RecordMaker(octoprint_2=True)
    maker.from_event("Connected", payload("1.11.8", "Connected"), ctx())
    record = maker.from_event("FirmwareData", payload("2.0.0rc7", "FirmwareData"), ctx())
    assert record["params"] == {"firmware_name": "Virtual Marlin 1.0"}


def test_on_1_11_the_connector_is_not_sent():
    # 1.11.8's bundled plugin knows no connectors, whatever a payload carries.
    maker = catalogue.RecordMaker(octoprint_2=False)
    record = maker.from_event("PrintStarted", payload("2.0.0rc7", "PrintStarted"), ctx())
    assert record["params"] == {"origin": "local", "file": DONE}
    maker.from_event("Connected", payload("2.0.0rc7", "Connected"), ctx())
    record = maker.from_event("FirmwareData", payload("2.0.0rc7", "FirmwareData"), ctx())
    assert "printer_connector" not in record["params"]


def test_a_print_event_without_a_path_is_hashed_from_n_a_on_2_0_and_skipped_on_1_11():
    started = payload("2.0.0rc7", "PrintStarted")
    del started["path"]
    record = catalogue.RecordMaker(octoprint_2=True).from_event("PrintStarted", started, ctx())
    assert record["params"] == {"origin": "local", "file": sha("n/a"), "printer_connector": "serial"}
    # 1.11.8's bundled plugin raises on the missing path and sends nothing.
    started = payload("1.11.8", "PrintStarted")
    del started["path"]
    with pytest.raises(records.BadPayload):
        catalogue.RecordMaker(octoprint_2=False).from_event("PrintStarted", started, ctx())
