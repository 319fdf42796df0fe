"""Issue 18, on a real `octoprint serve` and the project's receiver: an instance id that is not
a canonical lowercase UUID never reaches a request, whichever way it comes in (the bundled
plugin's id, the settings API, config.yaml), and what was queued under one goes out under the
valid id in force."""

from __future__ import annotations

import uuid

import pytest

from tests.harness.api import PLUGINS, active, install_plugins, status, wait_status
from tests.harness.ids import ID_RULE, REFUSED_IDS
from tools.server import PLUGIN_ID, OctoPrintServer

pytestmark = pytest.mark.integration

BUNDLED = "0123456789abcdef0123456789abcdef"  # uuid.hex of a bundled plugin's id: no dashes
IN_CONFIG_YAML = "0123456789abcdef"  # what the issue measured: 204 there, counted nowhere
VALID = "0123abcd-4567-4890-abcd-0123456789ab"


def save_id(server: OctoPrintServer, value: str) -> None:
    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"unique_id": value}}})
    assert response.status_code == 200, response.text


def test_refused_id_forms_never_reach_a_request(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings=PLUGINS, extra_config={"plugins": {"tracking": {"unique_id": BUNDLED}}})
    generated = server.plugin_settings()["unique_id"]
    assert generated != BUNDLED and str(uuid.UUID(generated)) == generated
    assert server.wait_for_log("Not adopting the bundled plugin's instance id")
    install_plugins(server, ["a"])
    assert receiver.wait_event("install_plugin")

    for form in REFUSED_IDS:
        save_id(server, form)
        assert status(server)["settings_errors"] == [f"plugins.{PLUGIN_ID}.unique_id: {ID_RULE}"], form
    assert server.plugin_settings()["unique_id"] == generated
    install_plugins(server, ["b"])
    assert receiver.wait_event("install_plugin", count=2)

    # An id an older version let into config.yaml: a configuration error, nothing is sent.
    server.stop()
    server.update_config({"plugins": {PLUGIN_ID: {"unique_id": IN_CONFIG_YAML}}})
    server.start()
    before = len(receiver.requests)
    install_plugins(server, ["c"])
    # this start's first ping and "c", both kept
    s = wait_status(server, lambda s: active(s) == 2 and s["worker"]["state"] == "config_error")
    assert s["config_errors"] == [f"plugins.{PLUGIN_ID}.unique_id: {ID_RULE}"]
    # The record queued under it goes out once a valid id is in force.
    save_id(server, VALID)
    assert receiver.wait_event("install_plugin", count=3)
    wait_status(server, lambda s: active(s) == 0)

    sent = [(r["params"].get("plugin"), r["id"]) for r in receiver.requests if r["event"] == "install_plugin"]
    ids = sorted({r["id"] for r in receiver.requests})
    print(
        f"FIGURE issue 18 ids: {len(REFUSED_IDS) + 2} refused forms tried, {len(receiver.requests)} requests, ids {ids}"
    )
    assert sent == [("a", generated), ("b", generated), ("c", VALID)]
    assert {r["id"] for r in receiver.requests[:before]} == {generated}
    assert {r["id"] for r in receiver.requests[before:]} == {VALID}  # the queued ping too
    assert all(r["path"] == f"/track/{r['id']}/{r['event']}/" for r in receiver.requests)
