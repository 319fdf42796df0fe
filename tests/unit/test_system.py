"""system.py: the environment report (startup, pong) and the Raspberry Pi throttle state."""

import os
import stat

import pytest

from octoprint_tracking_queued import system


def test_environment_payload_tolerates_missing_detection():
    # The bundled plugin raises here (KeyError); ours sends what it knows. The full payload is
    # compared with the bundled plugin's own in test_bundled_oracle.py.
    assert system.environment_payload(None, "1.11.8") == {"version": "1.11.8"}
    assert system.environment_payload({"os": "weird"}, "1") == {"version": "1"}


@pytest.mark.parametrize(
    "output,expected",
    [
        ("throttled=0x0\n", dict(raw_value=0, current_issue=False, past_issue=False)),
        (
            "throttled=0x50005\n",
            dict(
                raw_value=0x50005,
                current_issue=True,
                past_issue=True,
                current_undervoltage=True,
                past_undervoltage=True,
            ),
        ),
        ("throttled=0x20000\n", dict(raw_value=0x20000, current_issue=False, past_issue=True, past_overheat=True)),
    ],
)
def test_parse_vcgencmd(output, expected):
    state = system.parse_vcgencmd(output)
    for key, value in expected.items():
        assert state[key] == value
    assert system.parse_vcgencmd("VCHI initialization failed") is None


def _fake_command(tmp_path, body):
    path = tmp_path / "vcgencmd"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_read_vcgencmd_runs_the_command_on_path(tmp_path, monkeypatch):
    _fake_command(tmp_path, 'test "$1" = get_throttled && echo "throttled=0x50000"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    state = system.read_vcgencmd()
    assert state["raw_value"] == 0x50000 and state["past_issue"] and not state["current_issue"]


def test_read_vcgencmd_failing_or_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert system.read_vcgencmd() is None  # not installed
    _fake_command(tmp_path, "echo oops; exit 1")
    assert system.read_vcgencmd() is None


def test_throttle_source_prefers_pi_support_and_caches():
    calls = []
    source = system.ThrottleSource(pi_helper=lambda: calls.append(1) or {"current_issue": True})
    assert source.current() == {"current_issue": True}
    source.refresh()  # never runs vcgencmd when pi_support is there
    fallback = system.ThrottleSource(reader=lambda: {"current_issue": False, "raw_value": 0})
    assert fallback.current() is None
    fallback.refresh()
    assert fallback.current()["raw_value"] == 0
    fallback.update({"current_issue": True, "raw_value": 5})
    assert fallback.current()["raw_value"] == 5
