"""Every user-visible string can be extracted into a catalogue with babel.cfg."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pybabel_extracts_python_jinja_and_js_strings(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-o", str(pot), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = pot.read_text(encoding="utf-8")
    for source in (
        "octoprint_tracking_queued/__init__.py",
        "octoprint_tracking_queued/cli.py",
        "octoprint_tracking_queued/vocabulary.py",
        "templates/tracking_queued_settings.jinja2",
        "templates/tracking_queued_wizard.jinja2",
        "static/js/tracking_queued_helpers.js",
        "static/js/tracking_queued_wizard.js",
        "static/js/tracking_queued_settings.js",
    ):
        assert source in text, f"no strings extracted from {source}"
    assert 'msgid "Anonymous Usage Tracking (Queued)"' in text
    # the lazy labels of vocabulary.py (marked with `_`) and its plural forms
    assert 'msgid "Web interface loaded"' in text
    assert 'msgid "Backing off until %(time)s (%(reason)s)"' in text
    assert 'msgid_plural "%(num)d minutes"' in text
