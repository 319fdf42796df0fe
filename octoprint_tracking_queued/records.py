"""What gets tracked: OctoPrint events in, tracking records out.

Pure mapping: no I/O and no OctoPrint imports, so every rule is a row in a unit test.
The tracking event names and parameters are those of the bundled *Anonymous Usage
Tracking* plugin of the OctoPrint we run on (1.11.8 or 2.0, told by `octoprint_2` where the
payload does not say), with its known mistakes fixed (slicer name, doubled communication
errors) and texts scrubbed of anything private. Which bus event goes to which builder is
catalogue.py's table.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from .texts import scalar, scrub, text

Record = dict  # JSON object: id, event, params, post, created, attempts, last_error

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


def make_record(event: str, params: Mapping[str, Any], ctx: Context, post: bool = False) -> Record:
    clean = {}
    for name, value in params.items():
        value = scalar(name, value)
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
    path = text(payload, "path", raw=True)  # hashed as the bundled plugin hashes it
    if path is None and octoprint_2 and "path" not in payload:
        path = NO_PATH
    if not path:
        raise BadPayload(f"{event} without a file path")
    params: dict[str, Any] = {"origin": text(payload, "origin"), "file": _file_hash(path, ctx.unique_id)}
    if octoprint_2:  # 1.11.8 never sends the connector
        params["printer_connector"] = text(payload, "connector")
    if event != "PrintStarted":
        params["elapsed"] = _elapsed(payload)
    if event == "PrintFailed":
        params["reason"] = text(payload, "reason") or "unknown"
        error = text(payload, "error")
        if error and ctx.on("commerror"):
            params["commerror_text"] = scrub(error, ctx.private_words)
    params.update(_throttle_params(ctx.throttle))
    return make_record(PRINT_EVENTS[event], params, ctx)


def commerror(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("commerror"):
        return None
    reason = text(payload, "reason")
    error = text(payload, "error")
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
        params["printer_connector"] = text(connection, "connector")
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
    return make_record("slicing_started", {"slicer": text(payload, "slicer") or "unknown"}, ctx)


def plugin_change(event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("plugin"):
        return None
    plugin = text(payload, "id")
    if not plugin:
        raise BadPayload(f"{event} without a plugin id")
    return make_record(PLUGIN_EVENTS[event], {"plugin": plugin, "plugin_version": text(payload, "version")}, ctx)


def update(event: str, payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("update"):
        return None
    params = {key: text(payload, key) for key in ("target", "from_version", "to_version")}
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
        "printer_safety_warning_type": text(payload, "warning_type") or "unknown",
        "printer_safety_check_name": text(payload, "check_name") or "unknown",
    }
    return make_record("printer_safety_warning", params, ctx)


def achievement(payload: Mapping[str, Any], ctx: Context) -> Optional[Record]:
    if not ctx.on("achievements"):
        return None
    return make_record("achievement_unlocked", {"achievement": text(payload, "key") or "unknown"}, ctx)


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
    params = {key: text(payload, key) for key in WEBUI_KEYS}
    missing = [key for key, value in params.items() if not value]
    if missing:
        raise BadPayload(f"webui_load without {', '.join(missing)}")
    # Any browser (or script) can post these: scrub them like any other free text.
    return make_record("webui_load", {key: scrub(value, ctx.private_words) for key, value in params.items()}, ctx)
