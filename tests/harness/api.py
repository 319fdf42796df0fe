"""The plugin's own API as the tests call it on a real server (shared by the integration and browser suites)."""

from __future__ import annotations

from typing import Callable, Iterable

import requests

from octoprint_tracking_queued import config
from tools.server import OctoPrintServer, _poll

API = "/api/plugin/tracking_queued"

# Only what the tests make: no startup, pong or achievement records racing them.
QUIET = {"pong": 0, "events": {name: name == "webui_load" for name in config.EVENT_SWITCHES}}
# Print jobs only: the page load would queue a webui_load record of its own.
PRINTS = dict(QUIET, events=dict(QUIET["events"], printjob=True, webui_load=False))
DONE = {"path": "cube.gcode", "origin": "local", "time": 42}
# Plugin manager events too: each install_plugin record is a real tracked event with its own
# parameters, never coalesced or rate-limited, so a test makes as many distinct ones as it needs.
PLUGINS = dict(QUIET, events=dict(QUIET["events"], plugin=True))
INSTALL = "plugin_pluginmanager_install_plugin"


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


def install_plugins(server: OctoPrintServer, names: Iterable[str], version: str = "1.0") -> list:
    """Fires one plugin-install event per name on the bus (the `plugin` switch must be on)."""
    names = list(names)
    for name in names:
        server.fire_event(INSTALL, {"id": name, "version": version})
    return names


def active(s: dict) -> int:
    """Records not yet delivered or refused: pending plus the one being sent."""
    return s["pending"] + s["in_flight"]


def browser_login(server: OctoPrintServer, user: str, password: str) -> requests.Session:
    """A browser session of ``user`` (its own OctoPrint user session), sending the CSRF token."""
    session = requests.Session()
    session.trust_env = False
    session.get(server.url + "/", timeout=30)
    token = next(c.value for c in session.cookies if c.name.startswith("csrf_token"))
    session.headers["X-CSRF-Token"] = token
    response = session.post(server.url + "/api/login", json={"user": user, "pass": password}, timeout=30)
    assert response.status_code == 200, response.text
    return session


def offline(server: OctoPrintServer, receiver) -> None:
    """Everything queued so far delivered, then the receiver stops: what comes next waits."""
    assert receiver.wait_event("ping", timeout=20)
    receiver.stop()
    wait_status(server, lambda s: s["pending"] + s["in_flight"] + s["failed"] == 0)
