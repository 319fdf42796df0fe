"""Parity with the bundled Anonymous Usage Tracking plugin of the OctoPrint installed here,
which is imported and run as the oracle (tests/harness/bundled.py): the same input goes to
it and to this plugin, and what each would send is compared on the wire (event name, GET or
POST, every parameter as text). No expected parameter is written out by hand here.

`./dev test` runs this file on every OctoPrint of the matrix (1.11.8 and 2.0.0rc7), each
with the payloads captured from that version (tests/unit/payloads/<version>.json). Where
this plugin differs on purpose, test_records_parity.py and test_records.py say so by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from octoprint_tracking_queued import catalogue, records, system
from octoprint_tracking_queued.config import EVENT_SWITCHES
from tests.harness.bundled import BundledTracking, installed_version, octoprint_2, register_plugin_events, wire
from tests.harness.bus_events import BUS_EVENTS, ON_PURPOSE, THROTTLED, UID

PAYLOADS = Path(__file__).resolve().parent / "payloads"
VERSION = installed_version()
OCTOPRINT_2 = octoprint_2(VERSION)
ENVIRONMENT = {
    "os": {"id": "linux", "platform": "linux", "bits": 64},
    "python": {"version": "3.11.2", "pip": "23.0"},
    "hardware": {"cores": 4, "freq": 1800.0, "ram": 8000000000},
    "plugins": {
        "pi_support": {
            "model": "Raspberry Pi 4 Model B Rev 1.4",
            "octopi_version": "1.0.0",
            "octopiuptodate_build": "1.0.0-2023",
        }
    },
}


def ctx(throttle=None, switches=None) -> records.Context:
    switches = switches if switches is not None else {name: True for name in EVENT_SWITCHES}
    return records.Context(unique_id=UID, switches=switches, now=1.0, throttle=throttle)


def ours(maker: catalogue.RecordMaker, event: str, payload, context: records.Context):
    try:
        return wire(maker.from_event(event, payload, context))
    except records.BadPayload:
        return None


@pytest.fixture
def bundled(monkeypatch):
    """The bundled plugin of the installed OctoPrint, with the plugin events a server registers."""
    # Every event of the plugins it listens to, as their register_custom_events hooks add them.
    names = {name for events in catalogue.SWITCH_EVENTS.values() for name in events}
    register_plugin_events(monkeypatch, names)
    return lambda **kwargs: BundledTracking(monkeypatch, UID, **kwargs)


def captured() -> list:
    path = PAYLOADS / f"{VERSION}.json"
    assert path.exists(), f"no payloads captured from OctoPrint {VERSION} (tests/harness/capture_payloads.py)"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["octoprint"] == VERSION
    return data["events"]


def test_captured_events_of_this_octoprint_give_what_its_bundled_plugin_sends(bundled):
    oracle = bundled()
    maker = catalogue.RecordMaker(octoprint_2=OCTOPRINT_2)
    theirs, made = [], []
    for item in captured():
        theirs += oracle.on_event(item["event"], item["payload"])
        record = ours(maker, item["event"], item["payload"], ctx())
        made += [record] if record else []
    assert len(theirs) >= 10 and oracle.errors == []  # the capture has prints, a connection, achievements
    assert made == theirs


def test_a_connection_without_firmware_data(bundled):
    # 2.0's bundled plugin reports after 15 s without it: ours must send the same. 1.11.8's waits
    # for ever and sends nothing; ours reports anyway (on purpose: test_records_parity.py).
    connected = next(item["payload"] for item in captured() if item["event"] == "Connected")
    oracle = bundled()
    maker = catalogue.RecordMaker(octoprint_2=OCTOPRINT_2)
    assert oracle.on_event("Connected", connected) == [] and maker.from_event("Connected", connected, ctx()) is None
    theirs = oracle.fire_timers()
    if OCTOPRINT_2:
        assert [timer.interval for timer in oracle.timers] == [records.FIRMWARE_TIMEOUT]  # its 15 s
        assert theirs and [wire(maker.firmware_timeout(ctx()))] == theirs
    else:
        assert theirs == [] and maker.firmware_timeout(ctx()) is not None


@pytest.mark.parametrize("event,payload,switch,tracked", BUS_EVENTS)
def test_each_bus_event_gives_what_the_bundled_plugin_sends(bundled, event, payload, switch, tracked):
    for throttle in (None, THROTTLED):  # print and error events also carry a throttle issue
        maker = catalogue.RecordMaker(octoprint_2=OCTOPRINT_2)
        oracle = bundled(throttle=throttle)
        theirs = oracle.on_event(event, dict(payload))
        assert oracle.errors == []
        assert [ours(maker, event, dict(payload), ctx(throttle))] == theirs
        assert theirs[0].event == tracked
        # With its switch off neither sends anything.
        off = {name: name != switch for name in EVENT_SWITCHES}
        assert ours(maker, event, dict(payload), ctx(throttle, off)) is None
        assert bundled(throttle=throttle, switches=off).on_event(event, dict(payload)) == []


@pytest.mark.parametrize("event,payload,switch,tracked,params,why,only_1_11", ON_PURPOSE)
def test_each_difference_on_purpose_is_real_here(bundled, event, payload, switch, tracked, params, why, only_1_11):
    theirs = bundled().on_event(event, dict(payload))
    mine = [ours(catalogue.RecordMaker(octoprint_2=OCTOPRINT_2), event, dict(payload), ctx())]
    if only_1_11 and OCTOPRINT_2:
        assert mine == theirs, f"fixed in {VERSION}: {why}"
    else:
        assert mine != theirs, f"no longer a difference in {VERSION}: {why}"


def test_environment_payload_is_the_bundled_plugins(bundled):
    oracle = bundled(environment=ENVIRONMENT)
    assert system.environment_payload(ENVIRONMENT, VERSION) == oracle.plugin._get_environment_payload()


def test_startup_shutdown_ping_pong_and_webui_load(bundled):
    plugins = [("OctoLapse", "0.4.2", False), ("thing", None, False), ("pi_support", "1", True)]
    oracle = bundled(environment=ENVIRONMENT, plugins=plugins, achievements=["The_Wizard", "sprint"])
    environment = system.environment_payload(ENVIRONMENT, VERSION)
    context = ctx()
    # The glue hands records.pong only the plugins that are not bundled (__init__.py), as here.
    third_party = [(key, version) for key, version, bundled_one in plugins if not bundled_one]
    browser = {"browser_name": "Chrome", "browser_version": "120", "os_name": "Linux", "os_version": "x86_64"}
    oracle.now += 61.9
    pairs = [
        (records.startup(environment, context), oracle.call("_track_startup")),
        (records.shutdown(context), oracle.call("_track_shutdown")),
        (records.ping(61.9, "OPERATIONAL", context), oracle.call("_track_ping")),
        (records.pong(environment, third_party, ["The_Wizard", "sprint"], context), oracle.call("_track_pong")),
        (
            records.webui_load(browser, context),
            oracle.call("on_api_command", "track", {"event": "webui_load", "payload": dict(browser)}),
        ),
    ]
    for mine, theirs in pairs:
        assert [wire(mine)] == theirs
