"""The plugin's own API as the tests call it on a real server (shared by the integration and browser suites)."""

from __future__ import annotations

from typing import Callable

from octoprint_tracking_queued import config
from tests.harness.server import OctoPrintServer, _poll

API = "/api/plugin/tracking_queued"

# Only what the tests make: no startup, pong or achievement records racing them.
QUIET = {"pong": 0, "events": {name: name == "webui_load" for name in config.EVENT_SWITCHES}}
# Print jobs only: the page load would queue a webui_load record of its own.
PRINTS = dict(QUIET, events=dict(QUIET["events"], printjob=True, webui_load=False))
DONE = {"path": "cube.gcode", "origin": "local", "time": 42}


def status(server: OctoPrintServer) -> dict:
    response = server.api("GET", API)
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(server: OctoPrintServer, check: Callable[[dict], bool], timeout: float = 20) -> dict:
    seen: list = []

    def probe() -> bool:
        seen[:] = [status(server)]
        return check(seen[0])

    assert _poll(probe, timeout, interval=0.1), f"status never matched: {seen}"
    return seen[0]


def offline(server: OctoPrintServer, receiver) -> None:
    """Everything queued so far delivered, then the receiver stops: what comes next waits."""
    assert receiver.wait_event("ping", timeout=20)
    receiver.stop()
    wait_status(server, lambda s: s["pending"] + s["in_flight"] + s["failed"] == 0)
