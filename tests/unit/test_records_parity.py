"""Per OctoPrint version: the payloads its event bus really delivered (tests/unit/payloads/,
captured by tests/harness/capture_payloads.py), where this plugin differs from that version's
bundled plugin on purpose, or where one version's payload meets the other version's rules.

That the captured payloads give what the bundled plugin sends is checked by running it:
test_bundled_oracle.py, on each OctoPrint of the matrix. Only the differences are written
out here, each with its reason.
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


DONE = sha("capture done.gcode")


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
