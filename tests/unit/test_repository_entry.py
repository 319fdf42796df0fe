"""extras/tracking_queued.md: the entry for plugins.octoprint.org, kept true to the package."""

import datetime
import re
from pathlib import Path

import yaml

import octoprint_tracking_queued as plugin
from octoprint_tracking_queued import compat, updates
from tests.harness.versions import installed_metadata

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "extras" / "tracking_queued.md"
SCREENSHOTS = REPO / "extras" / "screenshots"
META = installed_metadata(updates.DISTRIBUTION)


def front_matter_and_text():
    _, front, text = ENTRY.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(front), text


def test_front_matter_has_what_the_plugin_repository_requires():
    entry, _ = front_matter_and_text()
    assert entry["layout"] == "plugin"
    assert entry["id"] == updates.PLUGIN_ID  # must be the identifier OctoPrint registers
    assert entry["title"] == plugin.__plugin_name__
    assert entry["description"].strip()
    assert entry["authors"] and all(isinstance(a, str) for a in entry["authors"])
    assert entry["license"] == plugin.__plugin_license__
    assert isinstance(entry["date"], datetime.date)
    assert entry["homepage"] == entry["source"] == updates.HOMEPAGE
    assert entry["archive"].startswith(updates.HOMEPAGE + "/archive/") and entry["archive"].endswith(".zip")
    assert entry["privacypolicy"] == plugin.__plugin_privacypolicy__
    assert entry["tags"] and all(isinstance(t, str) for t in entry["tags"])


def test_it_is_marked_as_sending_data_to_a_cloud():
    entry, _ = front_matter_and_text()
    assert "cloud" in entry["attributes"]
    assert set(entry["attributes"]) <= {"cloud", "commercial", "free-tier", "ai-developed"}


def test_compatibility_says_what_the_package_says():
    compatibility = front_matter_and_text()[0]["compatibility"]
    # Not a dependency (pip would upgrade OctoPrint while the plugin manager installs us):
    # the repository entry and the plugin's load check say which OctoPrint it needs.
    assert not [r for r in META.get_all("Requires-Dist") if re.match(r"octoprint\b", r, re.I)]
    assert compatibility["octoprint"] == [compat.OCTOPRINT_COMPATIBILITY]
    assert compatibility["python"] == plugin.__plugin_pythoncompat__
    assert set(compatibility["python"].split(",")) == set(META["Requires-Python"].split(","))
    assert set(compatibility["os"]) <= {"linux", "windows", "macos", "freebsd"}
    assert "windows" not in compatibility["os"]  # the queue lock needs fcntl


def test_the_text_says_first_that_usage_data_is_sent_and_only_after_an_opt_in():
    _, text = front_matter_and_text()
    first_paragraph = text.strip().split("\n\n")[0].lower()
    assert "sends usage data" in first_paragraph
    assert "only after you opted in" in first_paragraph
    assert "wizard" in first_paragraph


def test_every_screenshot_is_in_extras_and_made_by_a_browser_test():
    entry, _ = front_matter_and_text()
    urls = [s["url"] for s in entry["screenshots"]] + [entry["featuredimage"]]
    browser_tests = "".join(p.read_text(encoding="utf-8") for p in (REPO / "tests" / "browser").glob("test_*.py"))
    for url in urls:
        assert url.startswith("/assets/img/plugins/tracking_queued/") and url.endswith(".png")
        name = url.rsplit("/", 1)[1]
        assert (SCREENSHOTS / name).is_file(), f"run ./dev screenshots ({name} missing)"
        assert f'screenshot(page, "{name[: -len(".png")]}")' in browser_tests, f"no browser test makes {name}"
    for shot in entry["screenshots"]:
        assert shot["alt"].strip() and shot["caption"].strip()
