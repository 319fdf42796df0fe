"""Runs a real ``octoprint serve`` process on loopback for integration tests.

The base folder is written the way OctoPrint's own CI does it (setup done,
wizards seen, an admin with a fixed API key) plus: every internet call turned
off (tools/basedir.py), the virtual printer on, our plugin's settings merged in
and the test-only ``tq_test_events`` plugin copied into ``<basedir>/plugins``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import requests
import yaml

from tools.basedir import (
    ADMIN_API_KEY,
    PLUGIN_ID,
    USER_API_KEY,
    deep_merge,
    logging_config,
    server_config,
    users_config,
    write_basedir,
    write_yaml,
)

TEST_PLUGIN = Path(__file__).resolve().parent.parent / "tests" / "harness" / "plugins" / "tq_test_events.py"
TEST_PLUGIN_ID = "tq_test_events"

# Environment variables that would silence our plugin; tests opt in via env=.
TRACKING_OFF_VARIABLES = ("OCTOPRINT_DISABLE_TRACKING", "OCTOPRINT_TRACKING_DISABLED")

POLL = 0.1  # seconds between looks at the external process (bounded by timeouts)

# Every process we start, so none outlives the test session even if a test or
# fixture forgets to stop it.
_LIVE: weakref.WeakSet[OctoPrintServer] = weakref.WeakSet()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OctoPrintError(RuntimeError):
    pass


class OctoPrintServer:
    """One OctoPrint server process over one base folder."""

    def __init__(
        self,
        basedir: Path,
        port: int,
        plugin_settings: Optional[Mapping[str, Any]] = None,
        extra_config: Optional[Mapping[str, Any]] = None,
        *,
        show_wizards: Iterable[str] = (),
        env: Optional[Mapping[str, str]] = None,
        write_config: bool = True,
    ) -> None:
        """Prepare ``basedir``; nothing runs until start().

        ``show_wizards``: wizard ids left out of ``server.seenWizards`` so the UI
        shows them. ``env``: extra environment for the process (e.g. the
        outbound guard's proxy variables, OCTOPRINT_DISABLE_TRACKING=1).
        ``write_config=False`` reuses an existing base folder as it is.
        """
        self.basedir = Path(basedir)
        self.port = port
        self.env = dict(env or {})
        self.process: Optional[subprocess.Popen] = None
        # How each SIGTERM of stop() ended: the exit code, or why there was none. The test
        # fixture fails a test whose server shut down badly (tests/harness/fixtures.py).
        self.stops: List[str] = []
        self.session = requests.Session()
        # Loopback only: never let the runner's own proxy variables route our
        # API calls somewhere else.
        self.session.trust_env = False
        if write_config:
            self.write_files(plugin_settings, extra_config, show_wizards)

    # ~~ base folder

    def write_files(
        self,
        plugin_settings: Optional[Mapping[str, Any]] = None,
        extra_config: Optional[Mapping[str, Any]] = None,
        show_wizards: Iterable[str] = (),
    ) -> None:
        write_basedir(
            self.basedir,
            server_config(plugin_settings, extra_config, show_wizards),
            users=users_config(),
            logging=logging_config(),
        )
        plugins = self.basedir / "plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEST_PLUGIN, plugins / TEST_PLUGIN.name)

    @property
    def config_path(self) -> Path:
        return self.basedir / "config.yaml"

    def read_config(self) -> Dict[str, Any]:
        """config.yaml as OctoPrint left it (it writes generated values back)."""
        with open(self.config_path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}

    def update_config(self, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into config.yaml; only while stopped (OctoPrint owns it when running)."""
        if self.running:
            raise OctoPrintError("update_config() needs a stopped server")
        write_yaml(self.config_path, deep_merge(self.read_config(), changes))

    def plugin_settings(self) -> Dict[str, Any]:
        return (self.read_config().get("plugins") or {}).get(PLUGIN_ID) or {}

    @property
    def data_folder(self) -> Path:
        """Our plugin's data folder (where its SQLite queue lives)."""
        return self.basedir / "data" / PLUGIN_ID

    # ~~ process

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def serve_log_path(self) -> Path:
        """stdout/stderr of the process, across restarts."""
        return self.basedir / "serve.log"

    def command(self) -> List[str]:
        cmd = [
            sys.executable, "-m", "octoprint", "serve",
            "--basedir", str(self.basedir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        # OctoPrint refuses root without it; harmless otherwise.
        cmd.append("--iknowwhatimdoing")
        return cmd

    def process_env(self) -> Dict[str, str]:
        env = dict(os.environ)
        for name in TRACKING_OFF_VARIABLES:
            env.pop(name, None)
        env["PYTHONUNBUFFERED"] = "1"
        # pip is run by OctoPrint to probe its environment; never from an index here.
        env["PIP_NO_INDEX"] = "1"
        env.update(self.env)
        return env

    def start(self, timeout: float = 60) -> OctoPrintServer:
        """Start the process and wait until the API answers; raises with the log tail if not."""
        if self.running:
            raise OctoPrintError("already running")
        started = time.monotonic()
        with open(self.serve_log_path, "ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.process_env(),
                cwd=str(self.basedir),
                # own process group: kill() also takes OctoPrint's children
                # (e.g. the G-code analysis subprocess) with it
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _LIVE.add(self)

        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise OctoPrintError(
                    f"octoprint serve exited with {self.process.returncode} during start-up\n" + self.log_tail()
                )
            try:
                response = self.api("GET", "/api/version", timeout=2)
                if response.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise OctoPrintError(f"octoprint serve not answering after {timeout}s\n" + self.log_tail())
            time.sleep(POLL)
        self.last_start_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 30) -> Optional[int]:
        """SIGTERM and wait for a graceful shutdown; SIGKILL if it takes longer than ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            started = time.monotonic()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.stops.append(f"ignored SIGTERM for {timeout}s, killed")
                raise OctoPrintError(
                    f"octoprint serve ignored SIGTERM for {timeout}s, killed\n" + self.log_tail()
                ) from None
            self.last_stop_seconds = time.monotonic() - started
            self.stops.append(f"exit {self.process.returncode}")
        self._reap_group()
        return self.process.returncode

    def kill(self) -> Optional[int]:
        """SIGKILL, as a power loss would: no shutdown code runs."""
        if self.process is None:
            return None
        self._reap_group()
        self.process.wait()
        return self.process.returncode

    def restart(self, timeout: float = 60) -> OctoPrintServer:
        self.stop()
        return self.start(timeout=timeout)

    def _reap_group(self) -> None:
        # Kill what is left of the process group (the main process on kill(),
        # stray children after a graceful stop).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # ~~ logs

    @property
    def log_path(self) -> Path:
        return self.basedir / "logs" / "octoprint.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        for path in (self.serve_log_path, self.log_path):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            parts.append(f"--- last {lines} lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    def wait_for_log(self, text: str, timeout: float = 30) -> bool:
        """Wait until octoprint.log contains ``text`` (bounded file polling)."""
        return _poll(lambda: text in self.log_text(), timeout)

    # ~~ HTTP API

    def api(
        self, method: str, path: str, *, api_key: Optional[str] = ADMIN_API_KEY, **kwargs: Any
    ) -> requests.Response:
        """Call ``path`` (e.g. "/api/job") as the admin; ``api_key=None`` for anonymous."""
        headers = dict(kwargs.pop("headers", None) or {})
        if api_key is not None:
            headers["X-Api-Key"] = api_key
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, headers=headers, **kwargs)

    def as_user(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call as the plain user (no admin rights)."""
        return self.api(method, path, api_key=USER_API_KEY, **kwargs)

    def anonymous(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call without any credentials."""
        return self.api(method, path, api_key=None, **kwargs)

    def plugin_command(self, command: str, plugin: str = PLUGIN_ID, **data: Any) -> requests.Response:
        """POST a SimpleApiPlugin command to /api/plugin/<plugin> as the admin."""
        return self.api("POST", f"/api/plugin/{plugin}", json={"command": command, **data})

    # ~~ printer

    def connect_virtual_printer(self, timeout: float = 30) -> None:
        response = self.api(
            "POST",
            "/api/connection",
            json={"command": "connect", "port": "VIRTUAL", "baudrate": 115200},
        )
        if response.status_code != 204:
            raise OctoPrintError(f"connect failed: {response.status_code} {response.text}")
        if not _poll(lambda: self.printer_state() == "Operational", timeout):
            raise OctoPrintError(
                f"printer not operational after {timeout}s (state {self.printer_state()!r})\n" + self.log_tail()
            )

    def printer_state(self) -> str:
        current = self.api("GET", "/api/connection").json()["current"]
        return current.get("state") or ""

    def print_gcode(
        self, name: str, gcode_text: str, wait: bool = True, timeout: float = 60
    ) -> Optional[Dict[str, Any]]:
        """Upload ``name``, select and print it; with ``wait`` return the end event.

        The end is taken from the event bus (PrintDone / PrintFailed /
        PrintCancelled for this file, seen by tq_test_events), which cannot
        confuse "not started yet" with "already finished" as /api/job can.
        """
        since = time.time()
        response = self.api(
            "POST",
            "/api/files/local",
            files={"file": (name, gcode_text.encode("utf-8"), "application/octet-stream")},
            data={"select": "true", "print": "true"},
        )
        if response.status_code != 201:
            raise OctoPrintError(f"upload failed: {response.status_code} {response.text}")
        if not wait:
            return None

        ends = ("PrintDone", "PrintFailed", "PrintCancelled")
        found: List[Dict[str, Any]] = []

        def finished() -> bool:
            for seen in self.seen_events():
                if seen["event"] in ends and seen["time"] >= since and (seen.get("payload") or {}).get("name") == name:
                    found.append(seen)
                    return True
            return False

        if not _poll(finished, timeout, interval=0.2):
            job = self.api("GET", "/api/job").json()
            raise OctoPrintError(f"print of {name} not finished after {timeout}s: {job}")
        return found[0]

    # ~~ test-only event plugin

    def fire_event(self, name: str, payload: Optional[Mapping[str, Any]] = None) -> None:
        """Fire ``name`` on OctoPrint's event bus through tq_test_events."""
        response = self.plugin_command("fire", plugin=TEST_PLUGIN_ID, event=name, payload=dict(payload or {}))
        if response.status_code != 200:
            raise OctoPrintError(f"fire failed: {response.status_code} {response.text}")

    def fire_many(self, name: str, count: int, payload: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Fire ``name`` ``count`` times as fast as the bus takes them."""
        response = self.plugin_command(
            "fire_many", plugin=TEST_PLUGIN_ID, event=name, count=count, payload=dict(payload or {})
        )
        if response.status_code != 200:
            raise OctoPrintError(f"fire_many failed: {response.status_code} {response.text}")
        return response.json()

    def seen_events(self) -> List[Dict[str, Any]]:
        """Events the event bus delivered to tq_test_events (newest last)."""
        response = self.api("GET", f"/api/plugin/{TEST_PLUGIN_ID}")
        response.raise_for_status()
        return response.json()["seen"]

    def server_time(self) -> float:
        """The server process's wall clock (``time.time()``; shifted in clock tests)."""
        response = self.api("GET", f"/api/plugin/{TEST_PLUGIN_ID}")
        response.raise_for_status()
        return response.json()["time"]

    def heartbeat(self, kind: str = "ping") -> None:
        """Run our plugin's ping (or pong) tracker as its timer does; returns once it is stored."""
        response = self.plugin_command("heartbeat", plugin=TEST_PLUGIN_ID, kind=kind)
        if response.status_code != 200:
            raise OctoPrintError(f"heartbeat failed: {response.status_code} {response.text}")

    def wait_for_event(
        self,
        name: str,
        timeout: float = 30,
        predicate: Optional[Callable[[Dict[str, Any]], bool]] = None,
        count: int = 1,
    ) -> Optional[Dict[str, Any]]:
        """Wait until the bus delivered ``name`` (matching ``predicate``) ``count`` times.

        Returns the ``count``-th matching event, or None on timeout.
        """
        found: List[Dict[str, Any]] = []

        def check() -> bool:
            matches = [
                seen for seen in self.seen_events() if seen["event"] == name and (predicate is None or predicate(seen))
            ]
            if len(matches) >= count:
                found.append(matches[count - 1])
                return True
            return False

        return found[0] if _poll(check, timeout, interval=0.2) else None


def _poll(check: Callable[[], bool], timeout: float, interval: float = POLL) -> bool:
    """Bounded polling of an external process's state."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _die_with_parent() -> None:
    # Runs in the child before exec: have Linux SIGKILL the server if the test
    # runner dies without running atexit (SIGKILL, SIGTERM, CI time-out).
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        if server.running:
            server.kill()
