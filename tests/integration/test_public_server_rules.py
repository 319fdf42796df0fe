"""Issue 8, what the public tracking server needs, on a real `octoprint serve`: heartbeats
coalesce (it dates events by arrival), every delivered payload is in octoprint.log at INFO
(without the URL or the instance id), and the instance id is only ever lowercase hex and dashes."""

from __future__ import annotations

import ast
import re
import uuid

import pytest

from tests.harness.api import API, PLUGINS, active, install_plugins, status, wait_status
from tools.server import OctoPrintServer

pytestmark = pytest.mark.integration

SENT_LINE = re.compile(r" - INFO - Sent tracking event (\S+), payload: (\{.*\})$", re.MULTILINE)
ID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def pending(server: OctoPrintServer) -> list:
    return server.api("GET", API, params={"records": "pending", "limit": 200}).json()["records"]


def pending_ids(server: OctoPrintServer, event: str) -> list:
    return [r["id"] for r in pending(server) if r["event"] == event]


def test_heartbeats_coalesce_while_the_server_is_down(octoprint_factory, receiver):
    receiver.stop()
    settings = dict(PLUGINS, ping=60, pong=86400, events=dict(PLUGINS["events"], startup=True, pong=True))
    server = octoprint_factory(plugin_settings=settings)
    wait_status(server, lambda s: active(s) == 3)  # startup, and the timers' first ping and pong
    made = {"ping": pending_ids(server, "ping"), "pong": pending_ids(server, "pong")}
    # Three more pings: what the 60 s timer makes in three minutes offline (the hook runs the
    # function the timer runs), and another pong.
    for kind in ("ping", "ping", "ping", "pong"):
        server.heartbeat(kind)
        ids = pending_ids(server, kind)
        assert len(ids) == 1, f"{kind} records pending: {ids}"
        made[kind] += ids
    s = status(server)
    print(f"FIGURE issue 8 heartbeats: 4 pings made offline, ping records pending {len(pending_ids(server, 'ping'))}")
    assert s["by_event"]["superseded"] == {"ping": 3, "pong": 1}
    install_plugins(server, ["x", "y"])
    wait_status(server, lambda s: active(s) == 5)
    # A restart: shutdown and startup never coalesce; the new timers' heartbeats do.
    server.stop()
    server.start()
    s = wait_status(server, lambda s: active(s) == 7)  # startup, ping, pong, x, y, shutdown, startup
    made["ping"] += pending_ids(server, "ping")
    made["pong"] += pending_ids(server, "pong")
    assert s["superseded"] == 6 and s["by_event"]["superseded"] == {"ping": 4, "pong": 2}
    assert len(set(made["ping"])) == 5 and len(set(made["pong"])) == 3

    receiver.start()
    wait_status(server, lambda s: active(s) == 0)
    arrived = [r["event"] for r in receiver.requests]
    assert sorted(arrived) == sorted(
        ["startup", "install_plugin", "install_plugin", "shutdown", "startup"] + ["ping", "pong"]
    )
    sent_ids = {r["event"]: r["params"]["event_id"] for r in receiver.requests if r["event"] in ("ping", "pong")}
    assert sent_ids == {"ping": made["ping"][-1], "pong": made["pong"][-1]}, "the newest of each went"


def test_each_delivery_is_logged_at_info_with_the_exact_parameters(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings=PLUGINS)
    unique_id = server.plugin_settings()["unique_id"]
    assert receiver.wait_event("ping")
    install_plugins(server, ["a", "b", "c"])
    assert receiver.wait_event("install_plugin", count=3)
    wait_status(server, lambda s: active(s) == 0)

    def logged() -> list:
        return [(event, ast.literal_eval(payload)) for event, payload in SENT_LINE.findall(server.log_text())]

    sent = {r["params"]["event_id"]: r["params"] for r in receiver.requests}
    lines = [(event, payload) for event, payload in logged() if event == "install_plugin"]
    print(f"FIGURE issue 8 log: {len(lines)} INFO lines after 3 delivered events")
    assert [payload["plugin"] for _, payload in lines] == ["a", "b", "c"]
    for _, payload in lines:  # exactly what the request carried
        assert {k: str(v) for k, v in payload.items()} == sent[payload["event_id"]]

    # A backlog drain: the first five one per line, then one summary line at its end.
    receiver.stop()
    names = [f"backlog{n}" for n in range(8)]
    install_plugins(server, names)
    wait_status(server, lambda s: active(s) == 8)
    receiver.start()
    assert server.wait_for_log("Delivered 8 queued tracking records: install_plugin 8")
    backlog = [payload["plugin"] for event, payload in logged() if payload.get("plugin", "").startswith("backlog")]
    assert backlog == names[:5]
    text = server.log_text()
    assert unique_id not in text and "/track/" not in text, "neither the instance id nor the URL is logged"


@pytest.mark.parametrize(
    "bundled, adopted",
    [("Bundled_Instance-1234", False), ("0123abcd-4567-4890-abcd-0123456789ab", True)],
)
def test_the_bundled_plugins_id_is_adopted_only_in_the_servers_form(octoprint_factory, receiver, bundled, adopted):
    server = octoprint_factory(extra_config={"plugins": {"tracking": {"unique_id": bundled}}})
    assert receiver.wait_event("startup")
    unique_id = server.plugin_settings()["unique_id"]
    assert {r["id"] for r in receiver.requests} == {unique_id}
    notice = "Not adopting the bundled plugin's instance id"
    if adopted:
        assert unique_id == bundled and notice not in server.log_text()
    else:
        assert ID_FORM.fullmatch(unique_id) and uuid.UUID(unique_id).version == 4
        assert server.wait_for_log(notice)
        assert bundled not in server.log_text()


def test_a_bad_id_in_config_yaml_is_a_configuration_error(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings={"unique_id": "My-Printer!"})
    s = wait_status(server, lambda s: active(s) >= 1)  # startup is queued, not sent
    assert s["worker"]["state"] == "config_error"
    assert any(e.startswith("plugins.tracking_queued.unique_id") for e in s["config_errors"])
    install_plugins(server, ["kept"])
    wait_status(server, lambda s: active(s) >= 2 and s["worker"]["state"] == "config_error")
    assert server.plugin_settings()["unique_id"] == "My-Printer!", "not silently replaced"
    assert receiver.requests == []
