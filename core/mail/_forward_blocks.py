"""Forward header blocks inside a message's text: where one starts, what it says.

A separator line ("---------- Forwarded message ---------", "Begin forwarded message:",
Outlook's underscores or "-----Original Message-----") or a bare Outlook block, then
``Label: value`` lines in any language and order. Pure; bounded work per line.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from core.mail import _forward_formats as formats
from core.mail._mime import lf_line_ends
from core.mail.subjects import REPLY_PREFIX, is_forward_subject, strip_forward_prefixes


@dataclass(frozen=True)
class Block:
    """One inline forward header block and what surrounds it."""

    format: str
    fields: dict[str, str]
    note: str  # text above the separator
    body: str  # text below the block


def lines_of(text: str) -> list[str]:
    """``text`` as lines, with header blocks flattened onto one line cut apart again."""
    return _lines_of(_normalized(text))


def _normalized(text: str) -> str:
    return lf_line_ends(text).replace("\ufeff", "")


def _lines_of(text: str) -> list[str]:
    if text.count(":") < 3:  # no line has the three colons ``may_run_together`` needs
        return text.split("\n")
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(formats.split_run_together(line) if len(line) > 40 else (line,))
    return lines


# A line opening, past its leading whitespace, with a separator rule's first character.
_RULE_OPENING = re.compile("\n[^\\S\n]*[-—–━_]")


def may_hold_block(text: str) -> bool:
    """A cheap test over a whole ``_normalized`` text before ``find_block`` looks at its
    lines, false only where it finds nothing and gives no reason: no line can pass
    ``may_open_block`` (it needs a colon or a rule at its start), and a quoted block
    needs a From label's colon too."""
    return (formats.may_hold_label(text)
            or _RULE_OPENING.search("\n" + text) is not None)


def find_block(text: str, subject: str, reasons: list[str]) -> Block | None:
    """The first (outermost) forward header block in ``text``, or ``None``.

    A forward quoted whole (Apple Mail, Sparrow: every line starts with ``> ``) is
    read again without its quote marks when the plain reading finds nothing.
    """
    text = _normalized(text)
    if not may_hold_block(text):
        return None
    lines = _lines_of(text)
    block = _find_block_in(lines, subject, reasons)
    if block is None and ">" in text and _quotes_a_header(lines):
        unquoted = lines_of("\n".join(formats.unquote(line) for line in lines))
        block = _find_block_in(unquoted, subject, reasons)
    return block


def _quotes_a_header(lines: list[str]) -> bool:
    """Whether a quoted line holds a From label: only then is a quoted forward possible."""
    for line in lines:
        if line.lstrip().startswith(">"):
            label = formats.header_label(formats.unquote(line))
            if label is not None and label[0] == "from":
                return True
    return False


# aerc's default forward_as_body template: the only header is this one line.
_AERC_LINE = re.compile(r"^\s*Forwarded message from (.{1,200}?) on (.{1,100}):\s*$")


# What a line that opens a block starts with, when it has no colon: a separator rule.
_RULE_STARTS = ("-", "—", "–", "━", "_")


def may_open_block(line: str) -> bool:
    """A cheap test before ``_find_block_in``'s regexes, false only where none of them
    can match: every line that opens a block either has a colon (aerc's line, Apple
    Mail's, a header label) or starts with a separator's dashes or underscores."""
    return formats.may_hold_label(line) or line.lstrip().startswith(_RULE_STARTS)


def _find_block_in(lines: list[str], subject: str, reasons: list[str]) -> Block | None:
    for index in range(len(lines)):
        if not may_open_block(lines[index]):
            continue
        aerc = _AERC_LINE.match(lines[index]) if len(lines[index]) < 320 else None
        if aerc is not None:
            return Block(
                format="aerc", fields={"from": aerc.group(1), "date": aerc.group(2)},
                note="\n".join(lines[:index]).strip(), body=dedent("\n".join(lines[index + 1 :])),
            )  # fmt: skip
        kind = _separator(lines, index)
        if kind is None:
            continue
        fmt, explicit = kind
        start = index if fmt == "outlook_bare" else _next_nonblank(lines, index + 1, 3)
        if start is None:
            continue
        fields, end = _read_block(lines, start, subject)
        if len(fields.keys() & {"from", "date", "subject", "to"}) < 2:
            if explicit and fields:
                reasons.append(f"{fmt} forward header block could not be read")
            continue
        if not explicit and not _is_forward_context(subject, fields.get("subject", "")):
            continue  # a reply's quoted history, not a forward
        return Block(
            format="outlook" if fmt == "outlook_bare" else fmt,
            fields=fields,
            note="\n".join(lines[:index]).strip(),
            body=dedent("\n".join(lines[end:])),
        )
    return None


def dedent(text: str) -> str:
    # Outlook 2019 indents the forwarded body by four spaces.
    return textwrap.dedent(text).strip()


def _is_forward_context(subject: str, block_subject: str) -> bool:
    if is_forward_subject(subject):
        return True
    plain = strip_forward_prefixes(subject)
    return (
        bool(plain)
        and not REPLY_PREFIX.match(subject)
        and (plain.lower() == strip_forward_prefixes(block_subject).lower())
    )


def _separator(lines: list[str], index: int) -> tuple[str, bool] | None:
    """``(format, explicit)`` when ``lines[index]`` starts a forward; explicit = says so."""
    line = lines[index]
    dash = formats.DASH_LINE.match(line)
    if dash is not None:
        label = dash.group(2)
        if formats.FORWARD_WORDS.search(label):
            leading = len(dash.group(1))
            fmt = "gmail" if leading >= 10 else "thunderbird" if leading >= 8 else "yahoo"
            return fmt, True
        if formats.ORIGINAL_WORDS.search(label):
            return "outlook", False
        return None
    following = _next_nonblank(lines, index + 1, 3)
    follows_header = following is not None and formats.header_label(lines[following]) is not None
    if formats.UNDERSCORE_LINE.match(line) and follows_header:
        return "outlook", False
    if (
        follows_header
        and len(line) < 90
        and formats.APPLE_LINE.match(line)
        and formats.FORWARD_WORDS.search(line)
        and formats.header_label(line) is None
    ):
        return "apple_mail", True
    if _is_bare_block_start(lines, index):
        return "outlook_bare", False
    return None


def _is_bare_block_start(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` opens a header block with no separator line above it.

    From, Date and To or Subject within seven lines, in any order (new Outlook and
    Thunderbird put Date or Subject first): Outlook's "From:/Sent:/To:/Subject:".
    """
    first = formats.header_label(lines[index])
    if first is None or first[0] not in {"from", "date", "subject", "to"}:
        return False
    fields = {first[0]}
    for line in lines[index + 1 : index + 7]:
        label = formats.header_label(line)
        if label is None:
            if line.strip():
                break
            continue
        fields.add(label[0])
    return {"from", "date"} <= fields and bool(fields & {"to", "subject"})


def _next_nonblank(lines: list[str], start: int, limit: int) -> int | None:
    for index in range(start, min(len(lines), start + limit)):
        if lines[index].strip():
            return index
    return None


_MAX_BLOCK_LINES = 40
# Message-ID:, MIME-Version:, X-Mailer:, List-Id:... and a few one-word headers.
_RFC_HEADER = re.compile(
    r"^\s*(?:[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+|References|Precedence|Sender|Received"
    r"|Newsgroups|Organi[sz]ation|Priority|Importance)[ \t]*:"
)


def _read_block(lines: list[str], start: int, subject: str) -> tuple[dict[str, str], int]:
    """Read ``Label: value`` lines from ``start``; returns the fields and the end index.

    ``subject`` (the forwarding message's) tells a forwarded Subject folded over two
    lines from the body that follows it.
    """
    fields: dict[str, str] = {}
    last: str | None = None
    index = start
    stop = min(len(lines), start + _MAX_BLOCK_LINES)  # bounds the work per separator
    while index < stop:
        line = lines[index]
        if not line.strip():
            following = _next_nonblank(lines, index + 1, 2)
            incomplete = "from" not in fields or "subject" not in fields
            if (
                following is not None
                and incomplete
                and formats.header_label(lines[following]) is not None
            ):
                index = following
                continue
            break
        label = formats.header_label(line)
        if label is None:
            if last in {"to", "cc"} and "@" in line:  # a wrapped recipient list
                fields[last] += " " + line.strip()
                index += 1
                continue
            if last == "from" and "@" in line and "@" not in fields["from"]:
                fields["from"] += " " + line.strip()  # "Long Name <" / "address>"
                index += 1
                continue
            if _RFC_HEADER.match(line) or (last == "other" and line[:1] in " \t"):
                last = "other"  # mutt and alpine copy the original's other headers
                index += 1
                continue
            if last == "subject" and _continues(lines, index, fields[last], subject):
                fields[last] += " " + line.strip()
                index += 1
                continue
            break
        field, value = label
        if field in fields and field != "other":
            break  # a second From: starts the next block
        if not value and index + 1 < len(lines) and _is_value_line(lines[index + 1]):
            value = lines[index + 1].strip()  # a table cell under its label
            index += 1
        fields[field] = value
        last = field
        index += 1
    fields.pop("other", None)
    return fields, index


def _is_value_line(line: str) -> bool:
    return bool(line.strip()) and formats.header_label(line) is None


def _continues(lines: list[str], index: int, value: str, subject: str) -> bool:
    """Whether ``lines[index]`` (no label) continues the value of the line above."""
    line = lines[index]
    if "@" in line and formats.HEADER_LINE.match(line):
        return False  # "Catre: a@x": an address line under a label we do not know
    following = lines[index + 1] if index + 1 < len(lines) else ""
    if following.strip() and formats.header_label(following) is not None:
        return True  # the block goes on below: the line is part of it
    indent = len(line) - len(line.lstrip())
    if indent > len(lines[index - 1]) - len(lines[index - 1].lstrip()):
        return True  # folded like a header
    joined = f"{strip_forward_prefixes(value)} {line.strip()}".strip().lower()
    return bool(value) and strip_forward_prefixes(subject).lower().startswith(joined)
