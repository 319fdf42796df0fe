"""Issue 12 on a real `octoprint serve`: opting out means nothing collected before leaves
later, not even after opting in again. Through the settings API while running, and by
`enabled: false` in config.yaml at start-up."""

from __future__ import annotations

import pytest

from tests.harness.api import API, PLUGINS, active, install_plugins, status, wait_status
from tools.receiver import respond
from tools.server import OctoPrintServer

pytestmark = pytest.mark.integration

SETTINGS = dict(PLUGINS, events=dict(PLUGINS["events"], startup=True))
OPTED_OUT = "tracking records not yet sent: opted out"


def record_ids(server: OctoPrintServer, scope: str) -> set:
    return {r["id"] for r in server.api("GET", API, params={"records": scope, "limit": 200}).json()["records"]}


def set_enabled(server: OctoPrintServer, enabled: bool) -> None:
    response = server.api("POST", "/api/settings", json={"plugins": {"tracking_queued": {"enabled": enabled}}})
    assert response.status_code == 200, response.text


def test_opting_out_through_the_settings_api_deletes_what_was_collected(octoprint_factory, receiver):
    refused = respond(400)
    receiver.behaviour = lambda request: (
        refused(request) if request["params"].get("plugin") == "refused" else (200, {}, b"")
    )
    server = octoprint_factory(plugin_settings=SETTINGS)
    unique_id = server.plugin_settings()["unique_id"]
    assert receiver.wait_event("startup") and receiver.wait_event("ping")
    install_plugins(server, ["refused"])
    wait_status(server, lambda s: s["failed"] == 1)
    # The tracking server goes down; three events, and a restart's shutdown, startup and ping wait.
    receiver.stop()
    install_plugins(server, ["a", "b", "c"])
    wait_status(server, lambda s: active(s) == 3)
    server.restart()
    wait_status(server, lambda s: active(s) == 6)
    collected = record_ids(server, "pending") | record_ids(server, "failed")
    assert len(collected) == 7

    set_enabled(server, False)
    s = wait_status(server, lambda s: s["enabled"] is False)
    print(f"FIGURE issue 12: pending after opt-out {s['pending'] + s['in_flight']}, failed {s['failed']}")
    assert (s["pending"], s["in_flight"], s["failed"], s["cleared"]) == (0, 0, 0, 7)
    assert s["worker"]["state"] == "disabled"
    assert server.wait_for_log(f"Deleted 7 {OPTED_OUT}")

    receiver.clear()
    receiver.start()
    set_enabled(server, True)  # opting in again starts anew: a new startup and ping
    assert receiver.wait_event("startup") and receiver.wait_event("ping")
    install_plugins(server, ["new"])
    assert receiver.wait_event("install_plugin")
    wait_status(server, lambda s: active(s) == 0)
    sent = {r["params"]["event_id"] for r in receiver.requests}
    print(f"FIGURE issue 12: earlier records arriving after opt-in {len(sent & collected)}")
    assert sent.isdisjoint(collected), "nothing collected before the opt-out left"
    assert sorted(r["event"] for r in receiver.requests) == ["install_plugin", "ping", "startup"]
    assert [r["params"]["plugin"] for r in receiver.requests if r["event"] == "install_plugin"] == ["new"]
    assert server.plugin_settings()["unique_id"] == unique_id, "the instance keeps its id"
    assert {r["id"] for r in receiver.requests} == {unique_id}


def test_enabled_false_in_config_yaml_deletes_the_queue_at_start(octoprint_factory, receiver):
    receiver.stop()
    server = octoprint_factory(plugin_settings=SETTINGS)
    unique_id = server.plugin_settings()["unique_id"]
    install_plugins(server, ["a", "b"])
    wait_status(server, lambda s: active(s) == 4)  # startup, ping and the two
    server.stop()  # and the shutdown record
    server.update_config({"plugins": {"tracking_queued": {"enabled": False}}})
    server.start()
    s = status(server)
    assert (s["pending"], s["in_flight"], s["failed"], s["cleared"]) == (0, 0, 0, 5)
    assert f"Deleted 5 {OPTED_OUT}" in server.log_text()

    receiver.start()
    set_enabled(server, True)
    assert receiver.wait_event("ping")
    wait_status(server, lambda s: active(s) == 0)
    assert sorted(r["event"] for r in receiver.requests) == ["ping", "startup"]
    assert server.plugin_settings()["unique_id"] == unique_id
