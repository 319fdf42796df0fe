"""Issue 18: free texts lose Unicode control (Cc) and format (Cf) characters before they are
stored, through every channel that reaches a record; texts without them are untouched."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, Callable

import pytest

from octoprint_tracking_queued import catalogue, records, texts
from octoprint_tracking_queued.config import EVENT_SWITCHES

PAYLOADS = Path(__file__).resolve().parent / "payloads"
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
INSTALL_PLUGIN = "plugin_pluginmanager_install_plugin"
UPDATE_FAILED = "plugin_softwareupdate_update_failed"

# (what it is, the character): dropped
HIDDEN = [
    ("right-to-left override", "\u202e"),
    ("left-to-right embedding", "\u202a"),
    ("pop directional formatting", "\u202c"),
    ("right-to-left isolate", "\u2067"),
    ("first strong isolate", "\u2068"),
    ("pop directional isolate", "\u2069"),
    ("right-to-left mark", "\u200f"),
    ("arabic letter mark", "\u061c"),
    ("zero width space", "\u200b"),
    ("zero width joiner", "\u200d"),
    ("word joiner", "\u2060"),
    ("byte order mark", "\ufeff"),
    ("soft hyphen", "\u00ad"),
    ("tag character", "\U000e0041"),
    ("nul", "\x00"),
    ("escape", "\x1b"),
    ("delete", "\x7f"),
    ("c1 control sequence introducer", "\x9b"),
]
# Control characters that separate words: a space in their place.
BREAKS = [("line feed", "\n"), ("carriage return", "\r"), ("tab", "\t"), ("next line", "\x85")]


def ctx(private_words: tuple = ()) -> records.Context:
    return records.Context(
        unique_id=UID,
        switches={name: True for name in EVENT_SWITCHES},
        now=1.0,
        new_id=lambda: "rid",
        private_words=private_words,
    )


def from_event(event: str, payload: dict, octoprint_2: bool = False) -> dict:
    return catalogue.RecordMaker(octoprint_2).from_event(event, payload, ctx())


def firmware(name: str) -> dict:
    maker = catalogue.RecordMaker()
    maker.from_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, ctx())
    return maker.from_event("FirmwareData", {"name": name}, ctx())


def webui(field: str) -> Callable[[str], dict]:
    def make(text: str) -> dict:
        payload = {key: "x" for key in records.WEBUI_KEYS}
        payload[field] = text
        return records.webui_load(payload, ctx())

    return make


# (channel, record from a text, the parameter the text lands in)
CHANNELS: list[tuple[str, Callable[[str], dict], str]] = [
    *((f"webui_load {key}", webui(key), key) for key in records.WEBUI_KEYS),
    ("plugin name", lambda t: from_event(INSTALL_PLUGIN, {"id": t, "version": "1"}), "plugin"),
    ("plugin version", lambda t: from_event(INSTALL_PLUGIN, {"id": "p", "version": t}), "plugin_version"),
    *(
        (f"update {key}", lambda t, k=key: from_event(UPDATE_FAILED, {k: t}), key)
        for key in ("target", "from_version", "to_version")
    ),
    ("firmware error text", lambda t: from_event("Error", {"reason": "firmware", "error": t}), "commerror_text"),
    (
        "print failure error text",
        lambda t: from_event("PrintFailed", {"path": "a.gcode", "reason": "error", "error": t}),
        "commerror_text",
    ),
    ("print failure reason", lambda t: from_event("PrintFailed", {"path": "a.gcode", "reason": t}), "reason"),
    ("print origin", lambda t: from_event("PrintDone", {"path": "a.gcode", "origin": t}), "origin"),
    (
        "print connector (2.0)",
        lambda t: from_event("PrintDone", {"path": "a.gcode", "connector": t}, True),
        "printer_connector",
    ),
    ("firmware name", firmware, "firmware_name"),
    (
        "safety check name",
        lambda t: from_event(records.SAFETY_EVENTS[1], {"warning_type": "w", "check_name": t}),
        "printer_safety_check_name",
    ),
    (
        "safety warning type",
        lambda t: from_event(records.SAFETY_EVENTS[0], {"warning_type": t, "check_name": "c"}),
        "printer_safety_warning_type",
    ),
    ("slicer name", lambda t: from_event("SlicingStarted", {"slicer": t}), "slicer"),
    ("achievement", lambda t: from_event(records.ACHIEVEMENT_EVENT, {"key": t}), "achievement"),
    ("environment (startup)", lambda t: records.startup({"os": t}, ctx()), "os"),
    ("plugin list (pong)", lambda t: records.pong({}, [(t, "1")], None, ctx()), "plugins"),
]
CHANNEL_IDS = [name for name, _, _ in CHANNELS]


def captured(version: str) -> list:
    """The payloads a real server of that version delivered (see test_records_parity.py)."""
    return json.loads((PAYLOADS / f"{version}.json").read_text(encoding="utf-8"))["events"]


def hidden_in(value: Any) -> list[str]:
    return [c for c in value if unicodedata.category(c) in texts.HIDDEN_CATEGORIES] if isinstance(value, str) else []


def expected(param: str, text: str) -> str:
    return f"{text}:1" if param == "plugins" else text  # the pong list adds the version


@pytest.mark.parametrize("channel, make, param", CHANNELS, ids=CHANNEL_IDS)
@pytest.mark.parametrize("name, char", HIDDEN, ids=[name for name, _ in HIDDEN])
def test_format_and_control_characters_are_dropped(channel, make, param, name, char):
    record = make(f"ab{char}cd{char}")
    assert record["params"][param] == expected(param, "abcd")
    assert not [v for v in record["params"].values() if hidden_in(v)]


@pytest.mark.parametrize("channel, make, param", CHANNELS, ids=CHANNEL_IDS)
@pytest.mark.parametrize("name, char", BREAKS, ids=[name for name, _ in BREAKS])
def test_line_breaks_and_tabs_become_a_space(channel, make, param, name, char):
    assert make(f"ab{char}cd")["params"][param] == expected(param, "ab cd")


@pytest.mark.parametrize("channel, make, param", CHANNELS, ids=CHANNEL_IDS)
def test_visible_text_is_kept_as_sent(channel, make, param):
    # Right-to-left script, combining marks, emoji, CJK and a no-break space are text, not format.
    text = "שלום ñ e\u0301 \U0001f600 中文\u00a0x"
    assert make(text)["params"][param] == expected(param, text)


def test_a_hidden_character_does_not_hide_a_word_from_the_scrubbers():
    context = ctx(private_words=("alice",))
    text = "ali\u200bce mailed bob\u200d@example.com from 10.0.\u200c0.1"
    record = catalogue.RecordMaker().from_event("Error", {"reason": "firmware", "error": text}, context)
    assert record["params"]["commerror_text"] == "<user> mailed <email> from <ip>"
    assert texts.scrub(text, ("alice",)) == "<user> mailed <email> from <ip>"  # also when called alone


def test_a_text_of_hidden_characters_only_is_missing():
    with pytest.raises(records.BadPayload, match="browser_name"):
        webui("browser_name")("\u202e\u200b")
    assert from_event(records.SAFETY_EVENTS[0], {"warning_type": "\u202e", "check_name": "\u2066"})["params"] == {
        "printer_safety_warning_type": "unknown",
        "printer_safety_check_name": "unknown",
    }


def test_the_file_hash_is_made_of_the_path_as_given():
    # Hashed, never sent: it must stay the bundled plugin's hash of the real path.
    plain = from_event("PrintDone", {"path": "a.gcode"})["params"]["file"]
    marked = from_event("PrintDone", {"path": "a\u202e.gcode"})["params"]["file"]
    assert plain != marked


def test_a_megabyte_of_hidden_characters_is_cut_before_it_is_walked():
    record = from_event("Error", {"reason": "firmware", "error": "\u200b" * 1_000_000 + "late"})
    assert record["params"]["commerror_text"] == ""  # only the first READ_LIMIT characters are read


@pytest.mark.parametrize("version, octoprint_2", [("1.11.8", False), ("2.0.0rc7", True)])
def test_captured_payloads_give_byte_identical_records(monkeypatch, version, octoprint_2):
    """The real payloads hold no such characters: their records are what they were before."""

    def make_all() -> list[str]:
        maker = catalogue.RecordMaker(octoprint_2=octoprint_2)
        made = [maker.from_event(item["event"], item["payload"], ctx()) for item in captured(version)]
        return [json.dumps(record, sort_keys=True, ensure_ascii=False) for record in made if record]

    with_stripping = make_all()
    monkeypatch.setattr(texts, "visible", lambda text: text)
    assert with_stripping and make_all() == with_stripping
