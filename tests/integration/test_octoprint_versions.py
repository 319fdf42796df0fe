"""Settings that OctoPrint 2.0 guards more than 1.11, on the OctoPrint this run serves (./dev test
runs this file on 1.11.8 and on 2.0): the pong interval only from config.yaml, and on 2.0 a
fresh login before a save may change where the data goes."""

from __future__ import annotations

from tests.harness.api import status
from tests.harness.versions import OCTOPRINT, OCTOPRINT_2
from tools.basedir import PLUGIN_ID


def test_the_server_runs_the_octoprint_of_this_venv(octoprint_factory):
    server = octoprint_factory()
    assert server.api("GET", "/api/version").json()["server"] == OCTOPRINT


def test_pong_interval_is_refused_through_the_settings_api_and_keeps_its_value(octoprint_factory):
    server = octoprint_factory(plugin_settings={"pong": 7200})
    settings = server.api("GET", "/api/settings").json()["plugins"][PLUGIN_ID]
    assert settings.get("pong") is None  # a `never` path: not even shown to the admin
    assert settings["events"]["pong"] is True  # the switch stays the admin's to turn off

    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"pong": 60, "ping": 60}}})
    assert response.status_code == 200, response.text
    assert (server.plugin_settings()["pong"], server.plugin_settings()["ping"]) == (7200, 86400)  # as before
    assert status(server)["settings_errors"] == [
        "plugins.tracking_queued.pong: can only be changed in config.yaml",
        "plugins.tracking_queued.ping: can only be changed in config.yaml",
    ]
    # The rest of a save still goes through.
    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"events": {"slicing": False}}}})
    assert response.status_code == 200, response.text
    assert server.plugin_settings()["events"]["slicing"] is False
    assert status(server)["settings_errors"] == []


def test_where_data_goes_needs_a_fresh_login_on_2_0_and_1_11_still_saves(octoprint_factory):
    server = octoprint_factory()
    response = server.api("GET", "/api/settings/reauthReq")
    if OCTOPRINT_2:
        assert response.status_code == 200, response.text
        # Where data goes: the public server's template and the farm's collector.
        assert response.json()["requirements"]["plugins"][PLUGIN_ID] == {
            "server": True,
            "collector": {"endpoint": True, "headers": True},
        }
    else:
        assert response.status_code == 404  # 1.11 has no re-authentication of settings
    # On either, the plugin's settings save as before.
    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: {"events": {"slicing": False}}}})
    assert response.status_code == 200, response.text
    assert server.plugin_settings()["events"]["slicing"] is False
