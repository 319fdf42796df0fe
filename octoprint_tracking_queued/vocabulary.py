"""The words the plugin shows: event switches, worker states, connectivity verdicts and the ping
interval, defined once.

Settings (`config`), the worker and the send policy use the keys; the settings template and the
JS get the labels through `template_vars`.

Labels are lazy (`_` is flask_babel's `lazy_gettext`, a keyword babel extracts by default):
OctoPrint caches template variables across requests and languages, so they are translated
when a page is rendered, in the reader's language, not when they are made.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, NamedTuple

from flask_babel import LazyString, gettext, ngettext
from flask_babel import lazy_gettext as _

from . import catalogue

# ~~ event switches: settings key and label, in the order the settings tab shows them

EVENT_SWITCHES = catalogue.EVENT_SWITCHES

# ~~ worker states, as the worker and the send policy report them in the status

IDLE = "idle"
SENDING = "sending"
BACKOFF = "backoff"
OFFLINE = "offline"
DISABLED = "disabled"
CONFIG_ERROR = "config_error"
LOCKED = "locked"
STOPPED = "stopped"


class StateLabel(NamedTuple):
    # May hold %(reason)s (the status' worker.reason) and, for backoff, %(time)s (of the
    # next attempt): the JS fills them in, as the time is shown in the browser's zone.
    text: LazyString
    css: str


WORKER_STATES: dict[str, StateLabel] = {
    IDLE: StateLabel(_("Idle: nothing to send"), "text-success"),
    SENDING: StateLabel(_("Sending"), "text-success"),
    BACKOFF: StateLabel(_("Backing off until %(time)s (%(reason)s)"), "text-warning"),
    OFFLINE: StateLabel(_("Offline: %(reason)s"), "text-warning"),
    DISABLED: StateLabel(_("Disabled: %(reason)s"), "muted"),
    CONFIG_ERROR: StateLabel(_("Not sending, configuration error: %(reason)s"), "text-error"),
    LOCKED: StateLabel(_("Waiting: %(reason)s"), "muted"),
    STOPPED: StateLabel(_("Stopped"), "text-error"),
}


# ~~ connectivity verdicts, as the worker reports them in the status (worker.connectivity)

VERDICT_ONLINE = "online"
VERDICT_OFFLINE = "offline"  # OctoPrint's check says offline and is believed
VERDICT_REACHABLE = "reachable"  # the check says offline, but a delivery proved it wrong

CONNECTIVITY: dict[str, StateLabel] = {
    VERDICT_ONLINE: StateLabel(_("Online: OctoPrint's connectivity check says so, or is off"), "text-success"),
    VERDICT_OFFLINE: StateLabel(
        _("Offline, as OctoPrint's connectivity check says: one record is tried now and then"), "text-warning"
    ),
    VERDICT_REACHABLE: StateLabel(
        _("OctoPrint's connectivity check says offline, but the tracking server was reached: sending"),
        "text-success",
    ),
}


def _labels_json(labels: Mapping[str, StateLabel]) -> str:
    return json.dumps({key: {"text": str(label.text), "css": label.css} for key, label in labels.items()})


def worker_states_json() -> str:
    """The state labels for the JS, as {"state": {"text": ..., "css": ...}}, translated now."""
    return _labels_json(WORKER_STATES)


def connectivity_json() -> str:
    """The verdict labels for the JS, as {"verdict": {"text": ..., "css": ...}}, translated now."""
    return _labels_json(CONNECTIVITY)


# ~~ the ping interval in words


def interval_text(seconds: int) -> str:
    """How often, in words: "every hour", "every 15 minutes", "every 2 hours 30 minutes"."""
    days, rest = divmod(int(seconds), 24 * 3600)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    counts = (days, hours, minutes, secs)
    if sorted(counts) == [0, 0, 0, 1]:  # once per one unit
        once = (gettext("every day"), gettext("every hour"), gettext("every minute"), gettext("every second"))
        return once[counts.index(1)]
    parts = []
    if days:
        parts.append(ngettext("%(num)d day", "%(num)d days", days))
    if hours:
        parts.append(ngettext("%(num)d hour", "%(num)d hours", hours))
    if minutes:
        parts.append(ngettext("%(num)d minute", "%(num)d minutes", minutes))
    if secs or not parts:
        parts.append(ngettext("%(num)d second", "%(num)d seconds", secs))
    return gettext("every %(duration)s", duration=" ".join(parts))


def ping_text(seconds: int) -> str:
    """The settings tab's line for the ping, which has no switch."""
    return gettext("Ping %(interval)s with the uptime (always on)", interval=interval_text(seconds))


class LazyText:
    """A text made when the template renders it, in the reader's language.

    Unlike flask_babel's LazyString, which says it is HTML already, this is escaped as any
    text: the state labels go into an HTML attribute as JSON, quotes and all.
    """

    def __init__(self, make: Callable[..., str], *args: Any) -> None:
        self._make = make
        self._args = args

    def __str__(self) -> str:
        return self._make(*self._args)


def template_vars(effective: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of the settings template (OctoPrint prefixes them with `plugin_tracking_queued_`)."""
    return {
        "event_switches": EVENT_SWITCHES,
        "worker_states": LazyText(worker_states_json),
        "connectivity": LazyText(connectivity_json),
        "ping_text": LazyText(ping_text, effective["ping"]),
    }
