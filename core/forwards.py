"""Recover the original message from a forwarded email; pure, never raises.

A user forwards a customer's email to their logging address; what must be logged
is the *original*: its sender, recipients, subject, date, body and attachments.
Two shapes exist: the original attached as a ``message/rfc822`` part (preferred
when present, parsed fully), and inline forwards where the client writes a header
block ("From:/Sent:/To:/Subject:" in the user's language) into the body. Nested
forwards yield the innermost original.
"""

from __future__ import annotations

import email.utils
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta

from core import _forward_formats as formats
from core.parsing import Address, ParsedMessage, Part, html_to_text, parse_message
from core.types import MessageId

_MAX_DEPTH = 8

_FORWARD_PREFIXES = (
    r"fwd|fw|fwrd|tr|wg|rv|enc|i|doorst|pd|vs|vb|vl|tov|továbbítás|пересл|переслать"
    r"|ilet|İlet|İLET|ilt|İlt|İLT|redir\.|videresend"
)
_REPLY_PREFIXES = r"re|aw|sv|antw|odp|r|ris|rif|res|ynt|yanıt|válasz|vá|отв|ответ"
_NUMBER = r"(?:\s*(?:\[\d+\]|\(\d+\)|\^\d+))?"
_PREFIX_CHAIN = re.compile(
    rf"^\s*(?:(?:{_FORWARD_PREFIXES}|{_REPLY_PREFIXES}){_NUMBER}\s*[:：]\s*)+", re.IGNORECASE
)
_FORWARD_CHAIN = re.compile(rf"^\s*(?:(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]\s*)+", re.I)
_FORWARD_PREFIX = re.compile(rf"(?:^|[:：]\s*)(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]", re.I)
_REPLY_PREFIX = re.compile(rf"^\s*(?:{_REPLY_PREFIXES}){_NUMBER}\s*[:：]", re.IGNORECASE)
_BRACKETED = re.compile(r"^\s*\[(?:fwd|fw)\s*:\s*(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ForwardedOriginal:
    """The original message recovered from a forward."""

    from_: Address | None  # always set by extract_forward (no sender means no original)
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str  # original subject, forward prefixes removed
    date: datetime | None  # aware UTC
    text: str  # the original body (below the forward header block)
    html: str  # original HTML body when recoverable, else ""
    message_id: MessageId | None  # when the forward carries it (attached message/rfc822)
    in_reply_to: tuple[MessageId, ...]
    references: tuple[MessageId, ...]
    attachments: tuple[Part, ...]  # inline forwards: the forwarding message's attachments
    note: str  # what the forwarding user wrote above the forward ("" if nothing)
    format: str  # "gmail", "outlook", "apple_mail", "thunderbird", "yahoo", "rfc822_attachment"


@dataclass(frozen=True)
class ForwardResult:
    """``original`` when recovered; else ``reason`` says why a forward-looking message failed.

    ``(None, None)``: not a forward. ``(None, reason)``: it looks like a forward but
    no sender could be recovered; log it as the user's own email, never on a guess.
    """

    original: ForwardedOriginal | None
    reason: str | None


def strip_forward_prefixes(subject: str) -> str:
    """``subject`` without its leading chain of forward prefixes.

    Handles ``Fwd:/Fw:/TR:/WG:/RV:/ENC:/I:/Doorst:/PD:/VS:/VB:/VL:/Továbbítás:/
    Пересл:/İlet:``, counted forms (``Fwd[2]:``), ``[Fwd: ...]`` and a trailing
    ``(fwd)``. A reply prefix ends the chain: ``FW: RE: Pricing`` was the original's
    ``RE: Pricing``, and that is its subject. Never raises.
    """
    previous = None
    while previous != subject:
        previous = subject
        subject = _FORWARD_CHAIN.sub("", subject)
        bracketed = _BRACKETED.match(subject)
        if bracketed is not None:
            subject = bracketed.group(1)
        subject = _FWD_SUFFIX.sub("", subject)
    return subject.strip()


def is_forward_subject(subject: str) -> bool:
    """Whether ``subject`` carries a forward marker (a reply prefix alone is not one)."""
    chain = _PREFIX_CHAIN.match(subject)
    head = chain.group(0) if chain else ""
    return bool(
        _FORWARD_PREFIX.search(head) or _BRACKETED.match(subject) or _FWD_SUFFIX.search(subject)
    )


def extract_forward(parsed: ParsedMessage, raw: bytes) -> ForwardResult:
    """Find the original message inside ``parsed``, a possibly forwarded email.

    ``raw`` is the message the pipeline parsed into ``parsed``; everything needed
    is read from ``parsed`` (attached originals are re-parsed from their parts).
    Attached ``message/rfc822`` originals win over inline header blocks. An inline
    Outlook-style block (no "forwarded" wording) counts only when the subject is a
    forward subject, so the quoted history of a reply is never mistaken for a
    forward. Returns ``ForwardResult(None, None)`` when nothing looks like a
    forward. Pure; never raises.
    """
    del raw  # the parsed form carries everything; kept for the pipeline's contract
    try:
        return _extract(parsed, depth=0)
    except Exception as exc:  # the contract is "never raises": fail as "not recovered"
        if is_forward_subject(parsed.subject):
            return ForwardResult(None, f"forward could not be parsed ({type(exc).__name__})")
        return ForwardResult(None, None)


def _extract(parsed: ParsedMessage, depth: int) -> ForwardResult:
    reasons: list[str] = []
    attached = _from_attachment(parsed, depth, reasons)
    if attached is not None:
        return ForwardResult(attached, None)
    inline = _from_inline(parsed, reasons)
    if inline is not None:
        return ForwardResult(inline, None)
    if reasons:
        return ForwardResult(None, reasons[0])
    if is_forward_subject(parsed.subject):
        return ForwardResult(None, "subject marks a forward but no forwarded header was found")
    return ForwardResult(None, None)


def _note(parsed: ParsedMessage) -> str:
    return parsed.text.strip()


def _from_attachment(
    parsed: ParsedMessage, depth: int, reasons: list[str]
) -> ForwardedOriginal | None:
    for part in parsed.attachments:
        if part.content_type != "message/rfc822" or not part.content.strip():
            continue
        inner = parse_message(part.content)
        if inner.from_ is None:
            reasons.append("attached message has no sender address")
            continue
        if depth < _MAX_DEPTH:
            nested = _extract(inner, depth + 1).original
            if nested is not None:  # a forward of a forward: the innermost original
                return _with_note(nested, _note(parsed))
        return ForwardedOriginal(
            from_=inner.from_, to=inner.to, cc=inner.cc,
            subject=strip_forward_prefixes(inner.subject), date=inner.date,
            text=inner.text, html=inner.html, message_id=inner.message_id,
            in_reply_to=inner.in_reply_to, references=inner.references,
            attachments=inner.attachments, note=_note(parsed), format="rfc822_attachment",
        )  # fmt: skip
    return None


def _with_note(original: ForwardedOriginal, note: str) -> ForwardedOriginal:
    return ForwardedOriginal(
        from_=original.from_, to=original.to, cc=original.cc, subject=original.subject,
        date=original.date, text=original.text, html=original.html,
        message_id=original.message_id, in_reply_to=original.in_reply_to,
        references=original.references, attachments=original.attachments, note=note,
        format=original.format,
    )  # fmt: skip


@dataclass(frozen=True)
class _Block:
    """One inline forward header block and what surrounds it."""

    format: str
    fields: dict[str, str]
    note: str  # text above the separator
    body: str  # text below the block


def _from_inline(parsed: ParsedMessage, reasons: list[str]) -> ForwardedOriginal | None:
    candidates = [parsed.text]
    if parsed.html:
        candidates.append(html_to_text(parsed.html))
    for text in candidates:
        block = _find_block(text, parsed.subject, reasons)
        if block is None:
            continue
        sender = formats.parse_one_address(block.fields.get("from", ""))
        if sender is None:
            reasons.append(_no_sender_reason(block))
            continue
        outer_note, levels = block.note, 1
        while levels < _MAX_DEPTH:  # nested inline forwards: go to the innermost
            inner = _find_block(block.body, block.fields.get("subject", ""), [])
            if inner is None or formats.parse_one_address(inner.fields.get("from", "")) is None:
                break
            block, levels = inner, levels + 1
            sender = formats.parse_one_address(block.fields["from"])
        fields = block.fields
        subject = fields.get("subject", parsed.subject)
        return ForwardedOriginal(
            from_=sender,
            to=tuple(formats.parse_address_list(fields.get("to", ""))),
            cc=tuple(formats.parse_address_list(fields.get("cc", ""))),
            subject=strip_forward_prefixes(subject),
            date=formats.parse_loose_date(fields.get("date", ""), _local_offset(parsed)),
            text=block.body,
            html=_original_html(parsed.html, levels),
            message_id=None, in_reply_to=(), references=(),
            attachments=parsed.attachments, note=outer_note, format=block.format,
        )  # fmt: skip
    if _LEADING_FORWARD_PREFIX.match(parsed.subject):
        for text in candidates:
            attributed = _from_attribution(text, parsed)
            if attributed is not None:
                return attributed
    return None


# Outlook 2013/2019 desktop forwards some messages with a reply's attribution line
# ("On 28/10/2021 12:46, "John Doe" <j@x.com> wrote:") and an indented body; only
# a subject that *starts* with a forward prefix lets such a line name the original.
_LEADING_FORWARD_PREFIX = re.compile(rf"^\s*(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]", re.I)
_ATTRIBUTION_MAX = 300
_ATTRIBUTION_WITHIN = 40  # lines of note above it at most: deeper, it quotes the original
_BRACKETED_ADDRESS = re.compile(
    r"[<\[(]\s*(?:mailto:)?([^<>\[\]()\s]{1,200}@[^<>\[\]()\s]{1,200})\s*[>\])]"
)
_QUOTED_NAME = re.compile(r"[\"“«„']\s*([^\"“”«»„']{1,120}?)\s*[\"”»“']\s*,?\s*$")
_CLOCK = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[ap]\.?\s?m\.?)?", re.I)


def _from_attribution(text: str, parsed: ParsedMessage) -> ForwardedOriginal | None:
    lines = _lines(text)
    for index, line in enumerate(lines[:_ATTRIBUTION_WITHIN]):
        stripped = formats.unquote(line).strip()
        if formats.DASH_LINE.match(stripped) or formats.UNDERSCORE_LINE.match(stripped):
            return None  # a separator the block reader could not read: not this shape
        if (
            len(stripped) > _ATTRIBUTION_MAX
            or not stripped.endswith((":", "："))
            or "@" not in stripped
            or not formats.WROTE_WORDS.search(stripped)
        ):
            continue
        found = _BRACKETED_ADDRESS.search(stripped)
        sender = formats.parse_one_address(found.group(1) if found else stripped)
        if sender is None:
            continue
        before = stripped[: found.start()] if found else ""
        name = _attribution_name(before)
        rest = stripped.replace(found.group(0), " ") if found else stripped
        if name:
            rest = rest.replace(name, " ")
        body = _dedent("\n".join(formats.unquote(x) for x in lines[index + 1 :]))
        return ForwardedOriginal(
            from_=Address(email=sender.email, name=name or sender.name), to=(), cc=(),
            subject=strip_forward_prefixes(parsed.subject),
            date=formats.parse_loose_date(rest, _local_offset(parsed)),
            text=body, html="", message_id=None, in_reply_to=(), references=(),
            attachments=parsed.attachments, note="\n".join(lines[:index]).strip(),
            format="outlook_attribution",
        )  # fmt: skip
    return None


def _attribution_name(before: str) -> str:
    """The sender's name in the text before the address of an attribution line."""
    quoted = _QUOTED_NAME.search(before)
    if quoted is not None:
        return quoted.group(1).strip()
    clocks = list(_CLOCK.finditer(before))
    tail = before[clocks[-1].end() :] if clocks else before.rpartition(",")[2]
    return tail.strip(" ,\"'")


def _local_offset(parsed: ParsedMessage) -> timedelta:
    """The UTC offset of the forwarding message's own Date: the forwarder's local time."""
    parts = email.utils.parsedate_tz(parsed.header("Date") or "")
    offset = parts[9] if parts else None
    return timedelta(seconds=offset) if offset and abs(offset) <= 14 * 3600 else timedelta(0)


def _no_sender_reason(block: _Block) -> str:
    value = block.fields.get("from", "").strip()
    if not value:
        return f"{block.format} forward header block has no From line"
    return f"{block.format} forward header names the sender {value[:80]!r} without an address"


def _lines(text: str) -> list[str]:
    """``text`` as lines, with header blocks flattened onto one line cut apart again."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(formats.split_run_together(line) if len(line) > 40 else (line,))
    return lines


def _find_block(text: str, subject: str, reasons: list[str]) -> _Block | None:
    """The first (outermost) forward header block in ``text``, or ``None``.

    A forward quoted whole (Apple Mail, Sparrow: every line starts with ``> ``) is
    read again without its quote marks when the plain reading finds nothing.
    """
    lines = _lines(text)
    block = _find_block_in(lines, subject, reasons)
    if block is None and _quotes_a_header(lines):
        unquoted = _lines("\n".join(formats.unquote(line) for line in lines))
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


def _find_block_in(lines: list[str], subject: str, reasons: list[str]) -> _Block | None:
    for index in range(len(lines)):
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
        return _Block(
            format="outlook" if fmt == "outlook_bare" else fmt,
            fields=fields,
            note="\n".join(lines[:index]).strip(),
            body=_dedent("\n".join(lines[end:])),
        )
    return None


def _dedent(text: str) -> str:
    # Outlook 2019 indents the forwarded body by four spaces.
    return textwrap.dedent(text).strip()


def _is_forward_context(subject: str, block_subject: str) -> bool:
    if is_forward_subject(subject):
        return True
    plain = strip_forward_prefixes(subject)
    return (
        bool(plain)
        and not _REPLY_PREFIX.match(subject)
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
    following = lines[index + 1] if index + 1 < len(lines) else ""
    if following.strip() and formats.header_label(following) is not None:
        return True  # the block goes on below: the line is part of it
    indent = len(line) - len(line.lstrip())
    if indent > len(lines[index - 1]) - len(lines[index - 1].lstrip()):
        return True  # folded like a header
    joined = f"{strip_forward_prefixes(value)} {line.strip()}".strip().lower()
    return bool(value) and strip_forward_prefixes(subject).lower().startswith(joined)


# Where each client's html forward header ends: (start marker, closing tag).
_HTML_MARKERS = (
    (re.compile(r"class=\"?gmail_attr", re.IGNORECASE), "</div>"),
    (re.compile(r"id=\"?divRplyFwdMsg", re.IGNORECASE), "</div>"),
    (re.compile(r"border-top:\s*solid\s+#(?:E1E1E1|B5C4DF)", re.IGNORECASE), "</div>"),
    (re.compile(r"class=\"?moz-email-headers-table", re.IGNORECASE), "</table>"),
)


def _original_html(html: str, levels: int) -> str:
    """The html below the ``levels``-th forward header, "" when not recognisable."""
    for _ in range(levels):
        found = [
            (match.start(), closing)
            for marker, closing in _HTML_MARKERS
            if (match := marker.search(html)) is not None
        ]
        if not found:
            return ""
        position, closing = min(found)
        end = html.lower().find(closing.lower(), position)
        if end < 0:
            return ""
        html = html[end + len(closing) :]
    return html.strip() if html_to_text(html) else ""
