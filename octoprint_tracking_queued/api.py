"""The plugin's HTTP API as plain functions: parse, check the permission, run the command.

Each returns `(HTTP status, JSON body)`; `__init__.py` turns that into Flask's response,
so unit tests call these without a server. Everything but `track` needs the
*Manage tracking queue* permission, checked in one place: `needs_manage`.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Tuple

from flask_babel import gettext

from . import records
from .status import DESTINATIONS, PAGE_SCOPES, SCOPES

if TYPE_CHECKING:
    from .runtime import Runtime

Answer = Tuple[int, Dict[str, Any]]  # evaluated at import: no tuple[...] before 3.9
Handler = Callable[["Runtime", Mapping[str, Any], Callable[[], bool]], Answer]

MAX_PAGE = 200
# What OctoPrint checks before calling us: command name -> required parameters.
COMMAND_PARAMETERS = {"track": ["event"], "flush": [], "retry_failed": [], "clear": ["scope"]}


def error(status: int, message: str) -> Answer:
    return status, {"error": message}


def destination(data: Mapping[str, Any]) -> Any:
    """The destination a request is about (`dest`, the public server's by default), or None."""
    dest = data.get("dest") or DESTINATIONS[0]
    return dest if isinstance(dest, str) and dest in DESTINATIONS else None


def needs_manage(refusal: Callable[[], str]) -> Callable[[Handler], Handler]:
    """The permission check: the handler runs only for a caller allowed to manage the queue."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(runtime: Runtime, data: Mapping[str, Any], can_manage: Callable[[], bool]) -> Answer:
            if not can_manage():
                return error(403, refusal())
            return handler(runtime, data, can_manage)

        return checked

    return decorate


@needs_manage(lambda: gettext("You are not allowed to see the tracking queue."))
def get(runtime: Runtime, query: Mapping[str, Any], can_manage: Callable[[], bool]) -> Answer:
    """`GET`: the status, or with `records=pending|failed&offset=0&limit=50` a page of records."""
    scope = query.get("records")
    if scope is None:
        return 200, dict(runtime.status())
    if scope not in PAGE_SCOPES:
        return error(400, gettext("records must be pending or failed"))
    dest = destination(query)
    if dest is None:
        return error(400, gettext("dest must be tracking or collector"))
    try:
        offset = int(query.get("offset", 0))
        limit = int(query.get("limit", 50))
    except (TypeError, ValueError):
        return error(400, gettext("offset and limit must be whole numbers"))
    try:  # keyset paging: as fast at the end of a long queue as at its start
        keys = {name: int(query[name]) for name in ("after", "before") if query.get(name) not in (None, "")}
    except (TypeError, ValueError):
        return error(400, gettext("after and before must be record numbers (rowid)"))
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        return error(400, gettext("offset must be 0 or more and limit between 1 and %(max)d", max=MAX_PAGE))
    if query.get("last") not in (None, "", "0", "false"):
        keys["last"] = True
    if len(keys) > 1 or (keys and offset):
        return error(400, gettext("use one of offset, after, before and last"))
    page, total = runtime.page(scope, offset, limit, dest=dest, **keys)
    return 200, {"records": page, "total": total, "offset": offset, "limit": limit}


def command(
    runtime: Runtime,
    name: str,
    data: Mapping[str, Any],
    can_manage: Callable[[], bool],
    caller: tuple[str, str] = ("", ""),
) -> Answer:
    """`POST {"command": name, ...}`; `caller` is (user id, session id), for the rate limit of `track`."""
    if name == "track":
        return _track(runtime, data, caller)
    handler = _COMMANDS.get(name)
    if handler is None:
        return error(400, gettext("Unknown command"))
    return handler(runtime, data, can_manage)


def _track(runtime: Runtime, data: Mapping[str, Any], caller: tuple[str, str]) -> Answer:
    # Any logged-in user: the web UI reports its own load, at most once a minute.
    if data.get("event") != "webui_load":
        return error(400, gettext("Only webui_load can be tracked through the API"))
    try:
        queued, wait = runtime.track_webui_load(data.get("payload"), caller)
    except records.BadPayload as bad:
        return error(400, gettext("The payload is not usable: %(error)s", error=str(bad)))
    if wait:
        seconds = math.ceil(wait)
        body = error(
            429, gettext("This web interface was reported loaded already; again in %(seconds)d s.", seconds=seconds)
        )[1]
        return 429, {**body, "queued": False, "retry_after": seconds}
    return 200, {"queued": queued}


def _not_allowed_to_manage() -> str:
    return gettext("You are not allowed to manage the tracking queue.")


@needs_manage(_not_allowed_to_manage)
def _flush(runtime: Runtime, data: Mapping[str, Any], can_manage: Callable[[], bool]) -> Answer:
    dest = destination(data)
    if dest is None:
        return error(400, gettext("dest must be tracking or collector"))
    refused = runtime.flush(dest)
    if refused:
        return error(409, refused)
    return 200, {"flushing": True}


@needs_manage(_not_allowed_to_manage)
def _retry_failed(runtime: Runtime, data: Mapping[str, Any], can_manage: Callable[[], bool]) -> Answer:
    dest = destination(data)
    if dest is None:
        return error(400, gettext("dest must be tracking or collector"))
    return 200, {"requeued": runtime.retry_failed(dest)}


@needs_manage(_not_allowed_to_manage)
def _clear(runtime: Runtime, data: Mapping[str, Any], can_manage: Callable[[], bool]) -> Answer:
    scope = data.get("scope")
    if not isinstance(scope, str) or scope not in SCOPES:  # a list or object is unhashable
        return error(400, gettext("scope must be one of pending, failed, all"))
    dest = destination(data)
    if dest is None:
        return error(400, gettext("dest must be tracking or collector"))
    return 200, {"cleared": runtime.clear(scope, dest)}


_COMMANDS: dict[str, Handler] = {
    "flush": _flush,
    "retry_failed": _retry_failed,
    "clear": _clear,
}
