"""Issue 16: the plugin installed, upgraded and uninstalled the way users do it.

Each test gets its own copy of a virtualenv that holds OctoPrint alone (the version of the
running leg: ./dev runs this file on 1.11.8 with Python 3.7, 3.11 and 3.13, and on 2.0.0rc7),
and a real `octoprint serve` from it. The plugin manager installs from an archive URL on
127.0.0.1, a zip of the checkout made the way GitHub archives a tag. Its pip is kept off
every index (PIP_NO_INDEX, and the outbound guard as proxy): it finds only a local
wheelhouse with the build backend and persist-queue, so anything else it wanted would fail
the install. Only the test runner fills that wheelhouse and the template venv, from the
index and pip's cache, as tests/integration/test_packaging.py does.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from octoprint_tracking_queued import compat
from tests.harness.api import API, PLUGINS, active, install_plugins, wait_status
from tests.harness.versions import OCTOPRINT, installed_metadata
from tools.basedir import PLUGIN_ID
from tools.server import OctoPrintServer, _poll, free_port

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTION = "OctoPrint-TrackingQueued"
# The previous release, 0.1.0 (CHANGELOG names the commit; no tag was made). It needs Python
# 3.9 or newer, so on 3.7 there is nothing to upgrade from: that leg checks the refusal.
PREVIOUS_RELEASE = "9fa9ad7"
PREVIOUS_INSTALLS = sys.version_info >= (3, 9)
PIP_TIMEOUT = 600  # a build under load on a shared 2-core machine


def pip_list(python: Path) -> Dict[str, str]:
    """`pip list` of a venv: normalised name -> version."""
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}


# ~~ archives, served on 127.0.0.1


def checkout_archive(target: Path, prefix: str) -> Path:
    """A zip of the working tree's files under `prefix/`, as GitHub's archive of a tag is."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(n for n in names if n and (REPO / n).is_file()):
            archive.write(REPO / name, f"{prefix}/{name}")
    return target


def release_archive(target: Path, commit: str, prefix: str) -> Path:
    subprocess.run(
        ["git", "archive", "--format=zip", f"--prefix={prefix}/", "-o", str(target), commit],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return target


class Archives:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="archives", daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return "http://127.0.0.1:%d/%s" % (self._server.server_address[1], name)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archives]:
    folder = tmp_path_factory.mktemp("archives")
    checkout_archive(folder / "main.zip", f"{DISTRIBUTION}-main")
    release_archive(folder / "0.1.0.zip", PREVIOUS_RELEASE, f"{DISTRIBUTION}-0.1.0")
    served = Archives(folder)
    yield served
    served.close()


# ~~ a venv with OctoPrint alone, and the wheelhouse its pip may use


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("template") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    run_pip(python, "install", f"OctoPrint=={OCTOPRINT}")
    return venv


@pytest.fixture(scope="module")
def wheelhouse(template_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The build backend as pyproject.toml asks for it (the newest this Python has; 0.1.0 also
    # wants `wheel`), and persist-queue as this leg runs it.
    folder = tmp_path_factory.mktemp("wheelhouse")
    persist_queue = installed_metadata("persist-queue")["Version"]
    python = template_venv / "bin" / "python"
    run_pip(python, "download", "-d", str(folder), "setuptools>=61", "wheel")  # wheel needs packaging
    run_pip(python, "download", "--no-deps", "-d", str(folder), f"persist-queue=={persist_queue}")
    return folder


def run_pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


class VenvServer(OctoPrintServer):
    """The harness's server, run by the copied venv's Python (so its pip is that venv's)."""

    python: Path

    def command(self) -> List[str]:
        return [str(self.python), *super().command()[1:]]

    def results(self) -> List[Dict[str, Any]]:
        """The plugin manager's result messages so far (tq_test_events keeps them)."""
        return self.api("GET", "/api/plugin/tq_test_events").json()["results"]

    def install(self, url: str) -> Dict[str, Any]:
        """Plugin Manager > Get More... > from URL > Install; returns the result it shows."""
        before = len(self.results())
        response = self.api("POST", "/api/plugin/pluginmanager", json={"command": "install", "url": url})
        assert response.status_code == 200, response.text
        found: List[Dict[str, Any]] = []

        def finished() -> bool:
            found[:] = self.results()[before:]
            return bool(found)

        assert _poll(finished, PIP_TIMEOUT, interval=0.5), "the plugin manager never reported\n" + self.log_tail()
        return found[0]

    def plugins(self) -> Dict[str, Dict[str, Any]]:
        response = self.api("GET", "/plugin/pluginmanager/plugins")
        assert response.status_code == 200, response.text
        return {p["key"]: p for p in response.json()["plugins"]}

    def pip_install(self, archive: Path) -> None:
        """What the plugin manager's install does, without a server: for tests of what comes after."""
        done = subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", "-q", "install", str(archive)],
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            env=self.process_env(),
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def errors_since_last_start(self) -> List[str]:
        text = self.log_text()
        last_start = text.rfind("Starting OctoPrint")
        return [
            line
            for line in text[last_start:].splitlines()
            if " - ERROR - " in line or " - CRITICAL - " in line or line.startswith("Traceback")
        ]


@pytest.fixture
def venv_server(template_venv, wheelhouse, outbound_guard, receiver, tmp_path) -> Iterator[Any]:
    """`make(plugin_settings)`: a stopped server over a fresh copy of the template venv."""
    made: List[VenvServer] = []
    outbound_guard.clear()

    def make(plugin_settings: Dict[str, Any]) -> VenvServer:
        venv = tmp_path / f"venv-{len(made)}"
        shutil.copytree(template_venv, venv, symlinks=True)
        env = {
            **outbound_guard.proxy_env(),
            # The server's pip (the plugin manager's): the wheelhouse only, no pip.conf.
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_CONFIG_FILE": os.devnull,
        }
        server = VenvServer(
            tmp_path / f"basedir-{len(made)}", free_port(), plugin_settings, show_wizards=[PLUGIN_ID], env=env
        )
        server.python = venv / "bin" / "python"
        made.append(server)
        return server

    yield make
    for server in made:
        try:
            server.stop()
        except Exception:
            server.kill()
    attempts = outbound_guard.attempts
    assert not attempts, f"something tried to leave 127.0.0.1: {attempts}"


def assert_installed(result: Dict[str, Any], upgrade: bool = False) -> None:
    assert result["result"] is True, result
    assert result["action"] == "install" and result["needs_restart"], result
    if upgrade and result["plugin"] == "unknown":
        # OctoPrint could not tell the new version from the loaded one (same package and
        # version): it asks for the restart the test does next, which then runs the new code.
        return
    assert result["plugin"]["key"] == PLUGIN_ID, result


# ~~ (a) install


def test_installing_from_an_archive_url_adds_the_plugin_and_persist_queue_and_changes_nothing_else(
    venv_server, archives
):
    server = venv_server({})  # a new user: no settings
    before = pip_list(server.python)
    server.start(timeout=120)
    assert PLUGIN_ID not in server.plugins()

    assert_installed(server.install(archives.url("main.zip")))
    server.restart(timeout=120)

    ours = server.plugins()[PLUGIN_ID]
    assert ours["enabled"] and ours["version"] == installed_metadata(DISTRIBUTION)["Version"]
    # The first-run wizard shows the plugin's step: a decision is required and not yet made.
    wizard = server.api("GET", "/api/setup/wizard").json()[PLUGIN_ID]
    assert wizard["required"] is True and wizard["ignored"] is False
    assert server.api("GET", "/api/version").json()["server"] == OCTOPRINT
    assert server.errors_since_last_start() == []

    after = pip_list(server.python)
    added = {name: after[name] for name in after.keys() - before.keys()}
    assert added.keys() == {"octoprint-trackingqueued", "persist-queue"}, added
    assert before.keys() - after.keys() == set()
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    print(
        f"FIGURE issue 16 pip list of {len(before)} packages: added {added}, changed {changed}, OctoPrint {OCTOPRINT}"
    )
    assert changed == {}, changed


# ~~ (b) upgrade

SETTINGS = {"queue": {"max_records": 4321}, "retry": {"initial_delay": 0.2, "max_delay": 1.0}}

if PREVIOUS_INSTALLS:

    def test_upgrading_the_previous_release_through_the_plugin_manager_sends_every_pending_record(
        venv_server, archives, receiver
    ):
        receiver.stop()  # offline while the previous release runs: its records stay pending
        server = venv_server({**PLUGINS, **SETTINGS, "enabled": True, "server": receiver.url_template})
        server.start(timeout=120)
        assert_installed(server.install(archives.url("0.1.0.zip")))
        server.restart(timeout=120)
        assert server.plugins()[PLUGIN_ID]["enabled"]

        fired = install_plugins(server, [f"before_upgrade_{n}" for n in range(3)])
        wait_status(server, lambda s: s["pending"] >= 3)
        page = server.api("GET", API, params={"records": "pending", "limit": 200}).json()
        pending = {r["id"]: r["event"] for r in page["records"]}
        assert len(pending) == page["total"] >= 3
        settings = server.plugin_settings()
        assert settings["unique_id"]

        assert_installed(server.install(archives.url("main.zip")), upgrade=True)
        server.restart(timeout=120)  # as the plugin manager asks
        assert server.errors_since_last_start() == []
        receiver.start()

        done = wait_status(server, lambda s: active(s) == 0 and s["failed"] == 0, timeout=60)
        arrived = {r["params"].get("event_id") for r in receiver.requests}
        missing = {i: event for i, event in pending.items() if i not in arrived}
        # Every record the previous release left pending arrives, but a heartbeat: the new
        # start's ping supersedes a pending one (counted), as on any restart (README).
        assert set(missing.values()) <= {"ping", "pong"} and len(missing) <= done["superseded"], missing
        assert "ping" in [r["event"] for r in receiver.requests]
        sent_plugins = {r["params"].get("plugin") for r in receiver.requests if r["event"] == "install_plugin"}
        assert set(fired) <= sent_plugins
        assert server.plugin_settings() == settings  # unique_id, the switches, queue and retry kept
        assert server.api("GET", API).json()["max_records"] == 4321

else:

    def test_the_previous_release_is_refused_on_this_python_and_changes_nothing(venv_server, archives):
        # 0.1.0 said Python 3.9+: on 3.7 its users had nothing to upgrade from.
        server = venv_server({})
        before = pip_list(server.python)
        server.start(timeout=120)
        result = server.install(archives.url("0.1.0.zip"))
        assert result["result"] is False, result
        assert pip_list(server.python) == before


# ~~ (c) uninstall


@pytest.mark.parametrize("cleanup", [False, True], ids=["uninstall", "uninstall_and_clean_up"])
def test_uninstalling_through_the_plugin_manager_leaves_what_the_readme_says(venv_server, archives, receiver, cleanup):
    server = venv_server({**PLUGINS, "enabled": True, "server": receiver.url_template})
    server.pip_install(archives.folder / "main.zip")  # the install itself is the first test's
    server.start(timeout=120)
    receiver.stop()
    install_plugins(server, ["left_pending"])
    wait_status(server, lambda s: s["pending"] >= 1)
    settings = server.plugin_settings()
    assert (server.data_folder / "queue.db").is_file() and settings["unique_id"]

    response = server.api(
        "POST", "/api/plugin/pluginmanager", json={"command": "uninstall", "plugin": PLUGIN_ID, "cleanup": cleanup}
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"] is True and response.json()["needs_restart"] is True
    server.restart(timeout=120)

    assert PLUGIN_ID not in server.plugins()
    assert "octoprint-trackingqueued" not in pip_list(server.python)
    assert server.errors_since_last_start() == []  # nothing left behind trips OctoPrint up
    if cleanup:
        # README: the data folder (queue and lock) and plugins.tracking_queued are gone.
        assert not server.data_folder.exists()
        assert not list(server.basedir.rglob("queue.db*"))  # no queue kept anywhere else either
        assert PLUGIN_ID not in (server.read_config().get("plugins") or {})
    else:
        # README: the queue with what is pending, and the settings with the instance id, stay.
        assert (server.data_folder / "queue.db").is_file()
        assert server.plugin_settings() == settings


# ~~ an OctoPrint older than the one tested


def test_an_older_octoprint_loads_without_the_plugin_and_says_why_in_one_line(octoprint_factory):
    server = octoprint_factory(start=False)
    server.command = lambda: older_octoprint_command(server, "1.11.7")  # type: ignore[method-assign]
    server.start()
    assert server.api("GET", "/api/version").json()["server"] == "1.11.7"
    refusal = compat.octoprint_refusal("1.11.7", lambda requirement: False)
    lines = [line for line in server.log_text().splitlines() if "tracking_queued" in line.lower()]
    ours = [line for line in lines if refusal in line]
    assert len(ours) == 1 and " - ERROR - " in ours[0], lines
    assert server.wait_for_log("did not pass check, not loading")
    assert "Traceback" not in server.log_text()
    assert server.api("GET", API).status_code == 404  # not half-loaded: no API, no hooks
    assert PLUGIN_ID not in [p["key"] for p in server.api("GET", "/plugin/pluginmanager/plugins").json()["plugins"]]


def older_octoprint_command(server: OctoPrintServer, version: str) -> List[str]:
    """`octoprint serve` of this venv, telling everyone (the plugin included) it is `version`."""
    command = OctoPrintServer.command(server)
    program = (
        "import octoprint, octoprint.util.version as v; "
        f"octoprint.__version__ = v.__version__ = {version!r}; "
        "octoprint.main()"
    )
    return [command[0], "-c", program, *command[3:]]
