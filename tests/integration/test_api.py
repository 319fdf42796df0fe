"""The plugin's API on a real `octoprint serve`: commands, paging, permissions, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.harness.api import API, PLUGINS, active, install_plugins, status, wait_status
from tools.receiver import respond
from tools.server import OctoPrintServer

BROWSER = {"browser_name": "Chromium", "browser_version": "120", "os_name": "Linux", "os_version": "6"}


def command(server: OctoPrintServer, name: str, **data: Any):
    return server.plugin_command(name, **data)


def queue_installs(server: OctoPrintServer, names: list) -> None:
    """Real tracked events, each its own record (page loads are rate-limited and coalesce)."""
    before = active(status(server))
    install_plugins(server, names)
    wait_status(server, lambda s: active(s) == before + len(names))


def anonymous_browser_post(server: OctoPrintServer, body: dict) -> requests.Response:
    """POST as a browser that is not logged in: with a valid CSRF cookie and header."""
    with requests.Session() as session:
        session.trust_env = False
        session.get(server.url + "/", timeout=30)
        token = next(c.value for c in session.cookies if c.name.startswith("csrf_token"))
        return session.post(server.url + API, json=body, headers={"X-CSRF-Token": token}, timeout=30)


@pytest.fixture
def offline_server(octoprint_factory, receiver) -> OctoPrintServer:
    """A running server with an empty queue whose receiver has gone down."""
    server = octoprint_factory(plugin_settings=PLUGINS)
    assert receiver.wait_event("ping", timeout=20)  # the one record made at start
    receiver.stop()
    wait_status(server, lambda s: s["pending"] + s["in_flight"] + s["failed"] == 0)
    return server


def test_paging_shows_what_is_sent(offline_server, receiver):
    names = [f"plugin{n:02}" for n in range(25)]
    queue_installs(offline_server, names)

    def page(**params) -> dict:
        return offline_server.api("GET", API, params={"records": "pending", **params}).json()

    first, last = page(offset=0, limit=10), page(offset=20, limit=10)
    assert (first["total"], len(first["records"]), len(last["records"])) == (25, 10, 5)
    middle = page(after=first["records"][-1]["rowid"], limit=10)  # keyset paging goes on from there
    assert [r["id"] for r in page(last=1, limit=5)["records"]] == [r["id"] for r in last["records"]]
    shown = first["records"] + middle["records"] + last["records"]
    assert [r["params"]["plugin"] for r in shown] == names, "pages in queue order, none twice"
    record = first["records"][0]
    assert record["event"] == "install_plugin"
    assert record["sent"] == {
        "plugin": "plugin00",
        "plugin_version": "1.0",
        "event_time": int(record["event_time"]),  # whole seconds, as the public server takes it
        "event_id": record["id"],
    }
    failed = offline_server.api("GET", API, params={"records": "failed"}).json()
    assert (failed["total"], failed["records"]) == (0, [])

    # What the page showed is exactly what each request carries.
    receiver.start()
    assert receiver.wait_event("install_plugin", count=25)
    arrived = {r["params"]["event_id"]: r["params"] for r in receiver.requests if r["event"] == "install_plugin"}
    assert len(arrived) == 25
    for shown_record in shown:
        assert arrived[shown_record["id"]] == {k: str(v) for k, v in shown_record["sent"].items()}


def test_flush_retry_failed_and_clear(offline_server, receiver):
    queue_installs(offline_server, ["a", "b", "c"])
    wait_status(offline_server, lambda s: s["worker"]["state"] == "backoff" and s["pending"] == 3)

    # The server is back but refuses: a flush sends at once and dead-letters all three.
    receiver.behaviour = respond(400)
    receiver.start()
    assert command(offline_server, "flush").json() == {"flushing": True}
    after = wait_status(offline_server, lambda s: s["failed"] == 3)
    assert after["pending"] == 0
    assert after["worker"]["last_error"] == "HTTP 400"

    # Retry failed: pending again, and delivered now that the server accepts them.
    receiver.behaviour = None
    receiver.clear()
    assert command(offline_server, "retry_failed").json() == {"requeued": 3}
    delivered_before = after["delivered"]
    done = wait_status(offline_server, lambda s: s["delivered"] == delivered_before + 3)
    assert (done["pending"], done["failed"]) == (0, 0)
    assert receiver.events() == ["install_plugin"] * 3
    assert [r["params"]["plugin"] for r in receiver.requests] == ["a", "b", "c"]

    # Clear, per scope, counts what went.
    receiver.stop()
    queue_installs(offline_server, ["d", "e"])
    assert command(offline_server, "clear", scope="failed").json() == {"cleared": 0}
    # pending includes a record in flight: it is deleted under the worker, which copes
    assert command(offline_server, "clear", scope="pending").json() == {"cleared": 2}
    cleared = status(offline_server)
    assert (cleared["pending"], cleared["in_flight"], cleared["cleared"]) == (0, 0, 2)
    queue_installs(offline_server, ["f"])
    assert command(offline_server, "clear", scope="all").json() == {"cleared": 1}
    assert status(offline_server)["cleared"] == 3


def test_flush_refused_while_tracking_is_disabled(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings={"enabled": False})
    response = command(server, "flush")
    assert response.status_code == 409
    assert "disabled" in response.json()["error"]
    assert command(server, "track", event="webui_load", payload=BROWSER).json() == {"queued": False}


def test_permissions(offline_server):
    queue_installs(offline_server, ["kept"])
    for name, data in (("flush", {}), ("retry_failed", {}), ("clear", {"scope": "all"})):
        body = {"command": name, **data}
        response = offline_server.as_user("POST", API, json=body)
        assert response.status_code == 403, (name, response.text)
        assert anonymous_browser_post(offline_server, body).status_code == 403, name
    for call in (offline_server.as_user, offline_server.anonymous):
        assert call("GET", API).status_code == 403
        assert call("GET", API, params={"records": "pending"}).status_code == 403
    track = {"command": "track", "event": "webui_load", "payload": BROWSER}
    assert anonymous_browser_post(offline_server, track).status_code == 403
    # A plain user may report that the web interface loaded, nothing more.
    assert offline_server.as_user("POST", API, json=track).json() == {"queued": True}
    after = wait_status(offline_server, lambda s: s["pending"] + s["in_flight"] == 2)
    assert after["cleared"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"records": "delivered"},
        {"records": "pending", "limit": "0"},
        {"records": "pending", "limit": "201"},
        {"records": "pending", "limit": "ten"},
        {"records": "pending", "offset": "-1"},
        {"records": ""},
    ],
)
def test_bad_queries_get_400(offline_server, params):
    response = offline_server.api("GET", API, params=params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_bad_commands_get_400_and_change_nothing(offline_server):
    queue_installs(offline_server, ["one", "two"])
    bad = [
        {"command": "clear", "scope": "everything"},
        {"command": "clear", "scope": ["all"]},
        {"command": "clear", "scope": None},
        {"command": "clear"},
        {"command": "explode"},
        {"command": "track", "event": "print_done"},
        {"command": "track", "event": "webui_load", "payload": "Chromium"},
        {"command": "track", "event": "webui_load", "payload": {"browser_name": "x"}},
    ]
    for body in bad:
        response = offline_server.api("POST", API, json=body)
        assert response.status_code == 400, (body, response.status_code, response.text)
    malformed = offline_server.api("POST", API, data="{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    after = status(offline_server)
    assert after["pending"] + after["in_flight"] == 2
    assert after["cleared"] == 0
