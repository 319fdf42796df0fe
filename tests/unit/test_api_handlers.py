"""api.py without a server: parsing, the permission check and the answers, over a stub runtime."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import pytest

from octoprint_tracking_queued import api
from octoprint_tracking_queued.records import BadPayload
from octoprint_tracking_queued.status import StatusBody, WorkerStatus

BROWSER = {"browser_name": "Chromium", "browser_version": "120", "os_name": "Linux", "os_version": "6"}


def _other(dest: str) -> tuple:
    """A call's destination, when it is not the public server's (the default)."""
    return () if dest == "tracking" else (dest,)


class StubRuntime:
    """Answers like the runtime and remembers what it was asked to do."""

    def __init__(self, flush_refusal: Optional[str] = None) -> None:
        self.calls: list[tuple] = []
        self.flush_refusal = flush_refusal

    def status(self) -> dict:
        self.calls.append(("status",))
        return {"pending": 3}

    def page(self, scope: str, offset: int, limit: int, dest: str = "tracking") -> tuple[list[dict], int]:
        self.calls.append(("page", scope, offset, limit) + _other(dest))
        return [{"id": "a"}], 7

    def flush(self, dest: str = "tracking") -> Optional[str]:
        self.calls.append(("flush",) + _other(dest))
        return self.flush_refusal

    def retry_failed(self, dest: str = "tracking") -> int:
        self.calls.append(("retry_failed",) + _other(dest))
        return 2

    def clear(self, scope: str, dest: str = "tracking") -> int:
        self.calls.append(("clear", scope) + _other(dest))
        return 5

    def track_webui_load(self, payload: Any, caller: tuple[str, str]) -> tuple[bool, float]:
        self.calls.append(("track", payload))
        if not isinstance(payload, dict):
            raise BadPayload("webui_load payload must be an object")
        return (False, 42.5) if caller == ("flooder", "") else (True, 0.0)


def allowed() -> bool:
    return True


def refused() -> bool:
    return False


def test_get_status():
    runtime = StubRuntime()
    assert api.get(runtime, {}, allowed) == (200, {"pending": 3})


def test_get_a_page():
    runtime = StubRuntime()
    answer = api.get(runtime, {"records": "failed", "offset": "10", "limit": "200"}, allowed)
    assert answer == (200, {"records": [{"id": "a"}], "total": 7, "offset": 10, "limit": 200})
    assert api.get(runtime, {"records": "pending"}, allowed)[1]["limit"] == 50
    assert runtime.calls == [("page", "failed", 10, 200), ("page", "pending", 0, 50)]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"records": "delivered"}, "records must be pending or failed"),
        ({"records": ""}, "records must be pending or failed"),
        ({"records": "pending", "limit": "ten"}, "offset and limit must be whole numbers"),
        ({"records": "pending", "limit": "1e3"}, "offset and limit must be whole numbers"),
        ({"records": "pending", "limit": "9" * 5000}, "offset and limit must be whole numbers"),
        ({"records": "pending", "offset": None}, "offset and limit must be whole numbers"),
        ({"records": "pending", "limit": "0"}, "offset must be 0 or more and limit between 1 and 200"),
        ({"records": "pending", "limit": "201"}, "offset must be 0 or more and limit between 1 and 200"),
        ({"records": "pending", "offset": "-1"}, "offset must be 0 or more and limit between 1 and 200"),
    ],
)
def test_bad_queries_get_400(query, message):
    runtime = StubRuntime()
    assert api.get(runtime, query, allowed) == (400, {"error": message})
    assert runtime.calls == []


@pytest.mark.parametrize(
    "data",
    [{"scope": "everything"}, {"scope": ["all"]}, {"scope": {"all": 1}}, {"scope": None}, {}],
)
def test_bad_clear_scope_gets_400(data):
    runtime = StubRuntime()
    assert api.command(runtime, "clear", data, allowed) == (400, {"error": "scope must be one of pending, failed, all"})
    assert runtime.calls == []


@pytest.mark.parametrize("scope", ["pending", "failed", "all"])
def test_clear(scope):
    runtime = StubRuntime()
    assert api.command(runtime, "clear", {"scope": scope}, allowed) == (200, {"cleared": 5})
    assert runtime.calls == [("clear", scope)]


def test_flush_and_retry():
    assert api.command(StubRuntime(), "flush", {}, allowed) == (200, {"flushing": True})
    refusing = StubRuntime(flush_refusal="Anonymous usage tracking is disabled in the settings.")
    assert api.command(refusing, "flush", {}, allowed) == (
        409,
        {"error": "Anonymous usage tracking is disabled in the settings."},
    )
    assert api.command(StubRuntime(), "retry_failed", {}, allowed) == (200, {"requeued": 2})


def test_without_the_permission_nothing_is_seen_or_done():
    runtime = StubRuntime()
    see = (403, {"error": "You are not allowed to see the tracking queue."})
    manage = (403, {"error": "You are not allowed to manage the tracking queue."})
    assert api.get(runtime, {}, refused) == see
    assert api.get(runtime, {"records": "pending"}, refused) == see
    assert api.get(runtime, {"records": "bad", "limit": "x"}, refused) == see  # checked before parsing
    for name, data in (("flush", {}), ("retry_failed", {}), ("clear", {"scope": "all"}), ("clear", {})):
        assert api.command(runtime, name, data, refused) == manage, name
    assert runtime.calls == []


def test_any_user_may_track_a_webui_load():
    runtime = StubRuntime()
    track = {"event": "webui_load", "payload": BROWSER}
    assert api.command(runtime, "track", track, refused) == (200, {"queued": True})
    assert runtime.calls == [("track", BROWSER)]


def test_a_rate_limited_track_is_answered_429_with_the_wait_rounded_up():
    # How the answer is made from the runtime's refusal; that a refused load stores nothing is
    # the runtime's part (test_runtime.py: test_a_rate_limited_webui_load_stores_nothing).
    runtime = StubRuntime()
    status, body = api.command(runtime, "track", {"event": "webui_load", "payload": BROWSER}, refused, ("flooder", ""))
    assert status == 429 and body["queued"] is False and body["retry_after"] == 43 and "43 s" in body["error"]
    assert runtime.calls == [("track", BROWSER)]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"event": "print_done"}, "Only webui_load can be tracked through the API"),
        ({"event": {"a": 1}}, "Only webui_load can be tracked through the API"),
        (
            {"event": "webui_load", "payload": "x"},
            "The payload is not usable: webui_load payload must be an object",
        ),
    ],
)
def test_bad_track_gets_400(data, message):
    assert api.command(StubRuntime(), "track", data, allowed) == (400, {"error": message})


def test_unknown_command_gets_400():
    assert api.command(StubRuntime(), "explode", {}, allowed) == (400, {"error": "Unknown command"})


def test_octoprint_checks_the_same_commands_we_answer():
    assert set(api.COMMAND_PARAMETERS) == {"track", "flush", "retry_failed", "clear"}
    for name, parameters in api.COMMAND_PARAMETERS.items():
        # with its required parameters missing a known command is refused, never a server error
        status, _ = api.command(StubRuntime(), name, dict.fromkeys(parameters), allowed)
        assert status in (200, 400, 409)


def test_readme_describes_every_status_key():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| key | what |") :].split("\n\n", 1)[0]
    described = set(re.findall(r"`([a-z_.]+)`", table))
    keys = set(StatusBody.__annotations__) - {"worker"}
    keys |= {f"worker.{key}" for key in WorkerStatus.__annotations__}
    assert keys <= described, keys - described


def test_each_command_and_page_is_for_the_destination_it_names():
    runtime = StubRuntime()
    assert api.get(runtime, {"records": "failed", "dest": "collector"}, allowed)[0] == 200
    for name, data in (("flush", {}), ("retry_failed", {}), ("clear", {"scope": "all"})):
        assert api.command(runtime, name, {**data, "dest": "collector"}, allowed)[0] == 200
        assert api.command(runtime, name, {**data, "dest": "elsewhere"}, allowed)[0] == 400
    assert api.get(runtime, {"records": "failed", "dest": ["x"]}, allowed)[0] == 400
    assert runtime.calls == [
        ("page", "failed", 0, 50, "collector"),
        ("flush", "collector"),
        ("retry_failed", "collector"),
        ("clear", "all", "collector"),
    ]
