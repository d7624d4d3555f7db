"""Parse raw RFC 822 bytes into a :class:`ParsedMessage`, whatever state they are in.

Contract: :func:`parse_message` never raises. Anything it had to guess or skip is
described in :attr:`ParsedMessage.defects`; text fields never contain NUL
characters or lone surrogates, so they can be stored as UTF-8 as they are.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

import nh3

from core.mail import _large_parts, _mime, _plain, html_depth
from core.mail._large_parts import SPOOL_THRESHOLD, SpooledBody
from core.mail.spool import SpooledFile
from core.types import BlobHash, MessageId

_MAX_REFERENCES = 100

# An address in free text (a forward's header lines, trace headers). It starts where a
# run of local-part characters starts (the lookbehind): tried from every character of a
# long run without an @, the match would be quadratic.
ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Address:
    """One mailbox from an address header."""

    email: str  # addr-spec as found, whitespace stripped; domain lower-cased; local part kept
    name: str  # decoded display name (RFC 2047), "" if none

    @property
    def key(self) -> str:
        """The address lower-cased, for matching against contacts."""
        return self.email.lower()


@dataclass(frozen=True)
class Part:
    """An attachment or inline image.

    A large body (see :func:`parse_message`'s ``spool_dir``) stays on disk: ``body`` is
    then a :class:`SpooledFile`, and ``size``, ``sha256`` and the blob store use it
    without reading it back; ``content`` reads it.
    """

    filename: str  # decoded; generated from the content type when missing
    content_type: str  # lower-case "type/subtype"
    body: bytes | SpooledFile  # transfer encoding undone
    inline: bool  # disposition inline, or a Content-ID used by the html or multipart/related
    content_id: str | None  # without <>
    sha256: BlobHash  # of the content, computed while parsing

    @property
    def content(self) -> bytes:
        """The bytes, transfer encoding undone (read from disk for a spooled body)."""
        return self.body if isinstance(self.body, bytes) else self.body.read_bytes()

    @property
    def size(self) -> int:
        return len(self.body) if isinstance(self.body, bytes) else self.body.size


@dataclass(frozen=True)
class ParsedMessage:
    """Everything inboxlog reads from one message.

    ``text`` and ``html`` have their line endings normalised to ``\\n``; ``html`` is
    NOT sanitized (see :func:`sanitize_html`). ``date`` is aware and in UTC.
    """

    message_id: MessageId | None
    in_reply_to: tuple[MessageId, ...]  # only <x@y> tokens
    references: tuple[MessageId, ...]  # de-duplicated, in order, the last 100
    from_: Address | None  # the first mailbox of the first From header
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]  # from every To header, in order
    cc: tuple[Address, ...]
    resent_from: tuple[Address, ...]
    subject: str  # decoded, unfolded, stripped; "" if missing
    date: datetime | None  # aware, UTC; None if missing or unparseable
    text: str  # first non-attachment text/plain, else derived from html; "" if none
    html: str  # first non-attachment text/html, raw (NOT sanitized); "" if none
    attachments: tuple[Part, ...]  # every other leaf part, in document order
    headers: tuple[tuple[str, str], ...]  # every header (name, decoded unfolded value)
    thread_index: str | None  # Outlook's Thread-Index
    defects: tuple[str, ...]  # human-readable notes on what was broken or guessed

    def header(self, name: str) -> str | None:
        """The first header value named ``name`` (case-insensitive), decoded."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def parse_message(
    raw: bytes, *, spool_dir: Path | None = None, spool_threshold: int = SPOOL_THRESHOLD
) -> ParsedMessage:
    """Parse ``raw`` message bytes; never raises, see the module docstring.

    With ``spool_dir``, leaf bodies over ``spool_threshold`` bytes are decoded straight
    to files there instead of memory (their parts' ``body`` is a :class:`SpooledFile`,
    removed when the part is garbage-collected); the result is otherwise the same.
    """
    return _parse_message(bytes(raw), spool_dir, spool_threshold, fast=True)


def _parse_message(
    raw: bytes, spool_dir: Path | None, spool_threshold: int, *, fast: bool
) -> ParsedMessage:
    """:func:`parse_message`; ``fast=False`` sends every message through the stdlib's
    parser (the tests compare both ways)."""
    try:
        return _parse(raw, spool_dir, spool_threshold, fast)
    except Exception as exc:  # last resort: the contract is "never raises"
        text, _ = _mime.decode_bytes(bytes(raw), None, "message")
        return _empty(
            text=_mime.clean_text(text),
            defects=(f"message could not be parsed ({type(exc).__name__})",),
        )


def _empty(text: str, defects: tuple[str, ...]) -> ParsedMessage:
    return ParsedMessage(
        message_id=None, in_reply_to=(), references=(), from_=None, sender=None,
        reply_to=(), to=(), cc=(), resent_from=(), subject="", date=None, text=text,
        html="", attachments=(), headers=(), thread_index=None, defects=defects,
    )  # fmt: skip


def _load(
    raw: bytes, defects: list[str], spool_dir: Path | None, spool_threshold: int
) -> tuple[Message, dict[int, SpooledBody]]:
    """The parsed message, and the spooled body of each part whose payload is on disk
    (by ``id(part)``)."""
    if spool_dir is not None:
        spooled = _large_parts.parse_spooling(raw, spool_dir, spool_threshold)
        if spooled is not None:
            return spooled
    try:
        return BytesParser(policy=_mime.PARSE_POLICY).parsebytes(raw), {}
    except Exception as exc:  # RecursionError on absurdly deep nesting, parser bugs
        defects.append(
            f"MIME structure could not be parsed ({type(exc).__name__}); body kept as text"
        )
    # Headers only: the whole body becomes one payload handled as a broken multipart.
    return BytesParser(policy=_mime.PARSE_POLICY).parsebytes(raw, headersonly=True), {}


def _parse(
    raw: bytes, spool_dir: Path | None, spool_threshold: int, fast: bool
) -> ParsedMessage:
    defects: list[str] = []
    # The common case without the stdlib's parser (core.mail._plain); a large message
    # keeps the stdlib's path, where its body may be spooled.
    plain = (_plain.split(raw)
             if fast and (spool_dir is None or len(raw) <= spool_threshold) else None)
    items: Iterable[tuple[str, object]]
    if plain is None:
        msg, spooled = _load(raw, defects, spool_dir, spool_threshold)
        items = msg.raw_items()
    else:
        items = plain.headers
    headers: list[tuple[str, str]] = []
    raw_by_name: dict[str, list[str]] = {}  # lower-case name -> raw values, in order
    first: dict[str, str] = {}  # lower-case name -> first decoded value
    for name, value in items:
        name = _mime.clean_text(str(name)).strip()
        decoded, notes = _mime.decode_header_value(str(value), name)
        headers.append((name, decoded))
        defects.extend(notes)
        raw_by_name.setdefault(name.lower(), []).append(str(value))
        first.setdefault(name.lower(), decoded)

    def addresses(name: str) -> tuple[Address, ...]:
        pairs, notes = _mime.parse_addresses(raw_by_name.get(name.lower(), []), name)
        defects.extend(notes)
        return tuple(Address(email=addr, name=display) for display, addr in pairs)

    from_ = addresses("From")
    sender = addresses("Sender")
    date = _mime.parse_date(first["date"]) if "date" in first else None
    if "date" in first and date is None:
        defects.append(f"Date: unparseable value {first['date']!r}")
    message_ids = _mime.extract_ids(first.get("message-id", ""), allow_bare=True)
    for header, label in (("from", "From"), ("date", "Date"), ("message-id", "Message-ID")):
        if header not in first:
            defects.append(f"missing {label} header")

    if plain is None:
        text, html, attachments = _bodies(msg, raw, defects, spooled)
    else:
        text, html, attachments = _plain_bodies(plain, defects)
    return ParsedMessage(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=tuple(_mime.extract_ids(first.get("in-reply-to", ""))),
        references=_references(first.get("references", "")),
        from_=from_[0] if from_ else None,
        sender=sender[0] if sender else None,
        reply_to=addresses("Reply-To"),
        to=addresses("To"),
        cc=addresses("Cc"),
        resent_from=addresses("Resent-From"),
        subject=first.get("subject", ""),
        date=date,
        text=text,
        html=html,
        attachments=attachments,
        headers=tuple(headers),
        thread_index="".join(first.get("thread-index", "").split()) or None,
        defects=tuple(dict.fromkeys(_mime.clean_text(d) for d in defects)),  # order kept
    )


def _references(value: str) -> tuple[MessageId, ...]:
    unique = tuple(dict.fromkeys(_mime.extract_ids(value)))
    # The newest ancestors are at the end and matter most for threading.
    return unique[-_MAX_REFERENCES:]


def _bodies(
    msg: Message, raw: bytes, defects: list[str], spooled: dict[int, SpooledBody]
) -> tuple[str, str, tuple[Part, ...]]:
    """Pick the text and html bodies; every other leaf part becomes a :class:`Part`."""
    text_leaf: _Labelled | None = None
    html_leaf: _Labelled | None = None
    others: list[_Labelled] = []
    walked: list[_Labelled] = []
    for number, leaf in enumerate(_mime.leaves(msg), start=1):
        where = f"part {number} ({leaf.content_type})"
        if leaf.is_broken_multipart:
            defects.append(f"{where}: multipart without usable parts; read as text")
        name, notes = _mime.filename(leaf.part, where)
        defects.extend(notes)
        labelled = _Labelled(leaf, where, name, spooled.get(id(leaf.part)))
        walked.append(labelled)
        body_candidate = (
            not leaf.is_message
            and name is None
            and _mime.disposition(leaf.part) != "attachment"
            and (leaf.content_type in {"text/plain", "text/html"} or leaf.is_broken_multipart)
        )
        if body_candidate and leaf.content_type != "text/html" and text_leaf is None:
            text_leaf = labelled
        elif body_candidate and leaf.content_type == "text/html" and html_leaf is None:
            html_leaf = labelled
        else:
            others.append(labelled)
    text, html = _text_and_html(
        _body_text(text_leaf, defects), _body_text(html_leaf, defects), defects
    )
    linesep = "\r\n" if b"\r\n" in raw else "\n"
    referenced = _mime.cid_references(html)
    parts = tuple(
        _part(item, index, referenced, linesep, defects)
        for index, item in enumerate(others, start=1)
    )
    # Collected last: decoding a payload is what reports bad base64 and the like.
    defects.extend(_mime.describe_defect(d, "message") for d in msg.defects)
    for item in walked:
        if item.leaf.part is not msg:
            defects.extend(_mime.describe_defect(d, item.where) for d in item.leaf.part.defects)
    return text, html, parts


def _plain_bodies(
    plain: _plain.PlainMessage, defects: list[str]
) -> tuple[str, str, tuple[Part, ...]]:
    """:func:`_bodies` for a message :mod:`core.mail._plain` took: its one part is the
    text or the html body, and only decoding it reports defects."""
    body = _decoded_text(plain.body, plain.charset, f"part 1 ({plain.content_type})",
                         defects)
    if plain.content_type == "text/html":
        text, html = _text_and_html("", body, defects)
    else:
        text, html = _text_and_html(body, "", defects)
    # Collected last, as _bodies collects the message's own (base64's, here).
    defects.extend(_mime.describe_defect(d, "message") for d in plain.defects)
    return text, html, ()


def _text_and_html(text: str, html: str, defects: list[str]) -> tuple[str, str]:
    """The bodies as chosen: the html flattened, the text derived from it if empty."""
    html, flattened = html_depth.flatten(html)
    if flattened:  # before anything parses it: see core.mail.html_depth
        defects.append(f"text/html body nested deeper than {html_depth.MAX_DEPTH} elements;"
                       " the deeper tags dropped")
    if not text.strip() and html:  # some clients send an empty text alternative
        text = html_to_text(html)
    return text, html


@dataclass(frozen=True)
class _Labelled:
    leaf: _mime.Leaf
    where: str  # how defect notes name the part
    filename: str | None
    spooled: SpooledBody | None  # its payload, when it was decoded to disk


def _payload(item: _Labelled) -> tuple[bytes | SpooledFile, list[str]]:
    """The part's payload, transfer encoding undone, as ``_mime.payload_bytes`` gives it."""
    part, spooled = item.leaf.part, item.spooled
    if spooled is None:
        return _mime.payload_bytes(part, item.where)
    # Decoded already: report what decoding it here would have reported.
    for defect in spooled.defects:
        part.policy.handle_defect(part, defect)
    return spooled.file, _mime.transfer_encoding_notes(part, item.where)


def _body_text(item: _Labelled | None, defects: list[str]) -> str:
    if item is None:
        return ""
    payload, notes = _payload(item)
    defects.extend(notes)
    data = payload if isinstance(payload, bytes) else payload.read_bytes()
    return _decoded_text(data, _mime.charset(item.leaf.part), item.where, defects)


def _decoded_text(data: bytes, charset: str | None, where: str, defects: list[str]) -> str:
    """A body part's bytes as text: its charset's (or the best guess), cleaned for
    storage, with LF line ends."""
    text, notes = _mime.decode_bytes(data, charset, where)
    defects.extend(notes)
    return _mime.lf_line_ends(_mime.clean_text(text))


def _part(
    item: _Labelled, index: int, referenced: set[str], linesep: str, defects: list[str]
) -> Part:
    leaf, name = item.leaf, item.filename
    content: bytes | SpooledFile
    if leaf.is_message:
        payload = _mime.safe_payload(leaf.part)
        inner = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        content = b"".join(_mime.serialize(p, linesep) for p in inner)
        if name is None and leaf.content_type == "message/rfc822":
            subject = _inner_subject(inner[0]) if inner else ""
            name = f"{subject or 'message'}.eml"
    else:
        content, notes = _payload(item)
        defects.extend(notes)
    cid = _mime.content_id(leaf.part)
    inline = _mime.disposition(leaf.part) == "inline" or (
        cid is not None and (cid.lower() in referenced or leaf.in_related)
    )
    return Part(
        filename=name or _mime.generated_filename(leaf.content_type, index),
        content_type=leaf.content_type,
        body=content,
        inline=inline,
        content_id=cid,
        sha256=(BlobHash(hashlib.sha256(content).hexdigest()) if isinstance(content, bytes)
                else content.sha256),
    )


def _inner_subject(inner: Message) -> str:
    raw = _mime.raw_header(inner, "Subject") or ""
    subject, _ = _mime.decode_header_value(raw, "Subject")
    # The subject becomes a filename: no path separators or control characters.
    return re.sub(r"[\x00-\x1f\x7f/\\]", "", subject).strip()


def synthetic_message_id(parsed: ParsedMessage) -> MessageId:
    """A stable msg-id for a message that has none, equal for identical copies.

    Built from the From key, Date, Subject, the sorted To/Cc keys, the text body, the
    html body and the sorted sha256 of every attachment and inline part, so the same
    message received twice (CRLF or LF) maps to the same id, and two messages that
    differ only in their html or their files do not. The html and the files are added
    only when there are any: a text-only message keeps the id it had before they were.
    """
    recipients = sorted({a.key for a in parsed.to + parsed.cc})
    fields: list[object] = [
        parsed.from_.key if parsed.from_ else "",
        parsed.date.isoformat() if parsed.date else "",
        parsed.subject,
        recipients,
        hashlib.sha256(parsed.text.strip().encode("utf-8", "replace")).hexdigest(),
    ]
    html = parsed.html.strip()
    if html or parsed.attachments:
        fields.append(hashlib.sha256(html.encode("utf-8", "replace")).hexdigest()
                      if html else "")
        fields.append(sorted(part.sha256 for part in parsed.attachments))
    digest = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
    return MessageId(f"{digest[:32]}@synthetic.inboxlog")


_BLOCK_TAGS = frozenset({
    "p", "div", "li", "tr", "table", "ul", "ol", "blockquote", "pre",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr",
})  # fmt: skip
# html whitespace is ASCII only: &nbsp; must survive (an Outlook empty paragraph).
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_SKIPPED_TAGS = frozenset({"script", "style", "title", "template"})


class _TextExtractor(HTMLParser):
    """Collects the visible text of an html document, with line breaks for blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0
        self._pre = 0

    def _newline(self) -> None:
        while self.chunks and not self.chunks[-1].strip(" "):  # drop inter-tag spaces
            self.chunks.pop()
        if self.chunks and not self.chunks[-1].endswith("\n"):
            self.chunks.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "br":
            self.chunks.append("\n")
        elif tag in _BLOCK_TAGS:
            self._pre += tag == "pre"
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._pre = max(0, self._pre - (tag == "pre"))
            self._newline()
        elif tag in {"td", "th"}:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Source whitespace is not layout in html, except inside <pre>.
            self.chunks.append(data if self._pre else _HTML_SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """Visible text of ``html``: tags, scripts and styles removed, blocks on new lines.

    Entities are unescaped, each line is stripped, and runs of blank lines
    collapse to one. Never raises.
    """
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
        text = "".join(extractor.chunks)
    except Exception:  # HTMLParser has asserted on odd markup in the past
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", html))
    text = _mime.clean_text(text).replace("\xa0", " ").replace("\u200b", "").replace("\ufeff", "")
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_ALLOWED_TAGS = nh3.ALLOWED_TAGS | {"font", "tfoot", "big", "center", "u", "s"}
_DROPPED_WITH_CONTENT = {
    "script", "style", "title", "template", "iframe", "frame", "frameset", "object",
    "embed", "applet", "textarea", "select", "button", "option",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align", "valign", "width", "height", "bgcolor"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "blockquote": {"cite", "type"},
}
# No position/z-index (overlays that spoof the host page) and nothing that can
# hold url(), which would load remote content past our src checks.
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent",
    "text-transform", "line-height", "letter-spacing", "word-spacing", "white-space",
    "vertical-align", "direction", "display", "float", "clear", "width", "height",
    "max-width", "min-width", "max-height", "min-height", "margin", "margin-top",
    "margin-right", "margin-bottom", "margin-left", "padding", "padding-top",
    "padding-right", "padding-bottom", "padding-left", "border", "border-top",
    "border-right", "border-bottom", "border-left", "border-color", "border-style",
    "border-width", "border-radius", "border-collapse", "border-spacing",
    "table-layout", "list-style-type", "overflow",
}  # fmt: skip
_IMAGE_DATA_URL = re.compile(r"^data:image/(png|jpe?g|gif|webp|bmp);", re.IGNORECASE)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Per-attribute URL policy: nh3's scheme list is shared by href and src."""
    lowered = value.strip().lower()
    if attribute == "href":
        return value if lowered.startswith(("http://", "https://", "mailto:")) else None
    if attribute == "src":
        if lowered.startswith(("http://", "https://", "cid:")) or _IMAGE_DATA_URL.match(lowered):
            return value
        return None
    return value


def sanitize_html(html: str) -> str:
    """Make untrusted email html safe to display; never raises.

    Keeps formatting, tables, images (``http``, ``https``, ``cid``, ``data:image``)
    and links (``http``, ``https``, ``mailto``, with ``rel="noopener noreferrer"``);
    drops scripts, styles, frames, forms, event handlers and unsafe CSS. Tags nested
    deeper than ``html_depth.MAX_DEPTH`` are dropped first (their text kept).
    """
    try:
        return nh3.clean(
            html_depth.flatten(_mime.clean_text(html))[0],
            tags=_ALLOWED_TAGS,
            clean_content_tags=_DROPPED_WITH_CONTENT,
            attributes=_ATTRIBUTES,
            attribute_filter=_filter_attribute,
            url_schemes={"http", "https", "mailto", "cid", "data"},
            filter_style_properties=_STYLE_PROPERTIES,
            link_rel="noopener noreferrer",
            url_relative="deny",
        )
    except Exception:  # fall back to showing the markup as inert text
        return html_lib.escape(_mime.clean_text(html))
