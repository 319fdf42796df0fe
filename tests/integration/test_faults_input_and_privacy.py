"""Scenarios 6 and 7 against a real OctoPrint: bad input at the event bus, the settings
API and our API; and privacy of everything the tracking server receives."""

from __future__ import annotations

from tests.harness.api import status, wait_status
from tests.harness.faults import FAST_RETRY
from tools.basedir import ADMIN_API_KEY, PLUGIN_ID, USER_API_KEY

SECRET_FILE = "alice-secret-benchy"
SECRET_DIR = "/home/alice/prints"
SECRET_IP = "192.168.17.23"
SECRET_USER = "alice-the-user"  # the harness's "admin" and "user" are words found anywhere

BAD_EVENTS = [
    ("PrintDone", None),
    ("PrintDone", {}),
    ("PrintDone", {"path": 5, "time": "abc", "origin": ["x"]}),
    ("PrintFailed", {"path": "x" * 100_000, "reason": None, "time": -1}),
    # OctoPrint itself refuses API bodies much over 100 kB
    ("Error", {"reason": "x" * 10_000, "error": "y" * 60_000}),
    ("Error", {"reason": "firmware", "error": "bad \udcff byte"}),
    ("plugin_pi_support_throttle_state", {"current_issue": True}),
    ("plugin_pluginmanager_install_plugin", {"id": None}),
    ("TotallyUnknownEvent", {"anything": 1}),
]


def queue_state(server) -> tuple:
    s = status(server)
    return s["pending"], s["failed"], s["delivered"], s["cleared"]


def test_bad_input_is_refused_cleanly(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings=FAST_RETRY)
    assert receiver.wait_event("ping", timeout=30)
    for event, payload in BAD_EVENTS:
        server.fire_event(event, payload)
    server.fire_event("TqFaultsDone")
    assert server.wait_for_event("TqFaultsDone", timeout=30)
    # the records that could be made go out (the surrogate one too), none is stuck
    assert receiver.wait_for(lambda rs: sum(r["event"].startswith("commerror") for r in rs) >= 2, timeout=30)
    # OctoPrint's achievements plugin answers some of these events with a record of its own a
    # moment later: wait for the queue to empty rather than reading it once.
    s = wait_status(server, lambda s: s["pending"] + s["in_flight"] == 0)
    assert s["worker"]["alive"]

    before = queue_state(server)
    settings_before = server.api("GET", "/api/settings").json()["plugins"][PLUGIN_ID]
    hostile = {
        "server": "file:///etc/passwd",
        "ping": -1,
        "enabled": "yes",
        "queue": {"max_records": "lots"},
        "retry": {"initial_delay": "nan"},
        "events": {"startup": "no"},
    }
    response = server.api("POST", "/api/settings", json={"plugins": {PLUGIN_ID: hostile}})
    assert response.status_code == 200
    settings_after = server.api("GET", "/api/settings").json()["plugins"][PLUGIN_ID]
    assert settings_after == settings_before
    assert (server.read_config()["plugins"][PLUGIN_ID]).get("server") == receiver.url_template

    calls = [
        ("POST", {"command": "clear", "scope": ["all"]}),
        ("POST", {"command": "clear", "scope": {"all": 1}}),
        ("POST", {"command": "clear", "scope": "everything"}),
        ("POST", {"command": "clear"}),
        ("POST", {"command": "nope"}),
        ("POST", {"command": "track", "event": {"a": 1}}),
        ("POST", {"command": "track", "event": "webui_load", "payload": "x"}),
        ("POST", {"command": "track", "event": "webui_load", "payload": {"browser_name": 5}}),
        ("GET", {"records": "pending", "limit": "9" * 5000}),
        ("GET", {"records": "pending", "limit": "1e3"}),
        ("GET", {"records": "pending", "offset": -1}),
        ("GET", {"records": "everything"}),
    ]
    for method, data in calls:
        if method == "POST":
            answer = server.api("POST", f"/api/plugin/{PLUGIN_ID}", json=data)
        else:
            answer = server.api("GET", f"/api/plugin/{PLUGIN_ID}", params=data)
        assert answer.status_code == 400, (data, answer.status_code, answer.text[:200])
    assert (
        server.api(
            "POST", f"/api/plugin/{PLUGIN_ID}", data="not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        server.as_user("POST", f"/api/plugin/{PLUGIN_ID}", json={"command": "clear", "scope": "all"}).status_code == 403
    )
    assert queue_state(server) == before  # nothing changed by a refused call
    assert_no_errors_of_ours(server.log_text())


def assert_no_errors_of_ours(log: str) -> None:
    """OctoPrint's own plugins may choke on synthetic events; ours must not."""
    ours = [
        line
        for line in log.splitlines()
        if ('File "' in line and "octoprint_tracking_queued" in line)
        or ("tracking_queued" in line and " - ERROR - " in line)
    ]
    assert not ours, ours[:10]


TINY_GCODE = "G28\nG1 X10 Y10 F6000\nG1 X20 Y20\n"


def test_nothing_private_reaches_the_server_or_the_log(octoprint_factory, receiver):
    server = octoprint_factory(plugin_settings={**FAST_RETRY, "pong": 60})
    unique_id = server.plugin_settings()["unique_id"]
    server.connect_virtual_printer()
    assert server.print_gcode(f"{SECRET_FILE}.gcode", TINY_GCODE)["event"] == "PrintDone"
    path = f"{SECRET_DIR}/{SECRET_FILE}.gcode"
    # A user of this instance: its name is scrubbed from free texts too.
    created = server.api(
        "POST",
        "/api/access/users",
        json={"name": SECRET_USER, "password": "alice-password-1", "active": True, "groups": ["users"]},
    )
    assert created.status_code == 200, created.text
    private = f"{path} from {SECRET_IP} key {USER_API_KEY} mail alice@example.org by {SECRET_USER}"
    for event, payload in [
        ("PrintStarted", {"path": path, "name": f"{SECRET_FILE}.gcode", "origin": "local", "user": SECRET_USER}),
        (
            "PrintFailed",
            {
                "path": path,
                "name": SECRET_FILE,
                "origin": "local",
                "time": 3,
                "reason": "error",
                "error": private,
                "user": SECRET_USER,
            },
        ),
        ("Error", {"reason": "firmware", "error": private}),
        ("SlicingStarted", {"slicer": "cura", "stl": path, "gcode": path}),
        ("plugin_pluginmanager_install_plugin", {"id": "someplugin", "version": "1.0", "url": path}),
        ("plugin_softwareupdate_update_succeeded", {"target": "octoprint", "from_version": "1", "to_version": "2"}),
        ("plugin_firmware_check_warning", {"warning_type": "x", "check_name": "y"}),
        ("plugin_achievements_achievement_unlocked", {"key": "the_wizard"}),
    ]:
        server.fire_event(event, payload)
    server.api(
        "POST",
        f"/api/plugin/{PLUGIN_ID}",
        json={
            "command": "track",
            "event": "webui_load",
            "payload": {
                "browser_name": "Firefox",
                "browser_version": "120",
                "os_name": "Linux",
                "os_version": SECRET_IP,
            },
        },
    )
    wanted = {
        "print_started",
        "print_done",
        "print_failed",
        "printer_connected",
        "slicing_started",
        "install_plugin",
        "update_successful",
        "printer_safety_warning",
        "achievement_unlocked",
        "webui_load",
        "startup",
        "ping",
        "pong",
    }
    assert receiver.wait_for(
        lambda rs: wanted <= {r["event"] for r in rs} and any(r["event"].startswith("commerror") for r in rs),
        timeout=60,
    ), sorted({r["event"] for r in receiver.requests})

    secrets = [
        SECRET_FILE,
        SECRET_DIR,
        SECRET_IP,
        SECRET_USER,
        ADMIN_API_KEY,
        USER_API_KEY,
        "alice@example.org",
        str(server.basedir),
    ]
    for request in receiver.requests:
        seen = repr({k: request[k] for k in ("path", "params", "headers")})
        for secret in secrets:
            assert secret not in seen, (secret, request["event"], seen[:500])
    assert unique_id not in server.log_text()
    assert unique_id not in server.serve_log_path.read_text(errors="replace")
