"""One row per tracked event: payload in, a record of its tracking event out; its switch off
gives nothing. What the record's parameters are is the bundled plugin's call
(test_bundled_oracle.py); exact records are written out only where ours differ on purpose.

The rules of OctoPrint 1.11 (RecordMaker's default); test_records_parity.py has the payloads
captured from real 1.11.8 and 2.0 servers where the versions differ.
"""

import pytest

from octoprint_tracking_queued import catalogue, records, texts
from octoprint_tracking_queued.config import EVENT_SWITCHES
from tests.harness.bus_events import BUS_EVENTS, ON_PURPOSE, THROTTLE_STATE, THROTTLED, UID, file_hash

NOW = 1_700_000_000.0


def ctx(switches=None, throttle=None, now=NOW):
    return records.Context(
        unique_id=UID,
        switches=switches if switches is not None else {name: True for name in EVENT_SWITCHES},
        now=now,
        throttle=throttle,
        new_id=lambda: "rid",
    )


def expected(event, params, post=False):
    return {
        "id": "rid",
        "event": event,
        "params": params,
        "post": post,
        "created": NOW,
        "attempts": 0,
        "last_error": None,
    }


SWITCHED = [row[:4] for row in BUS_EVENTS + ON_PURPOSE]


@pytest.mark.parametrize("event,payload,switch,tracked", BUS_EVENTS)
def test_bus_event_gives_a_record_of_its_tracking_event(event, payload, switch, tracked):
    record = catalogue.RecordMaker().from_event(event, payload, ctx())
    assert record == expected(tracked, record["params"])  # its params: test_bundled_oracle.py
    assert all(isinstance(value, (str, int, bool)) for value in record["params"].values())


@pytest.mark.parametrize("event,payload,switch,tracked,params,why,only_1_11", ON_PURPOSE)
def test_bus_event_that_differs_on_purpose_gives_exact_record(event, payload, switch, tracked, params, why, only_1_11):
    assert catalogue.RecordMaker().from_event(event, payload, ctx()) == expected(tracked, params), why


@pytest.mark.parametrize("event,payload,switch,tracked", SWITCHED)
def test_bus_event_switched_off_gives_nothing(event, payload, switch, tracked):
    switches = {name: name != switch for name in EVENT_SWITCHES}
    assert catalogue.RecordMaker().from_event(event, payload, ctx(switches)) is None


@pytest.mark.parametrize("event", ["PrintStarted", "PrintDone", "PrintFailed", "PrintCancelled"])
def test_print_and_error_records_carry_throttle_state(event):
    record = catalogue.RecordMaker().from_event(event, {"path": "a.gcode", "origin": "local"}, ctx(throttle=THROTTLED))
    assert record["params"]["throttled_now"] is True
    assert record["params"]["throttled_past"] is True
    assert record["params"]["throttled_mask"] == 0x50005


def test_no_throttle_params_without_an_issue():
    state = {"current_issue": False, "past_issue": False, "raw_value": 0}
    record = catalogue.RecordMaker().from_event("Error", {"reason": "x", "error": "e"}, ctx(throttle=state))
    assert "throttled_now" not in record["params"]


@pytest.mark.parametrize(
    "key, value, reason",
    [
        ("raw_value", "327685", "raw_value of type str"),
        ("raw_value", "0x50005", "raw_value of type str"),
        ("raw_value", 327685.0, "raw_value of type float"),
        ("raw_value", True, "raw_value of type bool"),
        ("raw_value", None, "raw_value of type NoneType"),
        ("raw_value", [5], "raw_value of type list"),
        ("current_issue", "yes", "current_issue not true or false"),
        ("past_issue", 1, "past_issue not true or false"),
        ("current_overheat", None, "current_overheat not true or false"),
    ],
)
def test_a_throttle_state_of_the_wrong_type_is_refused(key, value, reason):
    payload = dict(THROTTLE_STATE, **{key: value})
    with pytest.raises(records.BadPayload, match=reason):
        catalogue.RecordMaker().from_event(records.THROTTLE_EVENT, payload, ctx())
    with pytest.raises(records.BadPayload, match=reason):
        records.throttle_state(payload)


def test_a_throttle_state_as_pi_support_sends_it_is_kept():
    # pi_support's state before its first reading has the mask -1.
    unknown = dict(THROTTLE_STATE, raw_value=-1, current_issue=False, past_issue=False)
    assert records.throttle_state({**unknown, "extra": "x"}) == unknown
    assert records.throttle_state(THROTTLE_STATE) == THROTTLE_STATE


@pytest.mark.parametrize(
    "state",
    [
        dict(THROTTLED, raw_value="327685"),
        dict(THROTTLED, raw_value=327685.0),
        dict(THROTTLED, current_issue="yes"),
        dict(THROTTLED, past_issue=1),
        ["not", "a", "state"],
    ],
)
def test_a_throttle_state_of_the_wrong_type_is_attached_to_nothing(state):
    for event, payload in [("PrintDone", {"path": "a.gcode"}), ("Error", {"reason": "x", "error": "e"})]:
        record = catalogue.RecordMaker().from_event(event, payload, ctx(throttle=state))
        assert not [name for name in record["params"] if name.startswith("throttled")]


def test_print_failed_leaves_error_text_out_when_commerror_off():
    switches = {name: name != "commerror" for name in EVENT_SWITCHES}
    record = catalogue.RecordMaker().from_event(
        "PrintFailed", {"path": "a.gcode", "origin": "local", "error": "boom"}, ctx(switches)
    )
    assert "commerror_text" not in record["params"]


def test_slicer_name_is_read_with_a_text_key():
    # OctoPrint 1.11.8 reads payload.get(b"slicer") and always sends "unknown".
    record = catalogue.RecordMaker().from_event("SlicingStarted", {"slicer": "cura"}, ctx())
    assert record["params"] == {"slicer": "cura"}


def test_printer_connected_on_firmware_data_with_1_11_connection():
    maker = catalogue.RecordMaker()
    assert maker.from_event("Connected", {"port": "/dev/ttyUSB0", "baudrate": 115200}, ctx()) is None
    assert maker.awaiting_firmware
    record = maker.from_event("FirmwareData", {"name": "Marlin 2.1.2", "data": {}}, ctx())
    assert record == expected(
        "printer_connected",
        {"firmware_name": "Marlin 2.1.2", "printer_port": "/dev/ttyUSB0", "printer_baudrate": 115200},
    )
    # Only the first FirmwareData after a connection counts.
    assert maker.from_event("FirmwareData", {"name": "Marlin 2.1.2"}, ctx()) is None


def test_printer_connected_fallback_without_firmware_data():
    maker = catalogue.RecordMaker()
    maker.from_event("Connected", {"port": "VIRTUAL", "baudrate": 0}, ctx())
    record = maker.firmware_timeout(ctx())
    assert record["event"] == "printer_connected"
    assert record["params"] == {"printer_port": "VIRTUAL", "printer_baudrate": 0}
    assert maker.firmware_timeout(ctx()) is None


def test_serial_port_by_id_is_not_sent():
    maker = catalogue.RecordMaker()
    maker.from_event("Connected", {"port": "/dev/serial/by-id/usb-Prusa_CZPX1234-if00", "baudrate": 115200}, ctx())
    record = maker.from_event("FirmwareData", {"name": "Marlin"}, ctx())
    assert record["params"]["printer_port"] == "other"


def test_doubled_commerror_is_recorded_once():
    maker = catalogue.RecordMaker()
    payload = {"reason": "firmware", "error": "Printer halted. kill() called!"}
    assert maker.from_event("Error", payload, ctx(now=NOW)) is not None
    assert maker.from_event("Error", payload, ctx(now=NOW + 0.5)) is None
    # another error, or the same later, is recorded again
    assert maker.from_event("Error", {"reason": "firmware", "error": "other"}, ctx(now=NOW + 1)) is not None
    assert maker.from_event("Error", payload, ctx(now=NOW + 10)) is not None


def test_commerror_text_is_truncated():
    record = catalogue.RecordMaker().from_event("Error", {"reason": "firmware", "error": "x" * 5000}, ctx())
    text = record["params"]["commerror_text"]
    assert len(text) == texts.TEXT_LIMIT
    assert text.endswith("…")


@pytest.mark.parametrize(
    "text,scrubbed",
    [
        ("cannot reach 192.168.1.20:80", "cannot reach <ip>"),
        ("open /home/pi/.octoprint/uploads/secret.gcode failed", "open <path> failed"),
        ("see http://octopi.local/api?apikey=abc", "see <url>"),
        ("mail me@example.com", "mail <email>"),
        ("T:210.0 /210.0 B:60.0 /60.0", "T:210.0 /210.0 B:60.0 /60.0"),
        ("addr fe80::1ff:fe23:4567:890a down", "addr <ip> down"),
    ],
)
def test_texts_are_scrubbed_of_private_data(text, scrubbed):
    assert texts.scrub(text) == scrubbed


@pytest.mark.parametrize(
    "event,payload",
    [
        ("PrintStarted", {"origin": "local"}),
        ("PrintDone", {"path": None}),
        ("Error", {"reason": "x"}),
        ("Error", {"error": "x"}),
        ("plugin_pluginmanager_install_plugin", {"version": "1"}),
        ("plugin_pi_support_throttle_state", {"current_issue": True}),
        ("PrintStarted", ["not", "a", "dict"]),
    ],
)
def test_unusable_payload_raises_bad_payload(event, payload):
    with pytest.raises(records.BadPayload):
        catalogue.RecordMaker().from_event(event, payload, ctx())


def test_odd_values_are_cleaned_not_fatal():
    record = catalogue.RecordMaker().from_event(
        "PrintDone", {"path": b"caf\xe9.gcode", "origin": {"x": 1}, "time": "nan"}, ctx()
    )
    assert record["params"] == {"file": file_hash("caf\ufffd.gcode")}


def test_unknown_event_is_not_tracked():
    assert catalogue.RecordMaker().from_event("ZChange", {"new": 1.0}, ctx()) is None
    assert catalogue.RecordMaker().from_event("Disconnected", None, ctx()) is None


def test_startup_shutdown_ping_pong_webui_switches():
    # What each sends is the bundled plugin's (test_bundled_oracle.py); here: which switch stops it.
    env = {"version": "1.11.8", "os": "linux", "cores": 4}
    browser = {"browser_name": "Chrome", "browser_version": "120", "os_name": "Linux", "os_version": "x86_64"}
    made = [
        records.startup(env, ctx()),
        records.shutdown(ctx()),
        records.pong(env, [], None, ctx()),
        records.webui_load(browser, ctx()),
    ]
    assert [(r["event"], r["post"]) for r in made] == [
        ("startup", False),
        ("shutdown", False),
        ("pong", True),
        ("webui_load", False),
    ]
    off = {name: name != "startup" for name in EVENT_SWITCHES}
    assert records.startup(env, ctx(off)) is None
    assert records.shutdown(ctx(off)) is None
    # ping has no switch
    none_on = {name: False for name in EVENT_SWITCHES}
    assert records.ping(61.9, "OPERATIONAL", ctx(none_on))["event"] == "ping"
    assert records.pong(env, [], None, ctx({"pong": False})) is None
    assert records.webui_load(browser, ctx({"webui_load": False})) is None
    with pytest.raises(records.BadPayload):
        records.webui_load({"browser_name": "Chrome"}, ctx())


def test_user_names_are_scrubbed_from_free_texts():
    context = records.Context(unique_id=UID, switches={}, now=NOW, new_id=lambda: "rid", private_words=("Alice", "bo"))
    record = catalogue.RecordMaker().from_event(
        "Error", {"reason": "firmware", "error": "alice stopped it, ALICE! (not malice, bo)"}, context
    )
    assert record["params"]["commerror_text"] == "<user> stopped it, <user>! (not malice, bo)"
