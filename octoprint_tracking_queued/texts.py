"""What every text from outside goes through before it is stored or sent: invisible characters
removed, anything private scrubbed, values made JSON- and URL-safe and cut to size."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Iterable, Mapping, Optional

# Longest text we send; a firmware that spams kilobytes of error text must not fill the queue.
TEXT_LIMIT = 200
# Lists of plugins/achievements are long by nature.
LIST_LIMIT = 4096
LONG_PARAMS = {"plugins", "achievements"}
# Scrubbing may shorten a text (a long URL becomes "<url>"), so it looks a little further.
SCRUB_LIMIT = 4 * TEXT_LIMIT
# How much of an outside text is read at all: removing invisible characters and scrubbing
# cost time per character, and a firmware can send a megabyte on the event thread.
READ_LIMIT = 4 * SCRUB_LIMIT
# Unicode control (Cc) and format (Cf) characters: bidi overrides and isolates, zero-width
# spaces and joiners, soft hyphens, tags, escape sequences. They can make one text look like
# another in the inspector and on the tracking server, and hide a word from the scrubbers.
HIDDEN_CATEGORIES = ("Cc", "Cf")

_SCRUBBERS = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    # IPv6: needs "::" or four colons, so times like 12:30:45 stay.
    (
        re.compile(
            r"(?<![\w:])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{0,4}:){4})[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])"
        ),
        "<ip>",
    ),
    (re.compile(r"(?<![\w.:/<])(?:[A-Za-z]:\\|~?/)[A-Za-z_.~-][^\s'\"]*"), "<path>"),
    # API keys and other secrets: long runs of letters and digits mixed (an error text
    # that quotes a request or a config line can carry one).
    (re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}(?![\w-])"), "<token>"),
)


def visible(text: str) -> str:
    """`text` without control and format characters; a line break or tab becomes a space,
    so the words on either side stay apart."""
    if text.isprintable():  # none of them: the common case costs one pass in C
        return text
    return "".join(
        (" " if char.isspace() else "") if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text
    )


def scrub(text: str, private_words: Iterable[str] = ()) -> str:
    """Removes invisible characters, URLs, e-mail and IP addresses, file paths, tokens and `private_words`."""
    # The patterns backtrack quadratically on long runs of word characters (1 MB of
    # firmware noise took most of an hour on the event thread); only what can still
    # end up in the TEXT_LIMIT characters we send is scrubbed. Invisible characters go
    # first: "alice\u200b@example.com" must not slip past the e-mail pattern.
    text = visible(text[:READ_LIMIT])[:SCRUB_LIMIT]
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    for word in private_words:
        if len(word) >= 3:
            text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "<user>", text, flags=re.IGNORECASE)
    return text


def scalar(name: str, value: Any) -> Any:
    """A JSON- and URL-safe parameter value, or None to leave the parameter out."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    limit = LIST_LIMIT if name in LONG_PARAMS else TEXT_LIMIT
    # Lone surrogates (a non-UTF-8 file or port name decoded by the OS) cannot be URL-encoded;
    # such a record would fail to send forever and hold up the queue behind it. Every text
    # parameter, whichever way it came in, loses its invisible characters.
    value = visible(value[: 4 * limit].encode("utf-8", "replace").decode("utf-8"))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def text(payload: Mapping[str, Any], key: str, raw: bool = False) -> Optional[str]:
    """A text from outside, without invisible characters (so "unknown" and "missing" apply to
    a text of nothing else); `raw`: as given, for what is hashed rather than sent."""
    value = payload.get(key)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    return value if raw else visible(value[:READ_LIMIT])
