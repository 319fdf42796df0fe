"""The OctoPrint the harness serves: the one installed next to the running Python.

`./dev test` runs pytest from each OctoPrint version's own venv (TQ_OCTOPRINT picks one), and
tools/server.py starts `sys.executable -m octoprint`, so the tests' OctoPrint and the
server's are the same. Tests that expect what differs between versions ask here.
"""

from __future__ import annotations

from importlib.metadata import version

from packaging.version import Version

OCTOPRINT = version("OctoPrint")
# 2.0.0rc7 counts as 2.0, as the plugin itself decides (is_octoprint_compatible on the base version).
OCTOPRINT_2 = Version(OCTOPRINT).release[0] >= 2
