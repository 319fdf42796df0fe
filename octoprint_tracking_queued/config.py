"""Settings defaults and validation: pure, so it is shared by the plugin, the CLI and tests."""

from __future__ import annotations

import copy
import re
import string
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Tuple
from urllib.parse import urlsplit

from . import vocabulary

DEFAULT_SERVER = "https://tracking.octoprint.org/track/{id}/{event}/"

# The settings keys of the event switches; their labels live next to them in `vocabulary`.
EVENT_SWITCHES = tuple(key for key, _label in vocabulary.EVENT_SWITCHES)

# Upper bounds keep a hostile or mistyped value from turning into a busy loop or a full card.
MAX_PING = 7 * 24 * 3600
MAX_RECORDS = 1_000_000
MAX_AGE_DAYS = 3650
MAX_RETRY_DELAY = 24 * 3600.0


class SettingError(ValueError):
    """A setting value that must not be used; the message names the key and why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"plugins.tracking_queued.{key}: {reason}")
        self.key = key
        self.reason = reason


def defaults() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def _int_in(key: str, value: Any, low: int, high: int, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SettingError(key, f"must be a whole number, got {type(value).__name__}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else value
    except ValueError:
        raise SettingError(key, f"must be a whole number, got {value!r}") from None
    if isinstance(number, float):
        if not number.is_integer():
            raise SettingError(key, f"must be a whole number, got {value!r}")
        number = int(number)
    if number == 0 and allow_zero:
        return 0
    if not low <= number <= high:
        raise SettingError(key, f"must be between {low} and {high}, got {number}")
    return number


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SettingError(key, f"must be a number of seconds, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise SettingError(key, f"must be a number of seconds, got {value!r}") from None
    if not 0.01 <= number <= MAX_RETRY_DELAY:  # also rejects nan and inf
        raise SettingError(key, f"must be between 0.01 and {int(MAX_RETRY_DELAY)} seconds")
    return number


def validate_server(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingError("server", "must be an http(s) URL template")
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingError("server", "must be an http:// or https:// URL")
    if "{id}" not in value or "{event}" not in value:
        raise SettingError("server", "must contain both {id} and {event}")
    # Parsed, never formatted: "{id:>999999999}" would allocate a gigabyte and
    # "{id.__class__}" reaches into objects; only the two bare fields are allowed.
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(value)
            if name is not None
        ]
    except ValueError:
        fields = [None]
    if any(field not in (("id", "", None), ("event", "", None)) for field in fields):
        raise SettingError("server", "may contain no placeholders but {id} and {event}")
    return value


# The canonical form of a UUID, as OctoPrint's bundled plugin generates it (str(uuid.uuid4())).
# nginx on tracking.octoprint.org answers 204 to any lowercase hex with dashes, but its
# logstash counts a request only when the grok `%{UUID}` finds 8-4-4-4-12 hex digits
# between `/track/` and the next `/`: any other id is stored there without instance or event.
_UNIQUE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def validate_unique_id(value: Any) -> str:
    """The instance id if it is a canonical lowercase UUID, exactly as given (no trimming:
    the id in config.yaml is the one that is sent)."""
    if not isinstance(value, str) or not _UNIQUE_ID.fullmatch(value):
        raise SettingError("unique_id", "must be a UUID in canonical form (8-4-4-4-12 lowercase hexadecimal digits)")
    return value


def validate_endpoint(value: Any) -> str:
    """The collector's OTLP/HTTP base URL ("" is off); records go to `<endpoint>/v1/logs`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SettingError("collector.endpoint", "must be an http(s) URL or empty")
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("collector.endpoint", "must be an http:// or https:// URL, e.g. http://collector.local:4318")
    if parts.username or parts.password:
        # A URL is logged and shown; a secret belongs in collector.headers, which never is.
        raise SettingError("collector.endpoint", "must not contain credentials; put a token in collector.headers")
    if parts.query or parts.fragment:
        raise SettingError("collector.endpoint", "must not have a query or fragment")
    if value.endswith("/v1/logs"):
        raise SettingError("collector.endpoint", "is the base URL: /v1/logs is added to it")
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def validate_headers(value: Any) -> Dict[str, str]:
    """Extra request headers (an auth token). The message never repeats a value: it is a secret."""
    key = "collector.headers"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError(key, "must be a mapping of header names to texts")
    clean = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise SettingError(key, f"{name!r} is not a header name")
        if name.lower() in ("content-type", "content-encoding", "content-length", "host"):
            raise SettingError(key, f"{name} is set by the plugin")
        if not isinstance(text, str) or any(c in text for c in "\r\n\0"):
            raise SettingError(key, f"the value of {name} must be one line of text")
        clean[name] = text
    return clean


def validate_resource(value: Any) -> Dict[str, Any]:
    """Extra OTLP resource attributes, e.g. `printer.name: "MK3S #7"`: texts, numbers, booleans."""
    key = "collector.resource"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError(key, "must be a mapping of attribute names to values")
    clean = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name.strip():
            raise SettingError(key, f"{name!r} is not an attribute name")
        if not isinstance(item, (str, int, float, bool)) or item != item:
            raise SettingError(key, f"{name}: must be a text, a number or true/false")
        clean[name] = item
    return clean


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise SettingError(key, f"must be true or false, got {value!r}")


class Setting(NamedTuple):
    """One setting: its path under plugins.tracking_queued, its default, its validator (value ->
    clean value, or SettingError), who may change it through OctoPrint's settings API (OctoPrint's
    restricted-paths levels: "admin", or "never" for config.yaml only), and whether a save that
    changes it needs a fresh login (OctoPrint 2.0)."""

    path: Tuple[str, ...]
    default: Any
    validate: Callable[[Any], Any]
    restricted: str = "admin"
    reauth: bool = False


# Like the bundled plugin of 2.0 (1.11.8's left `pong` open): only config.yaml may change where
# data goes and how often. Where the data goes also wants a fresh login (OctoPrint 2.0's docs
# recommend it for a URL a plugin sends data to); "never" refuses it anyway, this is a second lock.
SETTINGS: Tuple[Setting, ...] = (
    Setting(("enabled",), None, lambda v: None if v is None else _bool("enabled", v)),
    Setting(("unique_id",), None, validate_unique_id),
    Setting(("server",), DEFAULT_SERVER, validate_server, "never", reauth=True),
    Setting(("ping",), 15 * 60, lambda v: _int_in("ping", v, 60, MAX_PING), "never"),
    Setting(("pong",), 24 * 60 * 60, lambda v: _int_in("pong", v, 60, MAX_PING, allow_zero=True), "never"),
    *(Setting(("events", name), True, lambda v, _n=name: _bool(f"events.{_n}", v)) for name in EVENT_SWITCHES),
    Setting(("queue", "max_records"), 10000, lambda v: _int_in("queue.max_records", v, 10, MAX_RECORDS)),
    Setting(("queue", "max_age_days"), 30, lambda v: _int_in("queue.max_age_days", v, 1, MAX_AGE_DAYS)),
    Setting(("retry", "initial_delay"), 10.0, lambda v: _seconds("retry.initial_delay", v)),
    Setting(("retry", "max_delay"), 15 * 60.0, lambda v: _seconds("retry.max_delay", v)),
    # A print farm's own OpenTelemetry collector: where data goes, so config.yaml only, as `server`.
    Setting(("collector", "endpoint"), "", validate_endpoint, "never", reauth=True),
    Setting(("collector", "headers"), {}, validate_headers, "never", reauth=True),
    Setting(("collector", "resource"), {}, validate_resource, "never"),
)


def _nested(pairs: Iterable[Tuple[Tuple[str, ...], Any]]) -> Dict[str, Any]:
    tree: Dict[str, Any] = {}
    for path, value in pairs:
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _restricted(level: str) -> List[List[str]]:
    # OctoPrint restricts whole top-level keys here, as the bundled plugins do.
    return [[top] for top in dict.fromkeys(s.path[0] for s in SETTINGS if s.restricted == level)]


DEFAULTS: Dict[str, Any] = _nested((s.path, s.default) for s in SETTINGS)
RESTRICTED_PATHS = {level: _restricted(level) for level in ("admin", "never")}
REAUTH_PATHS = _nested((s.path, True) for s in SETTINGS if s.reauth)
_VALIDATORS = {s.path: s.validate for s in SETTINGS}


def _flatten(data: Mapping[str, Any], prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    leaves = []
    for key, value in data.items():
        path = prefix + (key,)
        if isinstance(value, Mapping) and path not in _VALIDATORS:
            leaves.extend(_flatten(value, path))
        else:
            leaves.append((path, value))
    return leaves


def clean_update(data: Any, ignore_unknown: bool = False, from_api: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Split a settings update into the values that may be stored and the reasons for the rest.

    Unknown keys are dropped too, so a typo never lands in config.yaml.
    """
    if not isinstance(data, Mapping):
        return {}, ["settings must be an object"]
    clean: dict[str, Any] = {}
    errors: list[str] = []
    for path, value in _flatten(data):
        if path == ("unique_id",) and value is None:
            continue  # the UI sends null before the id exists: no change
        if from_api and list(path[:1]) in RESTRICTED_PATHS["never"]:
            errors.append(f"plugins.tracking_queued.{path[0]}: can only be changed in config.yaml")
            continue
        validator = _VALIDATORS.get(path)
        if validator is None:
            if ignore_unknown:
                continue
            errors.append(f"plugins.tracking_queued.{'.'.join(map(str, path))}: unknown setting")
            continue
        try:
            cleaned = validator(value)
        except SettingError as error:
            errors.append(str(error))
            continue
        node = clean
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = cleaned
    return clean, errors


def resolve(settings: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The settings to run with: every bad value replaced by its default, and why.

    For config.yaml, which OctoPrint loads without asking us: a bad value there must
    never be used, and the plugin reports a configuration error naming it.
    """
    resolved = defaults()
    raw = {k: v for k, v in settings.items() if k != "unique_id" or v}
    clean, errors = clean_update(raw, ignore_unknown=True)
    for key, value in clean.items():
        if isinstance(value, dict):
            resolved[key].update(value)
        else:
            resolved[key] = value
    resolved["unique_id"] = clean.get("unique_id")
    retry = resolved["retry"]
    if retry["initial_delay"] > retry["max_delay"]:
        errors.append("plugins.tracking_queued.retry.initial_delay: must not exceed retry.max_delay")
        retry.update(DEFAULTS["retry"])
    return resolved, errors
