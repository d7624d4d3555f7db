"""Private tables and parsers for :mod:`core.mail.forwards` and :mod:`core.mail.quotes`.

The header labels, separator lines, month names and address shapes that mail
clients write into the body of a forward or a reply, in the common languages.
Everything here is pure and total: unparseable input gives ``None`` or ``[]``.
"""

from __future__ import annotations

import itertools
import re

from core.mail._forward_labels import FIELD_BY_LABEL, FORWARD_WORDS, ORIGINAL_WORDS, WROTE_WORDS
from core.mail._loose_dates import parse_loose_date
from core.mail.parsing import ADDRESS, Address

__all__ = [
    "APPLE_LINE", "DASH_LINE", "FORWARD_WORDS", "HEADER_LINE", "ORIGINAL_WORDS",
    "UNDERSCORE_LINE", "WROTE_WORDS", "header_label", "is_header_block_start",
    "parse_address_list", "parse_loose_date", "parse_one_address",
]  # fmt: skip

# A "Label: value" line; bold markers (*From:*) and a space before the colon
# (French typography, often a no-break space) are allowed.
# Written so that no two unbounded runs compete for the same characters: long
# lines of spaces must not backtrack quadratically.
# The label may hold combining marks (Thai, Indic scripts): anything but a colon.
HEADER_LINE = re.compile(
    r"^\s*(?:\*+\s*)?([^\W\d_][^:：៖\n<>@*]{0,30}?)[ \t]*(?:\*+[ \t]*)?[:：៖](.*)$"
)
_MAX_HEADER_LINE = 2000
# Zero-width joiners and the bidi isolates KMail puts around Arabic values.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2066-\u2069]")

# "---------- Forwarded message ---------", "━━━Thư đã chuyển tiếp━━━", and
# Thunderbird's Slovak "-------- Preposlaná správa --- Forwarded Message --------".
# mutt writes "----- Forwarded message from Name <address> -----".
DASH_LINE = re.compile(r"^\s*([-—–━]{2,})\s*([^-—–━\s][^\n]{1,118}?[^-—–━\s])\s*([-—–━]{2,})\s*$")
UNDERSCORE_LINE = re.compile(r"^\s*_{10,}\s*$")
# Apple Mail's "Begin forwarded message:" in any language: a short line with a
# forward word, ending with a colon.
APPLE_LINE = re.compile(r"^\s*[^:\n]{0,60}[:：]\s*$")

_MAILTO_ANGLED = re.compile(r"<mailto:([^>]*)>", re.IGNORECASE)
_MAILTO_SQUARE = re.compile(r"\[mailto:([^\]]*)\]", re.IGNORECASE)
_MAILTO = re.compile(r"(?<![\w.])mailto:", re.IGNORECASE)


def parse_address_list(value: str) -> list[Address]:
    """Addresses from a forward header value; entries without an address are dropped.

    Understands ``Name <addr>``, ``"Name" <addr>``, ``Name [mailto:addr]``,
    Outlook's ``addr<mailto:addr>`` and bare addresses, separated by ``;`` or ``,``.
    """
    result: list[Address] = []
    for chunk in _split_addresses(value):
        address = parse_one_address(chunk)
        if address is not None:
            result.append(address)
    return result


def parse_one_address(chunk: str) -> Address | None:
    """One ``Name <addr>``-like value as an :class:`Address`, ``None`` without an address."""
    chunk = chunk[:_MAX_HEADER_LINE]
    without_mailto = _MAILTO_ANGLED.sub("", chunk)
    # "addr<mailto:addr>" repeats the address; "Name <mailto:addr>" has it only there.
    chunk = without_mailto if ADDRESS.search(without_mailto) else _MAILTO_ANGLED.sub(r"<\1>", chunk)
    chunk = _MAILTO_SQUARE.sub(r"<\1>", chunk)
    chunk = _MAILTO.sub(" ", chunk)
    found = ADDRESS.search(chunk)
    if found is None:
        return None
    local, _, domain = found.group(0).rpartition("@")
    name = (chunk[: found.start()] + " " + chunk[found.end() :]).replace("<>", " ")
    name = re.sub(r"[<>()\[\]]", " ", name)
    name = " ".join(name.split()).strip(" \"'")
    if name.lower() == f"{local}@{domain}".lower():
        name = ""
    return Address(email=f"{local}@{domain.lower()}", name=name)


def _split_addresses(value: str) -> list[str]:
    if ";" in value:
        return value.split(";")
    chunks: list[str] = []
    current: list[str] = []
    quoted = angled = False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char in "<[":
            angled = True
        elif char in ">]":
            angled = False
        if char == "," and not quoted and not angled:
            chunks.append("".join(current))
            current = []
        else:
            current.append(char)
    chunks.append("".join(current))
    # "Smith, John <john@x>" split into a name-only chunk: glue it back.
    merged: list[str] = []
    for chunk in chunks:
        if merged and not ADDRESS.search(merged[-1]):
            merged[-1] = merged[-1] + "," + chunk
        else:
            merged.append(chunk)
    return merged


def may_hold_label(line: str) -> bool:
    """Whether ``line`` has one of ``HEADER_LINE``'s colons: a cheap test that spares
    most lines of a body the regex (false only where it cannot match)."""
    return ":" in line or "：" in line or "៖" in line


def header_label(line: str) -> tuple[str, str] | None:
    """``(field, value)`` when ``line`` is a known forward-header line, else ``None``.

    ``field`` is one of ``from``, ``date``, ``to``, ``cc``, ``subject``, ``other``.
    """
    if len(line) > _MAX_HEADER_LINE or not may_hold_label(line):
        return None
    match = HEADER_LINE.match(line.replace("\xa0", " "))
    if match is None:
        return None
    label = " ".join(_INVISIBLE.sub("", match.group(1)).lower().split())
    field = FIELD_BY_LABEL.get(label)
    # Outlook's plain-text bold: *From:* John
    value = _INVISIBLE.sub("", match.group(2)).strip().lstrip("*").strip()
    return None if field is None else (field, value)


def is_header_block_start(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` opens an Outlook-style block: From, then Date/Sent soon."""
    first = header_label(lines[index])
    if first is None or first[0] != "from":
        return False
    fields = set()
    for line in lines[index + 1 : index + 7]:
        label = header_label(line)
        if label is None:
            if line.strip():
                break
            continue
        fields.add(label[0])
    return "date" in fields and bool(fields & {"to", "subject"})


# Run-together labels in a header block flattened onto one line (Yahoo and other
# webmail whose text part comes from their html): "From: A <a@x>To: b@xSent: ...".
# Title-case and upper-case labels only, as clients write them; a one- to three-
# letter label ("A:", "Do:", "Cc:") must touch what precedes it or follow an
# address's closing bracket, so "Meeting A: agenda" in a subject stays whole.
_RUN_LABELS = sorted(
    {variant for label in FIELD_BY_LABEL for variant in (label[:1].upper() + label[1:],
                                                         label.upper())},
    key=len, reverse=True,
)  # fmt: skip
_RUN_TOGETHER = re.compile(
    "(?:" + "|".join(re.escape(label) for label in _RUN_LABELS) + r")[ \t]?[:：]"
)
_SHORT_LABEL_BEFORE = re.compile(r"(?:\S|[>\])\"']\s)$")
_MAX_RUN_LINE = 4000


def may_run_together(line: str) -> bool:
    """Whether ``line`` has the three colons a cut needs (a From label and two more):
    false only where ``split_run_together`` leaves the line whole."""
    return line.count(":") >= 3


_SEPARATOR_THEN_TEXT = re.compile(r"^(\s*[-—–━]{2,}[^-—–━\n]{3,60}?[-—–━]{2,})(?=[^\s—–━-])")


def split_run_together(line: str) -> list[str]:
    """``line`` cut before each header label when it holds a whole flattened block.

    Only a line that starts with a From label (after a separator such as
    "----- Forwarded Message -----", itself cut off) and carries at least two more
    labels of other fields is cut; each field is cut at its first label only.
    Anything else comes back as ``[line]``.
    """
    if not may_run_together(line):
        return [line]
    separator = _SEPARATOR_THEN_TEXT.match(line)
    if separator is not None:
        rest = split_run_together(line[separator.end() :])
        if len(rest) > 1:
            return [separator.group(1), *rest]
        return [line]
    first = header_label(line)
    if first is None or first[0] != "from" or len(line) > _MAX_RUN_LINE or line.count(":") < 3:
        return [line]
    start = len(line) - len(line.lstrip()) + 1
    seen = {"from"}
    cuts: list[int] = []
    for match in _RUN_TOGETHER.finditer(line, start):
        label = match.group(0).rstrip(":： \t").lower()
        field = FIELD_BY_LABEL.get(label)
        if field is None or field in seen or match.start() <= line.find(":"):
            continue
        if len(label) <= 3 and not _SHORT_LABEL_BEFORE.search(line, 0, match.start()):
            continue
        seen.add(field)
        cuts.append(match.start())
    if len(cuts) < 2:
        return [line]
    bounds = [0, *cuts, len(line)]
    return [line[a:b].strip() for a, b in itertools.pairwise(bounds)]


_QUOTE_MARKS = re.compile(r"^(?:[ \t]*>)+[ \t]?")


def unquote(line: str) -> str:
    """``line`` without its leading ``>`` quote marks (and the space after them)."""
    return _QUOTE_MARKS.sub("", line)
