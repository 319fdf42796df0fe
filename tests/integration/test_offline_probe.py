"""Issue 8, item 6, on a real `octoprint serve`: OctoPrint's connectivity check says offline
while the tracking server is reachable. The worker then tries one record at most every
retry.max_delay; one that goes through counts as online until a send fails."""

from __future__ import annotations

import pytest

from tests.harness.api import PLUGINS, active, install_plugins, wait_status
from tests.harness.connectivity import OnlineCheckPort

pytestmark = pytest.mark.integration


def plugins_arrived(receiver) -> list:
    return [r["params"]["plugin"] for r in receiver.requests if r["event"] == "install_plugin"]


def test_a_wrong_offline_verdict_does_not_hold_the_queue(octoprint_factory, receiver):
    check = OnlineCheckPort()
    settings = dict(PLUGINS, retry={"initial_delay": 0.5, "max_delay": 2})
    server = octoprint_factory(plugin_settings=settings, extra_config=check.config())
    assert receiver.wait_event("ping")
    try:
        check.close()
        check.recheck(server, 3601)
        wait_status(server, lambda s: s["worker"]["connectivity"] == "offline")

        # The receiver is reachable: the next probe delivers, and the rest follow at once.
        install_plugins(server, ["p0", "p1", "p2"])
        assert receiver.wait_event("install_plugin", count=3)
        s = wait_status(server, lambda s: active(s) == 0)
        assert s["worker"]["connectivity"] == "reachable" and s["worker"]["state"] != "offline"
        assert plugins_arrived(receiver) == ["p0", "p1", "p2"]

        # A failed send: OctoPrint's verdict counts again, until a probe gets through.
        receiver.stop()
        install_plugins(server, ["p3"])
        wait_status(server, lambda s: s["worker"]["connectivity"] == "offline" and s["worker"]["failures"] >= 1)
        receiver.start()
        assert receiver.wait_event("install_plugin", count=4)
        s = wait_status(server, lambda s: active(s) == 0)
        assert s["worker"]["connectivity"] == "reachable"
        assert plugins_arrived(receiver) == ["p0", "p1", "p2", "p3"]

        # OctoPrint says online again: its verdict is what the worker goes by.
        check.open()
        check.recheck(server, 3602)
        wait_status(server, lambda s: s["worker"]["connectivity"] == "online")
    finally:
        check.close()
