"""Records what a real OctoPrint's event bus delivers for the events the plugin tracks.

    .venv/bin/python -m tests.harness.capture_payloads        # OctoPrint 1.11.8
    .venv-2.0/bin/python -m tests.harness.capture_payloads    # OctoPrint 2.0

Starts ``octoprint serve`` of the running Python's venv on loopback (the harness's
offline base folder and outbound guard), connects the virtual printer, prints a file to
the end, cancels a print, and makes the virtual printer fail one with a firmware error
(MINTEMP). The payloads tq_test_events saw are written, unedited, to
``tests/unit/payloads/<OctoPrint version>.json``, where tests/unit/test_bundled_oracle.py
feeds them through records.py and through that version's bundled tracking plugin. The virtual printer has no private data; the base folder
(a temporary folder) is replaced by ``<basedir>`` wherever a payload names it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from octoprint_tracking_queued.compat import importlib_metadata
from tools.guard import OutboundGuard
from tools.server import OctoPrintError, OctoPrintServer, _poll, free_port

PAYLOADS = Path(__file__).resolve().parents[1] / "unit" / "payloads"

# What records.py reads, and what the bundled plugins read next to it.
CAPTURED = (
    "Connected",
    "FirmwareData",
    "Error",
    "PrintStarted",
    "PrintDone",
    "PrintFailed",
    "PrintCancelled",
    "SlicingStarted",
    "plugin_achievements_achievement_unlocked",
    "plugin_pi_support_throttle_state",
    "plugin_firmware_check_warning",
)

# Over a second, so the end events carry an elapsed time the bundled plugins send.
SHORT = "G28\nG1 X10 Y10 F6000\nG4 P1200\nG1 X20 Y20\n"
# Long enough to be interrupted: the virtual printer waits for each dwell.
LONG = "G28\n" + "G4 P200\n" * 300


def _start_print(server: OctoPrintServer, name: str) -> None:
    # A print right after another one ended is refused until the printer is ready again.
    if not _poll(lambda: server.printer_state() == "Operational", 30):
        raise OctoPrintError(f"printer not ready for {name}: {server.printer_state()}")
    since = time.time()
    server.print_gcode(name, LONG, wait=False)
    started = server.wait_for_event(
        "PrintStarted", predicate=lambda seen: seen["time"] >= since and seen["payload"].get("name") == name
    )
    if started is None:
        raise OctoPrintError(f"{name} did not start")

    def printed_a_while() -> bool:
        progress = server.api("GET", "/api/job").json().get("progress") or {}
        return (progress.get("printTime") or 0) >= 2

    if not _poll(printed_a_while, 30):
        raise OctoPrintError(f"{name} is not printing")


def _wait_end(server: OctoPrintServer, name: str, event: str) -> None:
    if server.wait_for_event(event, timeout=60, predicate=lambda seen: seen["payload"].get("name") == name) is None:
        raise OctoPrintError(f"no {event} for {name}")


def capture(workdir: Path) -> Dict[str, Any]:
    guard = OutboundGuard().start()
    server = OctoPrintServer(workdir / "basedir", free_port(), {"enabled": False}, env=guard.proxy_env())
    try:
        server.start(timeout=120)
        server.connect_virtual_printer()
        server.print_gcode("capture done.gcode", SHORT)

        _start_print(server, "capture cancelled.gcode")
        response = server.api("POST", "/api/job", json={"command": "cancel"})
        if response.status_code != 204:
            raise OctoPrintError(f"cancel: {response.status_code} {response.text}")
        _wait_end(server, "capture cancelled.gcode", "PrintCancelled")

        # A firmware error in the middle of a print: Error, then PrintFailed.
        _start_print(server, "capture failed.gcode")
        response = server.api("POST", "/api/printer/command", json={"commands": ["!!DEBUG:mintemp_error"]})
        if response.status_code != 204:
            raise OctoPrintError(f"debug command: {response.status_code} {response.text}")
        _wait_end(server, "capture failed.gcode", "PrintFailed")
        if server.wait_for_event("Error") is None:
            raise OctoPrintError("the virtual printer's error fired no Error event")
        seen = server.seen_events()
    finally:
        server.stop()
        guard.stop()
    if guard.attempts:
        raise OctoPrintError(f"requests tried to leave loopback: {guard.attempts}")

    basedir = str(server.basedir)
    events: List[Dict[str, Any]] = [
        {"event": item["event"], "payload": _replace(item["payload"], basedir)}
        for item in seen
        if item["event"] in CAPTURED
    ]
    return {
        "octoprint": importlib_metadata.version("OctoPrint"),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "how": "tests/harness/capture_payloads.py: virtual printer connected, one print done, "
        "one cancelled, one failed by the virtual printer's mintemp_error",
        "events": events,
    }


def _replace(value: Any, basedir: str) -> Any:
    if isinstance(value, str):
        return value.replace(basedir, "<basedir>")
    if isinstance(value, list):
        return [_replace(item, basedir) for item in value]
    if isinstance(value, dict):
        return {key: _replace(item, basedir) for key, item in value.items()}
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="default: tests/unit/payloads/<version>.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tq-capture-") as workdir:
        captured = capture(Path(workdir))
    out = args.out or PAYLOADS / f"{captured['octoprint']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(captured, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(captured['events'])} events of OctoPrint {captured['octoprint']} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
