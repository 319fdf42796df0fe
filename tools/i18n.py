"""The plugin's message catalogues: extract, update, compile, and say what is left to translate.

    python -m tools.i18n extract        sources -> translations/messages.pot
    python -m tools.i18n update         extract, merge into every locale's .po, report what is untranslated
    python -m tools.i18n compile        every .po -> .mo (what OctoPrint's Python side reads)
    python -m tools.i18n init LOCALE    start a new language from the template
    python -m tools.i18n check          exit 1 if the template is stale or any catalogue incomplete

`./dev babel ...` runs this. The template lives outside the package (it is only an input for
translators); each language's .po and .mo live inside it, where OctoPrint looks for a plugin's
translations: `<package>/translations/<locale>/LC_MESSAGES/messages.{po,mo}`. OctoPrint reads
the .mo for templates and Python, and the .po itself for the strings of the plugin's JavaScript.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "octoprint_tracking_queued"
MAPPING = ROOT / "babel.cfg"
POT = ROOT / "translations" / "messages.pot"
CATALOGUES = ROOT / PACKAGE / "translations"
DOMAIN = "messages"
PROJECT = "OctoPrint-TrackingQueued"
ISSUES = "https://github.com/OctoPrint-TrackingQueued/OctoPrint-TrackingQueued/issues"
# Besides Babel's defaults (_, gettext, ngettext, N_, ...): flask_babel's lazy variant.
KEYWORDS = ["lazy_gettext"]
# The one header line that changes on every extraction; ignored when deciding whether the template changed.
_CREATION_DATE = re.compile(r'^"POT-Creation-Date: .*"$', re.MULTILINE)


def msgid_key(message_id) -> str:
    """A message's id as one string (plural ids are tuples)."""
    return message_id[0] if isinstance(message_id, (list, tuple)) else message_id


def read_catalog(path: Path, locale: Optional[str] = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def po_path(locale: str) -> Path:
    return CATALOGUES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(locale: str) -> Path:
    return CATALOGUES / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"


def locales() -> List[str]:
    """Every language the package ships a .po for."""
    if not CATALOGUES.is_dir():
        return []
    return sorted(p.parent.parent.name for p in CATALOGUES.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def _version() -> str:
    try:
        from octoprint_tracking_queued.compat import importlib_metadata

        return importlib_metadata.version(PROJECT)
    except Exception:
        return "unknown"


def _pybabel(*args: str) -> None:
    # In process: the same Babel OctoPrint uses, no dependence on a pybabel script on PATH.
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract_to(output: Path) -> None:
    """Write a fresh template of every message in the sources (see babel.cfg) to `output`."""
    keywords: List[str] = []
    for keyword in KEYWORDS:
        keywords += ["-k", keyword]
    _pybabel(
        "extract",
        "-F",
        str(MAPPING),
        *keywords,
        "--add-comments=TRANSLATORS:",
        "--sort-by-file",
        # Only the package holds messages (babel.cfg); skip walking test output and virtualenvs.
        "--ignore-dirs=.* ._ test-output demo-data build dist tests bench",
        f"--project={PROJECT}",
        f"--version={_version()}",
        "--copyright-holder=OctoPrint-TrackingQueued developers",
        f"--msgid-bugs-address={ISSUES}",
        "-o",
        str(output),
        str(ROOT),
    )
    # Locations relative to the repository whatever the working directory was.
    text = output.read_text(encoding="utf-8")
    output.write_text(text.replace(f"{ROOT.as_posix()}/", ""), encoding="utf-8")


def extract() -> bool:
    """Refresh translations/messages.pot; True when its messages changed (not only its date)."""
    POT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        extract_to(fresh)
        new = fresh.read_text(encoding="utf-8")
    old = POT.read_text(encoding="utf-8") if POT.exists() else ""
    if _CREATION_DATE.sub("", old) == _CREATION_DATE.sub("", new):
        return False  # keep the old date: no churn in git for an unchanged template
    POT.write_text(new, encoding="utf-8")
    return True


def update() -> None:
    """Merge the template into every .po; new messages come in untranslated, reworded ones as fuzzy."""
    for locale in locales():
        _pybabel("update", "-i", str(POT), "-d", str(CATALOGUES), "-D", DOMAIN, "-l", locale, "--previous")


def compile_all() -> None:
    """Compile every .po to its .mo. Fuzzy translations are left out (gettext shows the English)."""
    for locale in locales():
        _pybabel("compile", "-d", str(CATALOGUES), "-D", DOMAIN, "-l", locale)


def init(locale: str) -> None:
    _pybabel("init", "-i", str(POT), "-d", str(CATALOGUES), "-D", DOMAIN, "-l", locale)


@dataclass
class Report:
    """What a language still lacks against the template."""

    locale: str
    total: int = 0
    untranslated: List[str] = field(default_factory=list)
    fuzzy: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)  # in the template, not in the .po (update not run)
    errors: List[str] = field(default_factory=list)  # placeholders that do not match the English
    stale_mo: bool = False

    @property
    def complete(self) -> bool:
        return not (self.untranslated or self.fuzzy or self.missing or self.errors or self.stale_mo)


def compiled_messages(catalog: Catalog) -> Dict[str, object]:
    """What `pybabel compile` puts into the .mo: translated, non-fuzzy messages."""
    return {
        msgid_key(m.id): _comparable(m.string)
        for m in catalog
        if m.id and m.string and not m.fuzzy and any(_strings(m.string))
    }


def _comparable(value) -> object:
    # A plural's forms come back from a .po as a tuple, from a .mo as a list.
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _strings(value) -> List[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def mo_matches_po(po: Path, mo: Path) -> bool:
    """True when the .mo holds exactly the translations of the .po."""
    if not mo.exists():
        return False
    with mo.open("rb") as f:
        compiled = read_mo(f)
    in_mo = {msgid_key(m.id): _comparable(m.string) for m in compiled if m.id}
    return in_mo == compiled_messages(read_catalog(po))


def report(locale: str, template: Optional[Catalog] = None) -> Report:
    template = template if template is not None else read_catalog(POT)
    catalog = read_catalog(po_path(locale), locale=locale)
    result = Report(locale)
    for message in template:
        if not message.id:
            continue  # the header
        result.total += 1
        key = msgid_key(message.id)
        translated = catalog.get(message.id)
        if translated is None:
            result.missing.append(key)
        elif translated.fuzzy:
            result.fuzzy.append(key)
        elif not all(_strings(translated.string)):
            result.untranslated.append(key)
    for message, errors in catalog.check():
        for error in errors:
            result.errors.append(f"{msgid_key(message.id)!r}: {error}")
    result.stale_mo = not mo_matches_po(po_path(locale), mo_path(locale))
    return result


def template_is_current() -> List[str]:
    """Messages in the sources missing from translations/messages.pot, and ones the sources no longer have."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        extract_to(fresh)
        in_sources = {msgid_key(m.id) for m in read_catalog(fresh) if m.id}
    in_pot = {msgid_key(m.id) for m in read_catalog(POT) if m.id} if POT.exists() else set()
    return [f"new: {m}" for m in sorted(in_sources - in_pot)] + [f"gone: {m}" for m in sorted(in_pot - in_sources)]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 90 else line[:87] + "..."


def print_report(out: io.TextIOBase = sys.stdout) -> bool:
    """One line per language and a list of what is left; True when every language is complete."""
    template = read_catalog(POT)
    ok = True
    for locale in locales():
        r = report(locale, template)
        done = r.total - len(r.untranslated) - len(r.fuzzy) - len(r.missing)
        out.write(
            f"{locale}: {done} of {r.total} translated, {len(r.untranslated) + len(r.missing)} untranslated, "
            f"{len(r.fuzzy)} fuzzy{', .mo out of date' if r.stale_mo else ''}\n"
        )
        for key in r.untranslated + r.missing:
            out.write(f"  untranslated: {_first_line(key)}\n")
        for key in r.fuzzy:
            out.write(f"  fuzzy (check, then remove the fuzzy flag): {_first_line(key)}\n")
        for error in r.errors:
            out.write(f"  error: {error}\n")
        ok = ok and r.complete
    return ok


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev babel", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("extract", help="sources -> translations/messages.pot")
    sub.add_parser("update", help="extract, then merge into every .po and report what is left")
    sub.add_parser("compile", help="every .po -> .mo")
    sub.add_parser("check", help="fail if the template is stale or a catalogue incomplete")
    new = sub.add_parser("init", help="start a new language")
    new.add_argument("locale")
    args = parser.parse_args(argv)

    if args.command == "extract":
        print("translations/messages.pot " + ("updated" if extract() else "unchanged"))
        return 0
    if args.command == "update":
        extract()
        update()
        print_report()
        print("Translate the messages above in the .po files, then run: ./dev babel compile")
        return 0
    if args.command == "compile":
        compile_all()
        print_report()
        return 0
    if args.command == "init":
        init(args.locale)
        print(f"Created {po_path(args.locale).relative_to(ROOT)}")
        return 0
    stale = template_is_current()
    for line in stale:
        print(f"messages.pot is out of date ({line}); run ./dev babel update")
    complete = print_report()
    return 0 if complete and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
