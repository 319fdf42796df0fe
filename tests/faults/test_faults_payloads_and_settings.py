"""Scenario 6, component level: hostile event payloads and settings.

Every payload either becomes a record that can be stored and sent, or is refused with
BadPayload; nothing else may escape towards OctoPrint's event bus.
"""

from __future__ import annotations

import itertools
import time

import pytest

from octoprint_tracking_queued import catalogue, config, records, texts
from octoprint_tracking_queued.delivery import Delivered, Delivery
from octoprint_tracking_queued.store import open_queue
from tests.harness.faultserver import FaultServer

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
EVENTS = [
    *records.PRINT_EVENTS,
    records.ERROR,
    records.CONNECTED,
    records.FIRMWARE_DATA,
    records.SLICING_STARTED,
    *records.PLUGIN_EVENTS,
    *records.UPDATE_EVENTS,
    records.THROTTLE_EVENT,
    *records.SAFETY_EVENTS,
    records.ACHIEVEMENT_EVENT,
    "SomethingNobodyTracks",
    "",
    "\udcff",
]
KEYS = [
    "path",
    "origin",
    "time",
    "reason",
    "error",
    "port",
    "baudrate",
    "connector",
    "name",
    "slicer",
    "id",
    "version",
    "target",
    "from_version",
    "to_version",
    "current_issue",
    "past_issue",
    "raw_value",
    "current_undervoltage",
    "past_undervoltage",
    "current_overheat",
    "past_overheat",
    "warning_type",
    "check_name",
    "key",
]
VALUES = [
    None,
    0,
    -1,
    10**40,
    1.5,
    float("nan"),
    float("inf"),
    True,
    "",
    "x" * 1_000_000,
    "bad \udcff surrogate",
    "nul\x00byte",
    b"\xff\xfe not utf-8",
    ["a"],
    {"a": 1},
    object(),
]
PAYLOADS = [None, {}, [], "text", 42, b"\xff"] + [{key: value for key in KEYS} for value in VALUES]


@pytest.mark.parametrize("octoprint_2", [False, True], ids=["1.11", "2.0"])
def test_every_hostile_payload_becomes_a_sendable_record_or_a_bad_payload(tmp_path, octoprint_2):
    maker = catalogue.RecordMaker(octoprint_2)
    queue = open_queue(str(tmp_path), max_records=100_000)
    server = FaultServer()
    delivery = Delivery(timeout=(1, 1))
    made = refused = 0
    try:
        for n, (event, payload) in enumerate(itertools.product(EVENTS, PAYLOADS)):
            ctx = records.Context(
                UID, {}, now=1000.0 + n * 10, throttle={"current_issue": True, "past_issue": 1, "raw_value": 5}
            )
            try:
                record = maker.from_event(event, payload, ctx)
            except records.BadPayload:
                refused += 1
                continue
            if record is None:
                continue
            made += 1
            for value in record["params"].values():
                assert isinstance(value, (str, int, float, bool))
                if isinstance(value, str):
                    assert len(value) <= texts.LIST_LIMIT
                    value.encode("utf-8")  # no lone surrogates left
            assert queue.put(record), record["event"]
            entry = queue.next()
            assert delivery.send(entry.record, server.template, UID) == Delivered(200)
            queue.ack(entry)
    finally:
        server.stop()
        delivery.close()
        queue.close()
    print(f"hostile payloads: {made} records made and sent, {refused} refused")
    # The same fixed payloads every run: any change in what is kept or refused shows here. The
    # throttle event's 16 payloads of one repeated value are refused since its payload is
    # type-checked (issue 18): 161/212 and 169/204 before.
    assert (made, refused) == ((153, 220) if octoprint_2 else (145, 228))


def test_a_record_queued_with_a_lone_surrogate_still_goes_out():
    """Found by this suite: such a record raised UnicodeEncodeError on every attempt and,
    at the head of the FIFO, blocked every record behind it."""
    server = FaultServer()
    try:
        record = {"id": "e1", "event": "commerror_x", "params": {"commerror_text": "bad \udcff"}, "created": 1.0}
        assert Delivery(timeout=(1, 1)).send(record, server.template, UID) == Delivered(200)
        assert server.delivered[0]["commerror_text"] == "bad ?"
    finally:
        server.stop()


HOSTILE_SETTINGS = [
    {"server": "file:///etc/passwd"},
    {"server": "javascript:alert(1)//{id}{event}"},
    {"server": "http://127.0.0.1/track/{event}/"},  # no {id}
    {"server": "http://127.0.0.1/{id}/{event}/{id.__class__.__mro__}"},
    {"server": "http://127.0.0.1/{id}/{event}/{id:>999999999}"},
    {"server": "http://127.0.0.1/{id}/{event}/{0}"},
    {"server": "http://127.0.0.1/{id}/{event}/{"},
    {"server": 12},
    {"ping": -1},
    {"ping": 0},
    {"ping": 10**12},
    {"ping": "often"},
    {"ping": 1.5},
    {"ping": True},
    {"pong": -5},
    {"queue": {"max_records": 0}},
    {"queue": {"max_records": "lots"}},
    {"queue": {"max_age_days": -1}},
    {"queue": "full"},
    {"retry": {"initial_delay": "nan"}},
    {"retry": {"max_delay": float("inf")}},
    {"retry": {"initial_delay": 0}},
    {"enabled": "yes"},
    {"events": {"startup": "no"}},
    {"unique_id": "../../etc/passwd"},
    {"unique_id": "x" * 1000},
    {"nonsense": 1},
]


@pytest.mark.parametrize("update", HOSTILE_SETTINGS, ids=lambda u: repr(u)[:60])
def test_hostile_settings_are_refused_with_a_reason(update):
    started = time.monotonic()
    clean, errors = config.clean_update(update)
    # Nothing of a refused value is kept, not even a falsy one (0, "", False).
    assert all(value == {} for value in clean.values()), clean
    assert errors and all(e.startswith("plugins.tracking_queued.") for e in errors)
    resolved, _ = config.resolve(update)  # the same value in config.yaml is never used
    for key in set(update) & set(config.DEFAULTS):
        assert resolved[key] == config.DEFAULTS[key]
    assert time.monotonic() - started < 0.5  # validating never formats a hostile template


def test_settings_that_are_not_an_object_are_refused():
    for data in (None, [], "x", 5):
        assert config.clean_update(data) == ({}, ["settings must be an object"])


def test_scrubbing_a_megabyte_of_firmware_noise_is_quick():
    """Found by this suite: the e-mail pattern backtracked quadratically; 1 MB of 'x'
    would have held OctoPrint's event thread for most of an hour."""
    started = time.monotonic()
    record = records.commerror(
        {"reason": "spam", "error": "x" * 1_000_000 + " 10.0.0.1"}, records.Context(UID, {}, 1.0)
    )
    assert time.monotonic() - started < 0.5
    assert len(record["params"]["commerror_text"]) == texts.TEXT_LIMIT


def test_api_keys_in_free_texts_are_scrubbed():
    """Found by this suite: an error text quoting an API key sent the key."""
    text = "request with X-Api-Key: TqUserKey-1b3d5f7a9c0e2a4c6e8a0c2e4a6c8e0a failed at 12:30:45"
    assert texts.scrub(text) == "request with X-Api-Key: <token> failed at 12:30:45"
    assert (
        texts.scrub("Printer halted. kill() called! M112 T0 E1234567")
        == "Printer halted. kill() called! M112 T0 E1234567"
    )


def test_webui_load_fields_are_scrubbed():
    """Found by this suite: any caller of the API could put an address into os_version."""
    record = records.webui_load(
        {"browser_name": "Firefox", "browser_version": "120", "os_name": "Linux", "os_version": "10.1.2.3"},
        records.Context(UID, {}, 1.0),
    )
    assert record["params"]["os_version"] == "<ip>"
