"""What gets tracked: OctoPrint events in, tracking records out.

Pure mapping: no I/O and no OctoPrint imports, so every rule is a row in a unit test.
The tracking event names and parameters are those of the bundled *Anonymous Usage
Tracking* plugin of the OctoPrint we run on (1.11.8 or 2.0, told by `RecordMaker(octoprint_2)`
where the payload does not say), with its known mistakes fixed (slicer name, doubled
communication errors) and texts scrubbed of anything private.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

Record = dict  # JSON object: id, event, params, post, created, attempts, last_error

# Longest text we send; a firmware that spams kilobytes of error text must not fill the queue.
TEXT_LIMIT = 200
# Lists of plugins/achievements are long by nature.
LIST_LIMIT = 4096
LONG_PARAMS = {"plugins", "achievements"}
# Scrubbing may shorten a text (a long URL becomes "<url>"), so it looks a little further.
SCRUB_LIMIT = 4 * TEXT_LIMIT
# How much of an outside text is read at all: removing invisible characters and scrubbing
# cost time per character, and a firmware can send a megabyte on the event thread.
READ_LIMIT = 4 * SCRUB_LIMIT
# Unicode control (Cc) and format (Cf) characters: bidi overrides and isolates, zero-width
# spaces and joiners, soft hyphens, tags, escape sequences. They can make one text look like
# another in the inspector and on the tracking server, and hide a word from the scrubbers.
HIDDEN_CATEGORIES = ("Cc", "Cf")

# How long a repeated identical communication error counts as the same one
# (OctoPrint 1.11 fires one serial error twice as `Error`).
COMMERROR_WINDOW = 5.0
# How long to wait for FirmwareData after Connected before reporting without it.
FIRMWARE_TIMEOUT = 15.0

PRINT_EVENTS = {
    "PrintStarted": "print_started",
    "PrintDone": "print_done",
    "PrintFailed": "print_failed",
    "PrintCancelled": "print_cancelled",
}
PLUGIN_EVENTS = {
    "plugin_pluginmanager_install_plugin": "install_plugin",
    "plugin_pluginmanager_uninstall_plugin": "uninstall_plugin",
    "plugin_pluginmanager_enable_plugin": "enable_plugin",
    "plugin_pluginmanager_disable_plugin": "disable_plugin",
}
UPDATE_EVENTS = {
    "plugin_softwareupdate_update_succeeded": "update_successful",
    "plugin_softwareupdate_update_failed": "update_failed",
}
THROTTLE_EVENT = "plugin_pi_support_throttle_state"
# The old Printer Safety Check plugin and its successor, Firmware Check.
SAFETY_EVENTS = ("plugin_printer_safety_check_warning", "plugin_firmware_check_warning")
ACHIEVEMENT_EVENT = "plugin_achievements_achievement_unlocked"
CONNECTED = "Connected"
FIRMWARE_DATA = "FirmwareData"
ERROR = "Error"
SLICING_STARTED = "SlicingStarted"

# The bus events behind each switch: an event in none of these, or behind a switch that is
# off, makes no record, so the plugin dismisses it before building any context.
SWITCH_EVENTS: dict[str, tuple[str, ...]] = {
    "printjob": tuple(PRINT_EVENTS),
    "commerror": (ERROR,),
    "printer": (CONNECTED, FIRMWARE_DATA),
    "slicing": (SLICING_STARTED,),
    "plugin": tuple(PLUGIN_EVENTS),
    "update": tuple(UPDATE_EVENTS),
    "throttled": (THROTTLE_EVENT,),
    "printer_safety_check": SAFETY_EVENTS,
    "achievements": (ACHIEVEMENT_EVENT,),
}

_SCRUBBERS = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    # IPv6: needs "::" or four colons, so times like 12:30:45 stay.
    (
        re.compile(
            r"(?<![\w:])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{0,4}:){4})[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])"
        ),
        "<ip>",
    ),
    (re.compile(r"(?<![\w.:/<])(?:[A-Za-z]:\\|~?/)[A-Za-z_.~-][^\s'\"]*"), "<path>"),
    # API keys and other secrets: long runs of letters and digits mixed (an error text
    # that quotes a request or a config line can carry one).
    (re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}(?![\w-])"), "<token>"),
)
_SIMPLE_PORT = re.compile(r"VIRTUAL|AUTO|/dev/tty[A-Za-z]+\d*|/dev/rfcomm\d+|COM\d+")


class BadPayload(ValueError):
    """The event's payload lacks what the record needs; the event is skipped."""


@dataclass
class Context:
    """What a record needs beyond the event itself."""

    unique_id: str
    switches: Mapping[str, Any]
    now: float
    throttle: Optional[Mapping[str, Any]] = None
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    # Words no free text may carry: the instance's user names, which no pattern finds.
    private_words: tuple[str, ...] = ()

    def on(self, switch: str) -> bool:
        return switch_on(self.switches, switch)


def switch_on(switches: Mapping[str, Any], switch: str) -> bool:
    """A switch missing from the settings counts as on, like its default."""
    return bool(switches.get(switch, True))


def tracked_events(switches: Mapping[str, Any]) -> frozenset[str]:
    """The bus events `RecordMaker.from_event` can make a record of under these switches."""
    return frozenset(
        event for switch, events in SWITCH_EVENTS.items() if switch_on(switches, switch) for event in events
    )


def visible(text: str) -> str:
    """`text` without control and format characters; a line break or tab becomes a space,
    so the words on either side stay apart."""
    if text.isprintable():  # none of them: the common case costs one pass in C
        return text
    return "".join(
        (" " if char.isspace() else "") if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text
    )


def scrub(text: str, private_words: Iterable[str] = ()) -> str:
    """Removes invisible characters, URLs, e-mail and IP addresses, file paths, tokens and `private_words`."""
    # The patterns backtrack quadratically on long runs of word characters (1 MB of
    # firmware noise took most of an hour on the event thread); only what can still
    # end up in the TEXT_LIMIT characters we send is scrubbed. Invisible characters go
    # first: "alice\u200b@example.com" must not slip past the e-mail pattern.
    text = visible(text[:READ_LIMIT])[:SCRUB_LIMIT]
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    for word in private_words:
        if len(word) >= 3:
            text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "<user>", text, flags=re.IGNORECASE)
    return text


def _scalar(name: str, value: Any) -> Any:
    """A JSON- and URL-safe parameter value, or None to leave the parameter out."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    limit = LIST_LIMIT if name in LONG_PARAMS else TEXT_LIMIT
    # Lone surrogates (a non-UTF-8 file or port name decoded by the OS) cannot be URL-encoded;
    # such a record would fail to send forever and hold up the queue behind it. Every text
    # parameter, whichever way it came in, loses its invisible characters.
    value = visible(value[: 4 * limit].encode("utf-8", "replace").decode("utf-8"))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def make_record(event: str, params: Mapping[str, Any], ctx: Context, post: bool = False) -> Record:
    clean = {}
    for name, value in params.items():
        value = _scalar(name, value)
        if value is not None:
            clean[name] = value
    return {
        "id": ctx.new_id(),
        "event": event,
        "params": clean,
        "post": post,
        "created": ctx.now,
        "attempts": 0,
        "last_error": None,
    }


def _text(payload: Mapping[str, Any], key: str, raw: bool = False) -> Optional[str]:
    """A text from outside, without invisible characters (so "unknown" and "missing" apply to
    a text of nothing else); `raw`: as given, for what is hashed rather than sent."""
    value = payload.get(key)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    return value if raw else visible(value[:READ_LIMIT])


def _elapsed(payload: Mapping[str, Any]) -> Optional[int]:
    try:
        value = int(float(payload.get("time") or 0))
    except (TypeError, ValueError, OverflowError):
        return None
    return value if value > 0 else None


def _throttle_params(throttle: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Throttle state attached to print and error records, only when there was an issue.

    The state comes from a checked event, pi_support's helper or vcgencmd; one with a value
    of the wrong type (a mask that is text) is attached to nothing."""
    if not isinstance(throttle, Mapping):
        return {}
    mask, now, past = (throttle.get(key) for key in ("raw_value", "current_issue", "past_issue"))
    if not (_is_whole(mask) and isinstance(now, bool) and isinstance(past, bool)):
        return {}
    if not (now or past):
        return {}
    return {"throttled_now": now, "throttled_past": past, "throttled_mask": mask}


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _file_hash(path: str, unique_id: str) -> str:
    # Same hash as the bundled plugin, so a server can follow one file across its events
    # without learning its name.
    sha = hashlib.sha1()
    sha.update(path.encode("utf-8", errors="replace"))
    sha.update(unique_id.encode("utf-8"))
    return sha.hexdigest()


def _port(port: Any) -> Optional[str]:
    """The serial port, unless its name could identify the device (by-id paths carry serials)."""
    if not isinstance(port, str) or not port:
        return None
    return port if _SIMPLE_PORT.fullmatch(port) else "other"


# OctoPrint 2.0's bundled plugin hashes this when a print event has no path; 1.11.8's sends nothing.
NO_PATH = "n/a"


def print_job(event: str, payload: Mapping[str, Any], ctx: Context, octoprint_2: bool = False) -> Optional[Record]:
    if not ctx.on("printjob"):
        return None
    path = _text(payload, "path", raw=True)  # hashed as the bundled plugin hashes it
    if path is None and octoprint_2 and "path" not in payload:
        path = NO_PATH
    if not path:
        raise BadPayload(f"{event} without a file path")
    params: dict[str, Any] = {"origin": _text(payload, "origin"), "file": _file_hash(path, ctx.unique_id)}
    if octoprint_2:  # 1.11.8 never sends the connector
        params["printer_connector"] = _text(payload, "connector")
    if event != "PrintStarted":
        params["elapsed"] = _elapsed(payload)
    if event == "PrintFailed":
        params["reason"] = _text(payload, "reason") or "unknown"
        error = _text(payload, "error")
        if error and ctx.on("commerror"):
            params["commerror_text"] = scrub(error, ctx.private_words)
    params.update(_throttle_params(ctx.throttle))
    return make_record(PRINT_EVENTS[event], params, ctx)


def commerror(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("commerror"):
        return None
    reason = _text(payload, "reason")
    error = _text(payload, "error")
    if not reason or error is None:
        raise BadPayload("Error without reason or error text")
    reason = re.sub(r"[^a-z0-9_]", "_", reason.lower())[:40]
    params = {"commerror_text": scrub(error, ctx.private_words)}
    params.update(_throttle_params(ctx.throttle))
    return make_record(f"commerror_{reason}", params, ctx)


def printer_connected(
    connection: Mapping[str, Any], firmware_name: Optional[str], ctx: Context, octoprint_2: bool = False
) -> Optional[Record]:
    if not ctx.on("printer"):
        return None
    params: dict[str, Any] = {"firmware_name": firmware_name}
    if octoprint_2:
        # 2.0's bundled plugin sends the connector, never the port or baud rate ("Don't send
        # port and baudrate"), though its serial connector still puts them in the payload.
        params["printer_connector"] = _text(connection, "connector")
        return make_record("printer_connected", params, ctx)
    port = _port(connection.get("port"))
    if port:
        params["printer_port"] = port
        baudrate = connection.get("baudrate")
        params["printer_baudrate"] = baudrate if isinstance(baudrate, int) else None
    return make_record("printer_connected", params, ctx)


def slicing_started(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("slicing"):
        return None
    return make_record("slicing_started", {"slicer": _text(payload, "slicer") or "unknown"}, ctx)


def plugin_change(event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("plugin"):
        return None
    plugin = _text(payload, "id")
    if not plugin:
        raise BadPayload(f"{event} without a plugin id")
    return make_record(PLUGIN_EVENTS[event], {"plugin": plugin, "plugin_version": _text(payload, "version")}, ctx)


def update(event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("update"):
        return None
    params = {key: _text(payload, key) for key in ("target", "from_version", "to_version")}
    return make_record(UPDATE_EVENTS[event], params, ctx)


THROTTLE_FLAGS = (
    "current_issue",
    "past_issue",
    "current_undervoltage",
    "past_undervoltage",
    "current_overheat",
    "past_overheat",
)


def throttle_state(payload: Any) -> dict[str, Any]:
    """pi_support's throttle state, checked as it sends it: the bit mask a whole number (-1
    before its first reading), the six flags true or false. BadPayload otherwise: the
    logstash of the tracking server turns `throttled_mask` into an integer."""
    if not isinstance(payload, Mapping):
        raise BadPayload(f"throttle state is a {type(payload).__name__}, not an object")
    missing = [key for key in ("raw_value", *THROTTLE_FLAGS) if key not in payload]
    if missing:
        raise BadPayload(f"throttle state without {', '.join(missing)}")
    if not _is_whole(payload["raw_value"]):
        raise BadPayload(f"throttle state with a raw_value of type {type(payload['raw_value']).__name__}")
    wrong = [key for key in THROTTLE_FLAGS if not isinstance(payload[key], bool)]
    if wrong:
        raise BadPayload(f"throttle state with {', '.join(wrong)} not true or false")
    return {"raw_value": payload["raw_value"], **{key: payload[key] for key in THROTTLE_FLAGS}}


def throttle_change(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("throttled"):
        return None
    state = throttle_state(payload)
    params = {
        "throttled_now": state["current_issue"],
        "throttled_past": state["past_issue"],
        "throttled_mask": state["raw_value"],
        "throttled_voltage_now": state["current_undervoltage"],
        "throttled_voltage_past": state["past_undervoltage"],
        "throttled_overheat_now": state["current_overheat"],
        "throttled_overheat_past": state["past_overheat"],
    }
    event = "system_throttled" if state["current_issue"] else "system_unthrottled"
    return make_record(event, params, ctx)


def safety_warning(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("printer_safety_check"):
        return None
    params = {
        "printer_safety_warning_type": _text(payload, "warning_type") or "unknown",
        "printer_safety_check_name": _text(payload, "check_name") or "unknown",
    }
    return make_record("printer_safety_warning", params, ctx)


def achievement(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("achievements"):
        return None
    return make_record("achievement_unlocked", {"achievement": _text(payload, "key") or "unknown"}, ctx)


def startup(environment: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    return make_record("startup", environment, ctx) if ctx.on("startup") else None


def shutdown(ctx: Context) -> Optional[Record]:
    # The bundled plugin ties shutdown to the startup switch.
    return make_record("shutdown", {}, ctx) if ctx.on("startup") else None


def ping(uptime: float, printer_state: Optional[str], ctx: Context) -> Record:
    # Ping has no switch: it is how the server counts active instances.
    return make_record("ping", {"octoprint_uptime": int(uptime), "printer_state": printer_state}, ctx)


def pong(
    environment: Mapping[str, Any],
    plugins: list[tuple[str, Optional[str]]],
    achievements: Optional[list[str]],
    ctx: Context,
) -> Optional[Record]:
    """The daily environment report; `plugins` are the third-party (key, version) pairs."""
    if not ctx.on("pong"):
        return None
    params = dict(environment)
    params["plugins"] = ",".join(f"{key.lower()}:{(version or '?').lower()}" for key, version in plugins)
    if achievements is not None and ctx.on("achievements"):
        params["achievements"] = ",".join(key.lower() for key in achievements)
    return make_record("pong", params, ctx, post=True)


WEBUI_KEYS = ("browser_name", "browser_version", "os_name", "os_version")


def webui_load(payload: Any, ctx: Context) -> Optional[Record]:
    if not ctx.on("webui_load"):
        return None
    if not isinstance(payload, Mapping):
        raise BadPayload("webui_load payload must be an object")
    params = {key: _text(payload, key) for key in WEBUI_KEYS}
    missing = [key for key, value in params.items() if not value]
    if missing:
        raise BadPayload(f"webui_load without {', '.join(missing)}")
    # Any browser (or script) can post these: scrub them like any other free text.
    return make_record("webui_load", {key: scrub(value, ctx.private_words) for key, value in params.items()}, ctx)


class RecordMaker:
    """Maps the event bus onto records, holding the little state some events need.

    State: the last printer connection (for printer_connected) and the last
    communication error (to record OctoPrint's doubled `Error` once). `octoprint_2`:
    follow 2.0's bundled plugin where it differs from 1.11.8's and the payload cannot
    tell (a 1.11-style `Connected` fired by a plugin on 2.0 must not send the port either).
    """

    def __init__(self, octoprint_2: bool = False) -> None:
        self.octoprint_2 = octoprint_2
        self.connection: Optional[dict[str, Any]] = None
        self.awaiting_firmware = False
        self._last_error: Optional[tuple[str, str, float]] = None

    def from_event(self, event: str, payload: Any, ctx: Context) -> Optional[Record]:
        """The record for one bus event, None when it is not tracked; BadPayload when unusable."""
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise BadPayload(f"{event} payload is a {type(payload).__name__}, not an object")
        if event in PRINT_EVENTS:
            return print_job(event, payload, ctx, self.octoprint_2)
        if event == ERROR:
            return self._commerror(payload, ctx)
        if event == CONNECTED:
            self.connection = {k: payload.get(k) for k in ("port", "baudrate", "connector")}
            self.awaiting_firmware = True
            return None
        if event == FIRMWARE_DATA:
            if not self.awaiting_firmware:
                return None
            self.awaiting_firmware = False
            return printer_connected(self.connection or {}, _text(payload, "name") or "unknown", ctx, self.octoprint_2)
        if event == SLICING_STARTED:
            return slicing_started(payload, ctx)
        if event in PLUGIN_EVENTS:
            return plugin_change(event, payload, ctx)
        if event in UPDATE_EVENTS:
            return update(event, payload, ctx)
        if event == THROTTLE_EVENT:
            return throttle_change(payload, ctx)
        if event in SAFETY_EVENTS:
            return safety_warning(payload, ctx)
        if event == ACHIEVEMENT_EVENT:
            return achievement(payload, ctx)
        return None

    def firmware_timeout(self, ctx: Context) -> Optional[Record]:
        """Called FIRMWARE_TIMEOUT seconds after Connected: report the printer without firmware."""
        if not self.awaiting_firmware:
            return None
        self.awaiting_firmware = False
        return printer_connected(self.connection or {}, None, ctx, self.octoprint_2)

    def _commerror(self, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
        record = commerror(payload, ctx)
        if record is None:
            return None
        key = (record["event"], record["params"].get("commerror_text", ""))
        last = self._last_error
        # The window runs from the last recorded error, so a spamming firmware still
        # yields one record every few seconds rather than none.
        if last and (last[0], last[1]) == key and 0 <= ctx.now - last[2] < COMMERROR_WINDOW:
            return None
        self._last_error = (key[0], key[1], ctx.now)
        return record
