"""What the status says, in one place: the body of `GET /api/plugin/tracking_queued`, the
worker's part of it, and the scope words of the queue's pages. The API, the command line, the
wizard and the settings tab all read this body; `unsent` is summed here only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from .store import DESTINATIONS, SCOPES

if TYPE_CHECKING:
    from typing import TypedDict  # novermin (type checkers only)
else:
    # typing.TypedDict is 3.8+ (OctoPi 0.18 has 3.7); at run time a TypedDict is a dict anyway.
    TypedDict = dict

PAGE_SCOPES = ("pending", "failed")  # what a page can show; SCOPES also has "all" for clear
__all__ = ["DESTINATIONS", "PAGE_SCOPES", "SCOPES", "StatusBody", "WorkerStatus", "status_body"]


class WorkerStatus(TypedDict):
    state: str  # idle, sending, backoff, offline, disabled, config_error, locked, stopped
    reason: Optional[str]  # why, in words: the blocker's reason or the error being backed off from
    next_attempt: Optional[float]  # unix time of the next try while backing off
    failures: int  # failed attempts in a row since the last delivery
    last_error: Optional[str]  # e.g. "HTTP 503", "timeout"
    last_error_at: Optional[float]  # unix time
    last_success_at: Optional[float]  # unix time of the last delivery
    connectivity: str  # online, offline (OctoPrint's check) or reachable (a send proved the check wrong)
    alive: bool  # the worker thread runs
    last_partial: Optional[str]  # the last partialSuccess: how many the collector dropped, and why


class StatusBody(TypedDict):
    """`GET /api/plugin/tracking_queued`: the queue's counts and the worker's state (README: API)."""

    pending: int  # records waiting to be sent
    in_flight: int  # records being sent now
    failed: int  # records the server refused for good (dead letters), kept until retried or cleared
    delivered: int  # since install
    dropped_cap: int  # removed to keep under queue.max_records, since install
    dropped_age: int  # removed for being older than queue.max_age_days, since install
    undecodable: int  # rows that could not be read back (kept as failed), since install
    cleared: int  # removed by Clear or by opting out, since install
    superseded: int  # pending ping, pong and webui_load records replaced by a newer one, since install
    by_event: Dict[str, Dict[str, int]]  # dropped_cap, dropped_age, superseded: counts per tracking event
    store_failed: int  # records that could not be stored (disk full, ...), since install
    partial_rejected: int  # records a collector took but said it dropped (OTLP partialSuccess), since install
    oldest_pending: Optional[float]  # unix time the oldest pending (or in flight) record's event happened
    oldest_pending_age: Optional[float]  # its age in seconds by the clock-safe observed clock
    oldest_pending_certain: bool  # false when its time comes from a wall clock that may have been wrong
    clock_confirmed: bool  # this boot's wall clock is known good (synchronised, or seen to be stepped)
    store_error: Optional[str]  # why records cannot be stored right now
    salvaged: int  # records copied out of a damaged queue file into the new one, since install
    unreadable: int  # records a damaged queue file held that could not be read, since install
    recovered: Optional[str]  # one sentence: why the queue file was replaced, what was saved, where it is kept
    max_records: int  # queue.max_records in effect
    max_age_days: int  # queue.max_age_days in effect
    disk_bytes: int  # size of the queue file and its write-ahead log
    worker: WorkerStatus
    enabled: Optional[bool]  # the user's decision; null until made
    config_errors: List[str]  # values in config.yaml that are not used, and why
    settings_errors: List[str]  # values refused by the last settings save, and why
    server_is_default: bool  # records go to the public tracking server
    bundled_enabled: bool  # the bundled tracking plugin is on too (counts the instance twice)
    unsent: int  # pending + in_flight + failed: what has not left this machine
    destinations: Dict[str, Any]  # per destination (tracking, collector): enabled, counts, worker


def status_body(
    queue_stats: Mapping[str, Any],
    worker: Mapping[str, Any],
    *,
    enabled: Optional[bool],
    config_errors: List[str],
    settings_errors: List[str],
    server_is_default: bool,
    bundled_enabled: bool,
    destinations: Optional[Dict[str, Any]] = None,
) -> StatusBody:
    body: Dict[str, Any] = dict(queue_stats)
    body.update(
        worker=dict(worker),
        enabled=enabled,
        config_errors=config_errors,
        settings_errors=settings_errors,
        server_is_default=server_is_default,
        bundled_enabled=bundled_enabled,
        unsent=body["pending"] + body["in_flight"] + body["failed"],
        destinations=destinations or {},
    )
    return body  # type: ignore[return-value]
