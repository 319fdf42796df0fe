"""The tracked events, one row each: the settings switch and its label, the OctoPrint events that
feed it, the builder that makes its record, and what the record is worth to the queue (eviction
rank, coalescing key).

Derived from the table: the dispatch of bus events (`RecordMaker`), the events dismissed before
any work (`tracked_events`), the switches of the settings and of the tab (`EVENT_SWITCHES`),
and the queue's eviction and coalescing (`traits`). Adding an event: one row, one builder in
records.py and one captured parity payload.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, Mapping, NamedTuple, Optional, Tuple

from flask_babel import LazyString
from flask_babel import lazy_gettext as _

from . import records, texts
from .records import Context, Record

# What a record is worth when the queue is full: a page load or a heartbeat says little that
# the next one will not say again; startup, errors, throttling and prints happen once.
RANK_WEBUI, RANK_HEARTBEAT, RANK_EVENT = 0, 1, 2
WEBUI_LOAD = "webui_load"

Builder = Callable[["RecordMaker", str, Mapping[str, Any], Context], Optional[Record]]


class Tracked(NamedTuple):
    switch: str  # events.<switch> in the settings
    label: Optional[LazyString]  # the switch in the settings tab, which lists them in this order
    bus: Tuple[str, ...]  # OctoPrint events that feed it; none: a timer, the life cycle or the web UI
    build: Optional[Builder]  # the record of one of those events (None when `bus` is empty)
    names: Tuple[str, ...]  # tracking events it makes (commerror_<reason> are open-ended)
    rank: int = RANK_EVENT  # eviction order at the cap: lowest first
    coalesce: Optional[Callable[[dict], str]] = None  # records with one key supersede each other


class RecordMaker:
    """Maps the event bus onto records through the catalogue, holding the little state some
    events need: the last printer connection (for printer_connected) and the last communication
    error (to record OctoPrint's doubled `Error` once). `octoprint_2`: follow 2.0's bundled plugin
    where it differs from 1.11.8's and the payload cannot tell (a 1.11-style `Connected` fired by
    a plugin on 2.0 must not send the port either)."""

    def __init__(self, octoprint_2: bool = False) -> None:
        self.octoprint_2 = octoprint_2
        self.connection: Optional[Dict[str, Any]] = None
        self.awaiting_firmware = False
        self._last_error: Optional[Tuple[str, str, float]] = None

    def from_event(self, event: str, payload: Any, ctx: Context) -> Optional[Record]:
        """The record for one bus event, None when it is not tracked; BadPayload when unusable."""
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise records.BadPayload(f"{event} payload is a {type(payload).__name__}, not an object")
        row = _BY_BUS.get(event)
        if row is None or row.build is None:
            return None
        return row.build(self, event, payload, ctx)

    def firmware_timeout(self, ctx: Context) -> Optional[Record]:
        """Called FIRMWARE_TIMEOUT seconds after Connected: report the printer without firmware."""
        if not self.awaiting_firmware:
            return None
        self.awaiting_firmware = False
        return records.printer_connected(self.connection or {}, None, ctx, self.octoprint_2)

    def _printer(self, event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
        if event == records.CONNECTED:
            self.connection = {k: payload.get(k) for k in ("port", "baudrate", "connector")}
            self.awaiting_firmware = True
            return None
        if not self.awaiting_firmware:
            return None
        self.awaiting_firmware = False
        firmware = texts.text(payload, "name") or "unknown"
        return records.printer_connected(self.connection or {}, firmware, ctx, self.octoprint_2)

    def _commerror(self, event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
        record = records.commerror(payload, ctx)
        if record is None:
            return None
        key = (record["event"], record["params"].get("commerror_text", ""))
        last = self._last_error
        # The window runs from the last recorded error, so a spamming firmware still
        # yields one record every few seconds rather than none.
        if last and (last[0], last[1]) == key and 0 <= ctx.now - last[2] < records.COMMERROR_WINDOW:
            return None
        self._last_error = (key[0], key[1], ctx.now)
        return record


def _same_event(record: dict) -> str:
    return record["event"]


def _same_browser(record: dict) -> str:
    # The same browser and OS: a newer load says all an older one did.
    params = record.get("params") or {}
    return "\x1f".join([WEBUI_LOAD, *(str(params.get(k)) for k in records.WEBUI_KEYS)])


def _payload_only(build: Callable[[Mapping[str, Any], Context], Optional[Record]]) -> Builder:
    return lambda maker, event, payload, ctx: build(payload, ctx)


def _with_event(build: Callable[[str, Mapping[str, Any], Context], Optional[Record]]) -> Builder:
    return lambda maker, event, payload, ctx: build(event, payload, ctx)


CATALOGUE: Tuple[Tracked, ...] = (
    Tracked(
        "pong",
        _("Daily summary with the plugin list (and achievements)"),
        (),
        None,
        ("pong",),
        RANK_HEARTBEAT,
        _same_event,
    ),
    Tracked("startup", _("Server start and shutdown"), (), None, ("startup", "shutdown")),
    Tracked(
        "printer",
        _("Printer connected (firmware name)"),
        (records.CONNECTED, records.FIRMWARE_DATA),
        RecordMaker._printer,
        ("printer_connected",),
    ),
    Tracked(
        "printer_safety_check",
        _("Firmware safety warnings"),
        records.SAFETY_EVENTS,
        _payload_only(records.safety_warning),
        ("printer_safety_warning",),
    ),
    Tracked(
        "printjob",
        _("Print jobs started, done, failed or cancelled"),
        tuple(records.PRINT_EVENTS),
        lambda maker, event, payload, ctx: records.print_job(event, payload, ctx, maker.octoprint_2),
        tuple(records.PRINT_EVENTS.values()),
    ),
    Tracked("commerror", _("Communication errors with the printer"), (records.ERROR,), RecordMaker._commerror, ()),
    Tracked(
        "plugin",
        _("Plugins installed, uninstalled, enabled or disabled"),
        tuple(records.PLUGIN_EVENTS),
        _with_event(records.plugin_change),
        tuple(records.PLUGIN_EVENTS.values()),
    ),
    Tracked(
        "update",
        _("Updates of OctoPrint or plugins"),
        tuple(records.UPDATE_EVENTS),
        _with_event(records.update),
        tuple(records.UPDATE_EVENTS.values()),
    ),
    Tracked(
        "throttled",
        _("Throttling of the system (Raspberry Pi)"),
        (records.THROTTLE_EVENT,),
        _payload_only(records.throttle_change),
        ("system_throttled", "system_unthrottled"),
    ),
    Tracked(
        "achievements",
        _("Achievements unlocked"),
        (records.ACHIEVEMENT_EVENT,),
        _payload_only(records.achievement),
        ("achievement_unlocked",),
    ),
    Tracked(
        "slicing",
        _("Slicing on this device"),
        (records.SLICING_STARTED,),
        _payload_only(records.slicing_started),
        ("slicing_started",),
    ),
    Tracked(WEBUI_LOAD, _("Web interface loaded"), (), None, (WEBUI_LOAD,), RANK_WEBUI, _same_browser),
)
# Ping has no switch: it is how the server counts active instances.
PING = Tracked("", None, (), None, ("ping",), RANK_HEARTBEAT, _same_event)

EVENT_SWITCHES: Tuple[Tuple[str, LazyString], ...] = tuple((row.switch, row.label) for row in CATALOGUE)  # type: ignore[misc]
# The bus events behind each switch: an event in none of these, or behind a switch that is off,
# makes no record, so the plugin dismisses it before building any context.
SWITCH_EVENTS: Dict[str, Tuple[str, ...]] = {row.switch: row.bus for row in CATALOGUE if row.bus}
_BY_BUS: Dict[str, Tracked] = {event: row for row in CATALOGUE for event in row.bus}
_BY_NAME: Dict[str, Tracked] = {name: row for row in (*CATALOGUE, PING) for name in row.names}


def tracked_events(switches: Mapping[str, Any]) -> FrozenSet[str]:
    """The bus events `RecordMaker.from_event` can make a record of under these switches."""
    return frozenset(
        event for switch, events in SWITCH_EVENTS.items() if records.switch_on(switches, switch) for event in events
    )


def traits(record: dict) -> Tuple[Optional[str], int]:
    """(coalesce key, eviction rank) of a record."""
    row = _BY_NAME.get(record.get("event"))  # type: ignore[arg-type]
    if row is None:
        return None, RANK_EVENT
    return (row.coalesce(record) if row.coalesce else None), row.rank
