"""What each tracked record is worth to the queue: its coalescing key and its eviction rank."""

from __future__ import annotations

from typing import Optional, Tuple

from .records import WEBUI_KEYS

# What a record is worth when the queue is full: a page load or a heartbeat says little that
# the next one will not say again; startup, errors, throttling and prints happen once.
RANK_WEBUI, RANK_HEARTBEAT, RANK_EVENT = 0, 1, 2
HEARTBEATS = ("ping", "pong")
WEBUI_LOAD = "webui_load"


def traits(record: dict) -> Tuple[Optional[str], int]:
    """(coalesce key, eviction rank) of a record."""
    event = record.get("event")
    if event in HEARTBEATS:
        return event, RANK_HEARTBEAT
    if event == WEBUI_LOAD:
        params = record.get("params") or {}
        # The same browser and OS: a newer load says all an older one did.
        key = "\x1f".join(str(params.get(k)) for k in WEBUI_KEYS)
        return f"{WEBUI_LOAD}\x1f{key}", RANK_WEBUI
    return None, RANK_EVENT
