"""Recover the original message from a forwarded email; pure, never raises.

A user forwards a customer's email to their logging address; what must be logged
is the *original*: its sender, recipients, subject, date, body and attachments.
Two shapes exist: the original attached as a ``message/rfc822`` part (preferred
when present, parsed fully), and inline forwards where the client writes a header
block ("From:/Sent:/To:/Subject:" in the user's language) into the body. Nested
forwards yield the innermost original.
"""

from __future__ import annotations

import base64
import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.mail import _forward_formats as formats
from core.mail._forward_blocks import Block, dedent, find_block, lines_of
from core.mail.parsing import Address, ParsedMessage, Part, html_to_text, parse_message
from core.mail.subjects import (
    is_forward_subject,
    starts_with_forward_prefix,
    strip_forward_prefixes,
)
from core.types import MessageId

__all__ = [
    "ForwardResult", "ForwardedOriginal", "extract_forward", "is_forward_subject",
    "strip_forward_prefixes",
]  # fmt: skip

_MAX_DEPTH = 8


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
    format: str  # "gmail", "outlook", "outlook_attribution", "apple_mail", "thunderbird",
    # "yahoo", "aerc", "rfc822_attachment": the layout it was read from


@dataclass(frozen=True)
class ForwardResult:
    """``original`` when recovered; else ``reason`` says why a forward-looking message failed.

    ``(None, None)``: not a forward. ``(None, reason)``: it looks like a forward but
    no sender could be recovered; log it as the user's own email, never on a guess.
    """

    original: ForwardedOriginal | None
    reason: str | None


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
        inner = parse_message(_attached_bytes(part.content))
        if inner.from_ is None:
            reasons.append("attached message has no sender address")
            continue
        if depth < _MAX_DEPTH:
            nested = _extract(inner, depth + 1).original
            if nested is not None:  # a forward of a forward: the innermost original
                return _with_note(nested, _note(parsed))
        return ForwardedOriginal(
            from_=inner.from_, to=inner.to, cc=inner.cc,
            subject=strip_forward_prefixes(_FOLDING.sub(" ", inner.subject)), date=inner.date,
            text=inner.text, html=inner.html, message_id=inner.message_id,
            in_reply_to=inner.in_reply_to, references=inner.references,
            attachments=inner.attachments, note=_note(parsed), format="rfc822_attachment",
        )  # fmt: skip
    return None


_FOLDING = re.compile(r"[\t\r\n]+")  # "unnecessary\n\tsemicolons" unfolds with its tab
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"


def _attached_bytes(content: bytes) -> bytes:
    """An attached message's bytes; aerc sends them base64-encoded, which RFC 2046 forbids."""
    head = content[:4096]
    if b":" in head or not head.strip() or head.translate(None, _BASE64_ALPHABET):
        return content
    try:
        return base64.b64decode(content, validate=False)
    except ValueError:  # binascii.Error: not base64 after all
        return content


def _with_note(original: ForwardedOriginal, note: str) -> ForwardedOriginal:
    return ForwardedOriginal(
        from_=original.from_, to=original.to, cc=original.cc, subject=original.subject,
        date=original.date, text=original.text, html=original.html,
        message_id=original.message_id, in_reply_to=original.in_reply_to,
        references=original.references, attachments=original.attachments, note=note,
        format=original.format,
    )  # fmt: skip


def _texts(parsed: ParsedMessage) -> Iterator[str]:
    """The texts an inline forward is looked for in: the text part, then the html's
    text, worked out only when the text part holds no forward (the usual case)."""
    yield parsed.text
    if parsed.html:
        yield html_to_text(_with_mailto_addresses(parsed.html))


def _from_inline(parsed: ParsedMessage, reasons: list[str]) -> ForwardedOriginal | None:
    candidates: list[str] = []
    for text in _texts(parsed):
        candidates.append(text)
        block = find_block(text, parsed.subject, reasons)
        if block is None:
            continue
        sender = formats.parse_one_address(block.fields.get("from", ""))
        if sender is None:
            reasons.append(_no_sender_reason(block))
            continue
        outer_note, levels = block.note, 1
        while levels < _MAX_DEPTH:  # nested inline forwards: go to the innermost
            inner = find_block(block.body, block.fields.get("subject", ""), [])
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
    if not reasons and starts_with_forward_prefix(parsed.subject):
        for text in candidates:
            attributed = _from_attribution(text, parsed)
            if attributed is not None:
                return attributed
    return None


# Outlook 2013/2019 desktop forwards some messages with a reply's attribution line
# ("On 28/10/2021 12:46, "John Doe" <j@x.com> wrote:") and an indented body; only
# a subject that *starts* with a forward prefix lets such a line name the original.
_ATTRIBUTION_MAX = 300
_ATTRIBUTION_WITHIN = 40  # lines of note above it at most: deeper, it quotes the original
_BRACKETED_ADDRESS = re.compile(
    r"[<\[(]\s*(?:mailto:)?([^<>\[\]()\s]{1,200}@[^<>\[\]()\s]{1,200})\s*[>\])]"
)
_QUOTED_NAME = re.compile(r"[\"“«„']\s*([^\"“”«»„']{1,120}?)\s*[\"”»“']\s*,?\s*$")
_CLOCK = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[ap]\.?\s?m\.?)?", re.I)


def _from_attribution(text: str, parsed: ParsedMessage) -> ForwardedOriginal | None:
    lines = lines_of(text)
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
        body = dedent("\n".join(formats.unquote(x) for x in lines[index + 1 :]))
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


# A name linked to its address (<a href="mailto:addr">Name</a>), as new Outlook and
# webmail write a header table: the address is only in the link.
_MAILTO_LINK = re.compile(
    r"<a\s[^<>]{0,500}?href=[\"']?mailto:([^\"'<>?\s]{3,254})[^<>]{0,500}>"
    r"([^<>@]{0,200})</a>",
    re.IGNORECASE,
)


def _with_mailto_addresses(html: str) -> str:
    if "mailto:" not in html.lower():
        return html
    return _MAILTO_LINK.sub(lambda m: f"{m.group(2)} &lt;{m.group(1)}&gt;", html)


def _local_offset(parsed: ParsedMessage) -> timedelta:
    """The UTC offset of the forwarding message's own Date: the forwarder's local time."""
    parts = email.utils.parsedate_tz(parsed.header("Date") or "")
    offset = parts[9] if parts else None
    return timedelta(seconds=offset) if offset and abs(offset) <= 14 * 3600 else timedelta(0)


def _no_sender_reason(block: Block) -> str:
    value = block.fields.get("from", "").strip()
    if not value:
        return f"{block.format} forward header block has no From line"
    return f"{block.format} forward header names the sender {value[:80]!r} without an address"


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
