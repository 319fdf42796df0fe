"""The OctoPrint the harness serves: the one installed next to the running Python.

`./dev test` runs pytest from each OctoPrint version's own venv (TQ_OCTOPRINT picks one), and
tools/server.py starts `sys.executable -m octoprint`, so the tests' OctoPrint and the
server's are the same. Tests that expect what differs between versions ask here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from packaging.version import Version

from octoprint_tracking_queued.compat import importlib_metadata

REPO = Path(__file__).resolve().parents[2]
OCTOPRINT = importlib_metadata.version("OctoPrint")
# 2.0.0rc7 counts as 2.0, as the plugin itself decides (is_octoprint_compatible on the base version).
OCTOPRINT_2 = Version(OCTOPRINT).release[0] >= 2


def installed_metadata(distribution: str) -> Any:
    """The metadata pip installed for `distribution` (its .dist-info in the venv).

    Not importlib's first find: the checkout is on sys.path (pytest's pythonpath), and the
    editable build leaves an .egg-info there, written by whichever venv's setuptools built
    last (68 on Python 3.7, which writes no License-Expression and keeps Requires-Dist out
    of PKG-INFO)."""
    paths = [p for p in sys.path if Path(p or ".").resolve() != REPO]
    found = list(importlib_metadata.Distribution.discover(name=distribution, path=paths))
    assert found, f"{distribution} is not installed"
    return found[0].metadata
