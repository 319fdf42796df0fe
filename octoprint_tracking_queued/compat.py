"""What differs between the Pythons and OctoPrints the plugin runs on, in one place.

The plugin is installed with pip into OctoPrint's own environment, so it must not declare
OctoPrint as a dependency (pip would upgrade the OctoPrint that is installing it). The
supported OctoPrint versions are checked here instead, when OctoPrint loads the plugin
(`__plugin_check__`), and declared in the plugin repository's entry (extras/).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

try:
    from importlib import metadata as importlib_metadata  # novermin (3.7 takes the backport below)
except ImportError:  # Python 3.7: the backport, which OctoPrint 1.11 itself requires there
    import importlib_metadata  # type: ignore[no-redef]

# The oldest OctoPrint the tests run (./dev test); extras/tracking_queued.md says the same.
OCTOPRINT_COMPATIBILITY = ">=1.11.8"

logger = logging.getLogger("octoprint.plugins.tracking_queued")

__all__ = ["OCTOPRINT_COMPATIBILITY", "importlib_metadata", "octoprint_refusal", "octoprint_supported"]


def octoprint_refusal(version: str, compatible: Callable[[str], bool]) -> Optional[str]:
    """Why the plugin must stay inactive on OctoPrint `version`, or None when it may load.

    `compatible(requirement)` is OctoPrint's own test (is_octoprint_compatible), which
    compares the base version: 2.0.0rc7 counts as 2.0.0."""
    if compatible(OCTOPRINT_COMPATIBILITY):
        return None
    return (
        f"Anonymous Usage Tracking (Queued) needs OctoPrint {OCTOPRINT_COMPATIBILITY}, this is OctoPrint "
        f"{version}: not loading it. Update OctoPrint, then restart it."
    )


def octoprint_supported() -> bool:
    """`__plugin_check__`: False keeps the plugin unloaded, after one log line saying why."""
    try:
        from octoprint.util.version import get_octoprint_version_string, is_octoprint_compatible

        refusal = octoprint_refusal(get_octoprint_version_string(), is_octoprint_compatible)
    except Exception:  # an OctoPrint without these helpers is older than any we support
        logger.exception("Could not tell OctoPrint's version, not loading Anonymous Usage Tracking (Queued)")
        return False
    if refusal is not None:
        logger.error(refusal)
        return False
    return True
