"""The language an email is written in, for search's stemming (pure: no database).

An email's language is its ``Content-Language`` header when that names one, else what
CLD2 (Chromium's compact language detector, through pycld2: Apache 2.0, about 0.1 ms
for 4 KB of text) finds in its text, when the text is long enough for CLD2 to call its
answer reliable; else unknown (``None``). A language is its lower-case primary subtag
of BCP 47 (``en``, ``de``, ``pt``): what stemming needs, not the region.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pycld2

# CLD2 reads this many characters at most: the start of an email says its language,
# and the cost stays bounded whatever the size of the text. Over the 938 sample
# messages under tests/emails, 2,048 gives the answer 4,096 gives for all but one
# (which 4,096 left unknown and 2,048 finds English), at about half the cost for a
# longer text (0.09 -> 0.04 ms for 4 KB of English).
SAMPLE_CHARS = 2048
# Below this many bytes of letters CLD2 guesses: "Thanks!" or "ok" is no language.
MIN_TEXT_BYTES = 40

# A primary language subtag (RFC 5646 2.2.1); "i-" and "x-" tags have a 1-letter one.
_PRIMARY = re.compile(r"[A-Za-z]{2,3}")
# Not a language: undetermined, multiple, no linguistic content, uncoded.
_NOT_A_LANGUAGE = frozenset({"und", "mul", "zxx", "mis"})
# CLD2 still answers with some codes ISO 639 withdrew.
_RENAMED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "tl": "fil"}
# CLD2 refuses control characters (other than tab and line ends) as invalid UTF-8.
# They are ASCII, so in UTF-8 each is its own byte, never part of another character's:
# replaced in the encoded bytes (a table look-up a byte, where a regex over the text
# cost a third of CLD2's own time).
_CONTROL_TO_SPACE = bytes.maketrans(
    bytes([*range(0x00, 0x09), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f]), b" " * 30)


def content_language(headers: Iterable[tuple[str, str]]) -> str | None:
    """The language the first ``Content-Language`` header names (its first tag, as in
    ``de-DE, en``), or ``None`` when there is none or it names no language."""
    for name, value in headers:
        if name.lower() != "content-language":
            continue
        tag = value.split(",")[0].strip()
        primary = tag.split("-")[0]
        if not _PRIMARY.fullmatch(primary) or primary.lower() in _NOT_A_LANGUAGE:
            return None
        return _RENAMED.get(primary.lower(), primary.lower())
    return None


def detect(text: str) -> str | None:
    """The language of ``text`` (its first ``SAMPLE_CHARS`` characters), or ``None``
    when it is too short, or mixed or unlike any language CLD2 knows."""
    sample = text[:SAMPLE_CHARS].encode("utf-8", "replace").translate(_CONTROL_TO_SPACE)
    try:
        reliable, text_bytes, found = pycld2.detect(sample, isPlainText=True)
    except pycld2.error:  # what it still takes for invalid UTF-8
        return None
    code = str(found[0][1]).split("-")[0].lower()  # zh-Hant: zh
    if not reliable or text_bytes < MIN_TEXT_BYTES or code in ("un", "xx"):
        return None
    return _RENAMED.get(code, code)


def language_of(headers: Iterable[tuple[str, str]], text: str) -> str | None:
    """An email's language: its ``Content-Language``, else the one detected in ``text``
    (the reply, without the quoted message it answers), else ``None``."""
    return content_language(headers) or detect(text)
