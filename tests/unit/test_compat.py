"""The OctoPrint version check that replaces the `OctoPrint>=...` dependency.

pip must not upgrade OctoPrint while the plugin manager installs the plugin, so the package
does not depend on it; the plugin refuses to load on an OctoPrint older than the one tested
instead, with one log line saying why (tests/integration/test_install_paths.py: in a server).
"""

import logging

import octoprint.util.version
import pytest
from octoprint.util.version import get_comparable_version, is_octoprint_compatible

import octoprint_tracking_queued as plugin
from octoprint_tracking_queued import compat


def on(version):
    """OctoPrint's own compatibility test, as it answers on OctoPrint `version`."""
    base = get_comparable_version(version, base=True)
    return lambda requirement: is_octoprint_compatible(requirement, octoprint_version=base)


@pytest.mark.parametrize("version", ["1.11.8", "1.11.9", "2.0.0rc7", "2.0.0"])
def test_the_tested_octoprints_and_newer_may_load_it(version):
    assert compat.octoprint_refusal(version, on(version)) is None


@pytest.mark.parametrize("version", ["1.11.7", "1.11.3", "1.10.3", "1.9.3"])
def test_an_older_octoprint_is_refused_with_the_reason(version):
    refusal = compat.octoprint_refusal(version, on(version))
    assert refusal is not None
    assert f"needs OctoPrint {compat.OCTOPRINT_COMPATIBILITY}, this is OctoPrint {version}" in refusal


def test_octoprint_calls_the_check_before_loading(monkeypatch, caplog):
    assert plugin.__plugin_check__ is compat.octoprint_supported
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(octoprint.util.version, "get_octoprint_version_string", lambda: "1.11.7")
    assert plugin.__plugin_check__() is False
    ours = [r for r in caplog.records if r.name == "octoprint.plugins.tracking_queued"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.ERROR, compat.octoprint_refusal("1.11.7", on("1.11.7")))
    ]


def test_the_running_octoprint_passes(caplog):
    assert plugin.__plugin_check__() is True
    assert not [r for r in caplog.records if r.name == "octoprint.plugins.tracking_queued"]
