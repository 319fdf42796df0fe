"""Where the plugin is published, and how OctoPrint's Software Update plugin finds new releases.

The `octoprint.plugin.softwareupdate.check_config` hook: Software Update compares the
newest GitHub release's tag with the installed version and, when asked to update,
`pip install`s that release's source archive. Releases are tagged with the bare version
(`0.2.0`, as in pyproject.toml), so the tag is also the archive's name.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

PLUGIN_ID = "tracking_queued"
DISTRIBUTION = "OctoPrint-TrackingQueued"
DISPLAY_NAME = "Anonymous Usage Tracking (Queued)"
# The one place that names the repository; pyproject.toml, the README and
# extras/tracking_queued.md say the same (tests/unit/test_metadata.py checks).
GITHUB_USER = "OctoPrint-TrackingQueued"
GITHUB_REPO = "OctoPrint-TrackingQueued"
HOMEPAGE = f"https://github.com/{GITHUB_USER}/{GITHUB_REPO}"
# {target_version} is filled in by Software Update with the release's tag.
RELEASE_ARCHIVE = HOMEPAGE + "/archive/{target_version}.zip"


def installed_version() -> str:
    """The version pip installed, as OctoPrint itself reports it for this plugin."""
    from .compat import importlib_metadata

    try:
        return importlib_metadata.version(DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"  # a source copy in OctoPrint's plugin folder: no update checks possible


def check_config(version: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """What Software Update needs to check GitHub releases and update through pip."""
    current = version or installed_version()
    return {
        PLUGIN_ID: {
            "displayName": DISPLAY_NAME,
            "displayVersion": current,
            "type": "github_release",
            "user": GITHUB_USER,
            "repo": GITHUB_REPO,
            "current": current,
            "pip": RELEASE_ARCHIVE,
        }
    }
