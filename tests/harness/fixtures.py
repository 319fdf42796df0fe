"""Fixtures for tests against a real ``octoprint serve`` process.

A pytest plugin, registered by tests/conftest.py, so that every suite
(integration, browser) gets the same ``receiver`` and ``octoprint_factory``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

import pytest

from tests.harness.browser import chromium_launch_options
from tools.basedir import deep_merge
from tools.collector import Collector
from tools.guard import OutboundGuard
from tools.receiver import Receiver
from tools.server import OctoPrintServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# ./dev test points this at test-output/; logs of failed tests are kept there.
TEST_OUTPUT = Path(os.environ.get("TQ_TEST_OUTPUT", REPO_ROOT / "test-output"))


def default_plugin_settings(receiver: Receiver) -> Dict[str, Any]:
    """Our plugin on, sending to ``receiver``, timers out of the way, fast retries."""
    return {
        "enabled": True,
        "server": receiver.url_template,
        "ping": 86400,
        "pong": 86400,
        "retry": {"initial_delay": 0.2, "max_delay": 1.0},
    }


# Tests marked `network` reach the package index; every other test talks only to 127.0.0.1.
NETWORK = os.environ.get("TQ_NETWORK") == "1"
_deselected_network: List[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if NETWORK:
        return
    network = [item for item in items if item.get_closest_marker("network")]
    if network:
        _deselected_network.extend(item.nodeid for item in network)
        config.hook.pytest_deselected(items=network)
        items[:] = [item for item in items if not item.get_closest_marker("network")]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _deselected_network:
        terminalreporter.write_line(
            f"{len(_deselected_network)} test(s) that reach the package index not run (TQ_NETWORK=1 runs them): "
            + ", ".join(_deselected_network)
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    # Remember each phase's outcome on the item so fixtures can tell at
    # teardown whether the test failed (and keep its logs).
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def outbound_guard() -> Iterator[OutboundGuard]:
    """Proxy that refuses and records any request leaving loopback."""
    guard = OutboundGuard().start()
    yield guard
    guard.stop()


@pytest.fixture
def browser_launch_options(outbound_guard: OutboundGuard) -> Dict[str, Any]:
    """``playwright.chromium.launch(**browser_launch_options)``: Debian's Chromium, kept on loopback."""
    return chromium_launch_options(outbound_guard)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A started tracking receiver on 127.0.0.1 (random port)."""
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A started strict OTLP/HTTP collector stand-in on 127.0.0.1 (random port)."""
    c = Collector().start()
    yield c
    c.stop()


OctoPrintFactory = Callable[..., OctoPrintServer]


@pytest.fixture
def octoprint_factory(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
    outbound_guard: OutboundGuard,
) -> Iterator[OctoPrintFactory]:
    """Make OctoPrint servers in tmp_path; all are stopped (or killed) at teardown.

    ``octoprint_factory(plugin_settings=None, extra_config=None, start=True, **kwargs)``
    ``plugin_settings`` are merged over default_plugin_settings(receiver);
    kwargs go to OctoPrintServer (show_wizards, env, port, basedir).
    """
    servers: List[OctoPrintServer] = []
    outbound_guard.clear()

    def make(
        plugin_settings: Optional[Mapping[str, Any]] = None,
        extra_config: Optional[Mapping[str, Any]] = None,
        start: bool = True,
        start_timeout: float = 60,
        **kwargs: Any,
    ) -> OctoPrintServer:
        basedir = kwargs.pop("basedir", None) or tmp_path / f"octoprint-{len(servers)}"
        port = kwargs.pop("port", None) or free_port()
        env = {**outbound_guard.proxy_env(), **(kwargs.pop("env", None) or {})}
        server = OctoPrintServer(
            basedir,
            port,
            deep_merge(default_plugin_settings(receiver), plugin_settings),
            extra_config,
            env=env,
            **kwargs,
        )
        servers.append(server)
        if start:
            server.start(timeout=start_timeout)
        return server

    yield make

    for server in servers:
        try:
            server.stop(timeout=30)
        except Exception:
            server.kill()  # stop() recorded why (server.stops)

    # A shutdown that hangs or ends with an error is a failure of the test, never hidden:
    # every SIGTERM, the test's own and this teardown's, must end in exit 0.
    bad = [
        f"server {index} ({server.basedir.name}): {how}"
        for index, server in enumerate(servers)
        for how in server.stops
        if how != "exit 0"
    ]
    failed = any(getattr(getattr(request.node, "rep_" + phase, None), "failed", False) for phase in ("setup", "call"))
    if failed or bad:
        _keep_logs(request.node.nodeid, servers)
    if bad:
        pytest.fail("OctoPrint did not shut down cleanly: " + "; ".join(bad))

    attempts = outbound_guard.attempts
    if attempts:
        pytest.fail(
            "OctoPrint tried to reach outside hosts (refused by the test proxy): "
            + ", ".join(f"{a['method']} {a['target']}" for a in attempts)
        )


def _output_dir_for(nodeid: str) -> Path:
    return TEST_OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)


@pytest.fixture
def test_output(request: pytest.FixtureRequest) -> Path:
    """A per-test folder under test-output/ for screenshots and other artefacts."""
    path = _output_dir_for(request.node.nodeid)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _keep_logs(nodeid: str, servers: List[OctoPrintServer]) -> None:
    target = _output_dir_for(nodeid)
    for index, server in enumerate(servers):
        dest = target / f"server-{index}"
        dest.mkdir(parents=True, exist_ok=True)
        for source in (server.serve_log_path, server.config_path):
            if source.exists():
                shutil.copy2(source, dest / source.name)
        logs = server.basedir / "logs"
        if logs.is_dir():
            shutil.rmtree(dest / "logs", ignore_errors=True)  # no copytree(dirs_exist_ok) before 3.8
            shutil.copytree(logs, dest / "logs")
