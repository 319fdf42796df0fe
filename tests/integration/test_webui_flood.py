"""Issue 11 on a real `octoprint serve`: a flood of page-load reports (`track`, which any
logged-in user may call) cannot push real events out of a small queue. It is refused at the
door (429), a page load of the same browser supersedes the pending one, and at the cap the
low-value kinds go first, every drop counted by kind."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from octoprint_tracking_queued.tracker import WebuiLoadLimit
from tests.harness.api import API, PLUGINS, active, browser_login, install_plugins, status, wait_status
from tools.basedir import USER_NAME, USER_PASSWORD
from tools.server import OctoPrintServer

pytestmark = pytest.mark.integration

CAP = 10  # the smallest queue.max_records allowed
FLOOD = 1500


def load(n: int, browser: str = "Flood") -> dict:
    payload = {"browser_name": browser, "browser_version": str(n), "os_name": "Linux", "os_version": "6"}
    return {"command": "track", "event": "webui_load", "payload": payload}


def pending(server: OctoPrintServer) -> list:
    return server.api("GET", API, params={"records": "pending", "limit": 200}).json()["records"]


def test_a_flood_of_page_loads_cannot_push_real_events_out(octoprint_factory, receiver):
    receiver.stop()
    settings = dict(PLUGINS, queue={"max_records": CAP}, events=dict(PLUGINS["events"], startup=True))
    server = octoprint_factory(plugin_settings=settings)
    wait_status(server, lambda s: active(s) == 2)  # startup and ping
    real = install_plugins(server, ["a", "b", "c", "d", "e"])
    wait_status(server, lambda s: active(s) == 7)

    # A plain user floods: by API key and from four browser sessions, each load another browser.
    callers = [lambda body: server.as_user("POST", API, json=body)]
    for _ in range(4):
        session = browser_login(server, USER_NAME, USER_PASSWORD)
        callers.append(lambda body, session=session: session.post(server.url + API, json=body, timeout=30))
    answers: Counter = Counter()
    began = time.monotonic()
    for n in range(FLOOD):
        response = callers[n % len(callers)](load(n))
        answers[response.status_code] += 1
        if response.status_code == 429:
            body = response.json()
            assert body["queued"] is False and body["retry_after"] >= 1 and body["error"]
            assert int(response.headers["Retry-After"]) == body["retry_after"]
        else:
            assert (response.status_code, response.json()) == (200, {"queued": True}), response.text
    minutes = int((time.monotonic() - began) // WebuiLoadLimit.WINDOW) + 1
    assert set(answers) <= {200, 429}
    assert 1 <= answers[200] <= WebuiLoadLimit.PER_USER * minutes, answers
    real += install_plugins(server, ["after-the-flood"])
    s = wait_status(server, lambda s: active(s) == CAP and s["dropped_cap"] == 7 + answers[200] + 1 - CAP)
    assert set(s["by_event"]["dropped_cap"]) <= {"webui_load"}, s["by_event"]
    print(
        f"FIGURE issue 11: {answers[429]} of {FLOOD} flood calls refused (429), {answers[200]} queued; "
        f"dropped_cap by kind {s['by_event']['dropped_cap']}"
    )

    receiver.start()
    wait_status(server, lambda s: active(s) == 0)
    arrived = Counter(r["event"] for r in receiver.requests)
    plugins = [r["params"]["plugin"] for r in receiver.requests if r["event"] == "install_plugin"]
    assert plugins == real, "every real event arrived, once, in order"
    assert (arrived["startup"], arrived["ping"]) == (1, 1)
    assert arrived["webui_load"] == answers[200] - s["dropped_cap"]
    print(f"FIGURE issue 11: {len(set(plugins) & set(real[:5]))} of 5 real events arrived")


def test_at_the_cap_page_loads_go_first_then_heartbeats_then_the_oldest(octoprint_factory):
    # Nothing is sent (so no record is in flight, which eviction spares), everything is queued.
    settings = dict(PLUGINS, queue={"max_records": CAP}, events=dict(PLUGINS["events"], pong=True))
    server = octoprint_factory(plugin_settings=settings, env={"OCTOPRINT_DISABLE_TRACKING": "1"})
    wait_status(server, lambda s: active(s) == 1)  # ping
    server.heartbeat("pong")

    # Page loads: the admin's, and the user's from two sessions with the same browser,
    # which supersedes; the same session again within the minute is refused.
    assert server.api("POST", API, json=load(1, "Admin")).json() == {"queued": True}
    assert server.as_user("POST", API, json=load(1)).json() == {"queued": True}
    assert server.as_user("POST", API, json=load(1)).status_code == 429
    session = browser_login(server, USER_NAME, USER_PASSWORD)
    assert session.post(server.url + API, json=load(1), timeout=30).json() == {"queued": True}
    s = wait_status(server, lambda s: active(s) == 4)
    assert s["by_event"]["superseded"] == {"webui_load": 1}

    names = [f"i{n:02}" for n in range(12)]
    install_plugins(server, names[:6])
    wait_status(server, lambda s: active(s) == CAP and s["dropped_cap"] == 0)
    install_plugins(server, names[6:])  # six over the cap
    s = wait_status(server, lambda s: s["dropped_cap"] == 6)
    assert s["by_event"]["dropped_cap"] == {"webui_load": 2, "ping": 1, "pong": 1, "install_plugin": 2}
    assert [r["params"].get("plugin") for r in pending(server)] == names[2:]
    assert status(server)["pending"] == CAP
