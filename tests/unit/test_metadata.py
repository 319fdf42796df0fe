"""What OctoPrint's plugin manager and Software Update read about the plugin, and what PyPI would."""

from pathlib import Path

import octoprint_tracking_queued as plugin
from octoprint_tracking_queued import updates
from tests.harness.versions import installed_metadata

REPO = Path(__file__).resolve().parents[2]
# What pip recorded from pyproject.toml (./dev reinstalls whenever pyproject.toml changes);
# tests/integration/test_packaging.py checks the same in a freshly built wheel.
META = installed_metadata(updates.DISTRIBUTION)
URLS = dict(url.split(", ", 1) for url in META.get_all("Project-URL"))
HOOK = "octoprint.plugin.softwareupdate.check_config"


def test_software_update_checks_github_releases_and_installs_the_tagged_archive():
    config = updates.check_config("0.1.0")
    assert list(config) == ["tracking_queued"]  # keyed by the plugin's identifier
    check = config["tracking_queued"]
    assert check["type"] == "github_release"
    assert (check["user"], check["repo"]) == ("OctoPrint-TrackingQueued", "OctoPrint-TrackingQueued")
    assert check["current"] == check["displayVersion"] == "0.1.0"
    assert check["displayName"] == plugin.__plugin_name__
    # Software Update fills in the release's tag before it runs pip.
    assert check["pip"].format(target_version="0.2.0") == (
        "https://github.com/OctoPrint-TrackingQueued/OctoPrint-TrackingQueued/archive/0.2.0.zip"
    )


def test_the_hook_is_registered_and_reports_the_installed_version():
    hook = plugin.__plugin_hooks__[HOOK]
    check = hook()["tracking_queued"]  # Software Update calls it without arguments
    assert check["current"] == META["Version"] == updates.installed_version()


def test_an_uninstalled_copy_reports_an_unknown_version(monkeypatch):
    monkeypatch.setattr(updates, "DISTRIBUTION", "OctoPrint-TrackingQueued-not-installed")
    assert updates.check_config()["tracking_queued"]["current"] == "unknown"


def test_plugin_url_privacy_policy_and_license():
    assert plugin.__plugin_url__ == updates.HOMEPAGE
    # The tracking server's policy: that is where the data goes (the wizard links it too).
    assert plugin.__plugin_privacypolicy__ == "https://tracking.octoprint.org/privacy"
    wizard = (REPO / "octoprint_tracking_queued" / "templates" / "tracking_queued_wizard.jinja2").read_text()
    assert plugin.__plugin_privacypolicy__ in wizard
    # setup.py writes the SPDX expression where setuptools knows it (77+, Python 3.9+), and the
    # free-text field where it does not (Python 3.7 builds with setuptools 68 at most).
    written = META["License-Expression"] if "License-Expression" in META else META["License"]
    assert plugin.__plugin_license__ == written == "AGPL-3.0-only"


def test_the_distribution_has_an_spdx_license_with_its_text_and_the_project_urls():
    assert META.get_all("License-File") == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in text and "Version 3, 19 November 2007" in text

    urls = URLS
    assert urls["Homepage"] == urls["Source"] == updates.HOMEPAGE
    assert urls["Issues"] == updates.HOMEPAGE + "/issues"
    assert urls["Changelog"].startswith(updates.HOMEPAGE + "/") and urls["Changelog"].endswith("/CHANGELOG.md")
    assert urls["Privacy policy"] == plugin.__plugin_privacypolicy__


def test_the_catalogue_tooling_names_the_same_repository():
    from tools import i18n

    assert i18n.ISSUES == URLS["Issues"]
    assert i18n.PROJECT == META["Name"] == updates.DISTRIBUTION
