"""Every user-visible string is in the template, and every language ships complete and compiled.

When a test here fails after a string was added or reworded: run `./dev babel update`, translate
what it lists in octoprint_tracking_queued/translations/<locale>/LC_MESSAGES/messages.po, then
`./dev babel compile`.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

from tools import i18n

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
        "static/js/tracking_queued_format.js",
    ):
        assert source in text, f"no strings extracted from {source}"
    assert 'msgid "Anonymous Usage Tracking (Queued)"' in text
    # the lazy labels of vocabulary.py (marked with `_`) and its plural forms
    assert 'msgid "Web interface loaded"' in text
    assert 'msgid "Backing off until %(time)s (%(reason)s)"' in text
    assert 'msgid_plural "%(num)d minutes"' in text


def test_the_template_has_every_message_of_the_sources():
    assert i18n.template_is_current() == [], "run ./dev babel update"


def test_german_ships_where_octoprint_looks_for_a_plugins_translations():
    # OctoPrint: <plugin folder>/translations/<locale>/LC_MESSAGES/messages.mo for Python and
    # templates, and the .po beside it for the strings of the plugin's JavaScript.
    folder = REPO / "octoprint_tracking_queued" / "translations" / "de" / "LC_MESSAGES"
    assert (folder / "messages.po").is_file()
    assert (folder / "messages.mo").is_file()
    assert "de" in i18n.locales()


@pytest.mark.parametrize("locale", i18n.locales())
def test_every_message_is_translated_and_compiled(locale):
    report = i18n.report(locale)
    assert report.total > 100
    assert report.missing == [], "not merged into the .po: run ./dev babel update"
    assert report.untranslated == [], "untranslated"
    assert report.fuzzy == [], "fuzzy (a guess by ./dev babel update): check the translation, drop the flag"
    assert report.errors == [], "placeholders differ from the English"
    assert not report.stale_mo, "the .mo is older than the .po: run ./dev babel compile"


def _catalogue(tmp_path: Path, messages: dict, fuzzy=(), mo_messages=None) -> Path:
    """A locale 'xx' under tmp_path with the given translations, and a .mo of mo_messages."""
    folder = tmp_path / "xx" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = Catalog(locale="de")
    for msgid, msgstr in messages.items():
        po.add(msgid, msgstr, flags=["fuzzy"] if msgid in fuzzy else [])
    with (folder / "messages.po").open("wb") as f:
        write_po(f, po)
    mo = Catalog(locale="de")
    for msgid, msgstr in (messages if mo_messages is None else mo_messages).items():
        if msgstr and msgid not in fuzzy:
            mo.add(msgid, msgstr)
    with (folder / "messages.mo").open("wb") as f:
        write_mo(f, mo)
    return tmp_path


def test_the_report_finds_untranslated_fuzzy_missing_and_a_stale_mo(tmp_path, monkeypatch):
    template = Catalog()
    for msgid in ("Done", "Empty", "Guessed", "New", "%(count)d left"):
        template.add(msgid)
    monkeypatch.setattr(
        i18n,
        "CATALOGUES",
        _catalogue(
            tmp_path,
            {"Done": "Fertig", "Empty": "", "Guessed": "Geraten", "%(count)d left": "%(anzahl)d übrig"},
            fuzzy={"Guessed"},
            mo_messages={"Done": "Alt"},
        ),
    )
    report = i18n.report("xx", template)
    assert report.total == 5
    assert report.untranslated == ["Empty"]
    assert report.fuzzy == ["Guessed"]
    assert report.missing == ["New"]
    assert len(report.errors) == 1 and "%(count)d left" in report.errors[0]
    assert report.stale_mo
    assert not report.complete


def test_a_complete_catalogue_passes(tmp_path, monkeypatch):
    template = Catalog()
    template.add("Done")
    monkeypatch.setattr(i18n, "CATALOGUES", _catalogue(tmp_path, {"Done": "Fertig"}))
    report = i18n.report("xx", template)
    assert report.complete, report


def test_a_compiled_plural_matches_its_po(tmp_path, monkeypatch):
    # read_po gives a plural's forms as a tuple, read_mo as a list: the same translation
    template = Catalog()
    template.add(("%(num)d day", "%(num)d days"))
    monkeypatch.setattr(
        i18n, "CATALOGUES", _catalogue(tmp_path, {("%(num)d day", "%(num)d days"): ("%(num)d Tag", "%(num)d Tage")})
    )
    report = i18n.report("xx", template)
    assert report.complete, report
