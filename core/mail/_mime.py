"""Private helpers for :mod:`core.mail.parsing`: defensive decoding of MIME pieces.

Every function here is total: it returns a best-effort value plus human-readable
defect notes instead of raising, because real-world mail is routinely broken and
one bad header must never cost us the rest of the message.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import email.utils
import io
import mimetypes
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import Message
from urllib.parse import unquote

import charset_normalizer

from core.types import MessageId


class _RememberingPolicy(email.policy.EmailPolicy):
    """``email.policy.default``, except that a header value it parsed into a header
    object (``msg["Content-Type"]``, and each ``get_content_type``, ``get_param``,
    ``get_filename`` behind it) is remembered by its name and raw value: the stdlib
    parses it again at every call, five to seven times a message, which was about half
    of ``parse_message``'s time (bench/NOTES.md). Header objects are read, never
    changed, so equal inputs can share one; a header that did not parse the same twice
    would be a stdlib bug. The memory holds at most 4,096 values of up to 1 KB (a
    sender cannot fill it with large ones), and forgets them all when full."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        if (hasattr(value, "name") or not isinstance(value, str)
                or len(value) > _MAX_REMEMBERED_VALUE):
            parsed: str = super().header_fetch_parse(name, value)  # a header object
            return parsed
        key = (name, value)
        found = _PARSED_HEADERS.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_PARSED_HEADERS) >= _MAX_PARSED_HEADERS:
                _PARSED_HEADERS.clear()  # rare: a burst of distinct values
            _PARSED_HEADERS[key] = found
        return found


_PARSED_HEADERS: dict[tuple[str, str], str] = {}
_MAX_PARSED_HEADERS = 4096
_MAX_REMEMBERED_VALUE = 1024
# The policy every message is parsed with (``core.mail.parsing``, ``_large_parts``).
PARSE_POLICY = _RememberingPolicy()

# Labels that real mailers emit but Python's codec registry does not know (or
# knows only as a narrower charset than what senders actually use).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "utf8mb4": "utf-8",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
}
# Below this size charset_normalizer's guesses are close to random ("Café" in
# latin-1 comes back as UTF-16), so short payloads skip straight to the
# single-byte fallbacks.
_MIN_GUESS_BYTES = 64
# What undeclared mail is actually written in. Restricting the guesser to these
# keeps it from answering EBCDIC or UTF-16 and makes it several times faster.
_GUESS_CHARSETS = [
    "cp1252", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253", "cp1254",
    "cp1255", "cp1256", "cp1257", "cp874", "mac_roman", "shift_jis", "euc_jp", "iso2022_jp",
    "gb18030", "big5", "euc_kr",
]  # fmt: skip
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BRACKETED_ID = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/jpeg": ".jpg",
    "message/rfc822": ".eml",
    "application/octet-stream": ".bin",
}
_MIME_TYPES: mimetypes.MimeTypes | None = None
_TRANSFER_ENCODINGS = frozenset(
    ["", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "uue"]
)
# Python codecs that are not charsets: a message must not choose to have its
# body run through an escape-sequence interpreter.
_NOT_CHARSETS = frozenset(
    ["unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode", "charmap"]
)


def clean_text(text: str) -> str:
    """Drop NULs and replace lone surrogates so the text is storable as UTF-8."""
    # Postgres rejects NUL in text columns and surrogates cannot be encoded.
    if text.isascii():  # no surrogate to look for (isascii is a flag check)
        return text.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))


def lf_line_ends(text: str) -> str:
    """``text`` with CRLF and lone CR line ends made LF. Most text has no CR: looking
    for one is much cheaper than the replacing, which scans for CRLF."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _normalize_charset(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    return _CHARSET_ALIASES.get(name, name) if name else None


def _codec(name: str) -> str | None:
    """Python's canonical codec name for a charset label, ``None`` if unusable."""
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, UnicodeError):  # unknown, NUL or surrogate in the name
        return None
    return None if codec.replace("_", "-") in _NOT_CHARSETS else codec


def to_bytes(text: str) -> bytes:
    """Recover the bytes behind a str the email parser decoded with surrogateescape."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return text.encode("utf-8", "replace")


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Decode undeclared or mislabelled bytes: UTF-8, a guess, then single-byte."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if len(data) >= _MIN_GUESS_BYTES:
        try:
            best = charset_normalizer.from_bytes(data, cp_isolation=_GUESS_CHARSETS).best()
        except Exception:  # a guesser bug must not cost us the body
            best = None
        if best is not None:
            # Equivalent decodings are listed together; prefer the one mail uses most.
            encoding = "cp1252" if "cp1252" in best.could_be_from_charset else best.encoding
            try:
                return data.decode(encoding), encoding
            except (LookupError, UnicodeError):
                pass
    try:
        # cp1252 is what "latin-1" senders really mean (smart quotes at 0x80-0x9f).
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def decode_bytes(data: bytes, charset: str | None, where: str) -> tuple[str, list[str]]:
    """Decode ``data`` with its declared charset, falling back with a defect note."""
    declared = _normalize_charset(charset)
    if declared is None or declared in {"us-ascii", "ascii"}:
        if data.isascii():
            return data.decode("ascii"), []
        problem = f"{where}: undeclared 8-bit bytes" + (
            f" (declared {charset!r})" if declared else ""
        )
    else:
        codec = _codec(declared)
        problem = f"{where}: unknown charset {charset!r}"
        if codec is not None:
            try:
                return data.decode(codec), []
            except (UnicodeError, ValueError):
                problem = f"{where}: bytes are not valid {charset!r}"
            except LookupError:  # a bytes-to-bytes codec such as base64
                pass
    text, used = _guess_decode(data)
    return text, [f"{problem}; decoded as {used}"]


def header_text(raw: str, where: str) -> tuple[str, list[str]]:
    """Turn a raw parsed header value (8-bit bytes as surrogates) into real text."""
    if raw.isascii() or not _SURROGATES.search(raw):
        return raw, []
    data = to_bytes(raw)
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    text, used = _guess_decode(data)
    return text, [f"{where}: undeclared 8-bit bytes; decoded as {used}"]


def unfold(value: str) -> str:
    """Undo header folding and drop stray line breaks."""
    if "\n" not in value and "\r" not in value:
        return value
    return _FOLD.sub("", value).replace("\r", "").replace("\n", "")


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    data = payload.encode("utf-8")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    data = data.rstrip(b"=")
    # Senders routinely drop the padding, so it is re-added; anything else that
    # is not base64 makes the word invalid rather than silently empty.
    return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)


def decode_words(value: str, where: str) -> tuple[str, list[str]]:
    """Decode RFC 2047 encoded words; undecodable words are kept literally."""
    if "=?" not in value:
        return value, []
    defects: list[str] = []
    out: list[str] = []
    # Adjacent words in one charset are joined before decoding because mailers
    # split multi-byte characters across words.
    run: list[tuple[bytes, str]] = []

    def flush() -> None:
        for data, charset in run:
            text, notes = decode_bytes(data, charset, where)
            out.append(text)
            defects.extend(notes)
        run.clear()

    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        pos = match.end()
        if gap and not (run and gap.isspace()):
            flush()
            out.append(gap)
        charset = match.group(1).split("*", 1)[0]  # drop an RFC 2231 language tag
        try:
            data = _decode_word_payload(match.group(2), match.group(3))
        except (binascii.Error, ValueError):
            flush()
            out.append(match.group(0))
            defects.append(f"{where}: invalid encoded word {match.group(0)!r} kept as is")
            continue
        if run and run[-1][1].lower() == charset.lower():
            run[-1] = (run[-1][0] + data, charset)
        else:
            run.append((data, charset))
    flush()
    out.append(value[pos:])
    return "".join(out), defects


def decode_header_value(raw: str, where: str) -> tuple[str, list[str]]:
    """Full decoding of one raw header value: 8-bit, folding, encoded words."""
    text, defects = header_text(raw, where)
    decoded, more = decode_words(unfold(text), where)
    return clean_text(decoded).strip(), defects + more


def parse_addresses(
    raw_values: Collection[str], where: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse address headers into ``(display name, addr-spec)`` pairs.

    The addr-spec keeps its local part, has its domain lower-cased, and must
    contain a non-empty local part and domain; anything else is reported.
    """
    defects: list[str] = []
    values: list[str] = []
    if not raw_values:  # an absent header: nothing for the stdlib's parser to do
        return [], defects
    for raw in raw_values:
        text, notes = header_text(raw, where)
        values.append(unfold(text))
        defects.extend(notes)
    try:
        pairs = _simple_addresses(values) or email.utils.getaddresses(values)
    except Exception:  # the stdlib address parser has had crash bugs
        defects.append(f"{where}: unparseable address list")
        return [], defects
    result: list[tuple[str, str]] = []
    for name, addr in pairs:
        addr = clean_text(addr).strip()
        local, _, domain = addr.rpartition("@")
        # addr.split() != [addr]: whitespace in it (str.isspace's), in one C call.
        if not local or not domain or addr.split() != [addr]:
            if addr or name:
                defects.append(f"{where}: unusable address {addr or name!r} ignored")
            continue
        display, notes = decode_words(name, where)
        defects.extend(notes)
        display = clean_text(display).strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = display[1:-1].strip()  # quotes that were inside an encoded word
        result.append((display, f"{local}@{domain.lower()}"))
    return result, defects


# Mailboxes email.utils.getaddresses reads without surprises: atoms only (no quotes,
# comments, routes, groups or escapes), ASCII, one space or tab between the words of a
# name, an addr-spec of dot-separated atoms. _simple_addresses gives its result for
# them in one regex pass; anything else goes to it.
_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PHRASE_ATOM = r"[A-Za-z0-9!#$%&'*+\-./=?^_`{|}~]+"  # getphraselist: "." does not end it
_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:({_PHRASE_ATOM}(?:[ \t]+{_PHRASE_ATOM})*)[ \t]*)?<({_ADDR_SPEC})>"
    rf"|({_ADDR_SPEC}))[ \t]*(?:,|\Z)"
)


def _simple_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    """``email.utils.getaddresses(values)`` when every value is a list of simple
    mailboxes (see ``_MAILBOX``), else ``None``."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        pos, end = 0, len(value)
        if not value.strip(" \t") or not value.isascii():
            return None
        while pos < end:
            match = _MAILBOX.match(value, pos)
            if match is None or (match.group(0).endswith(",") and match.end() == end):
                return None  # not simple, or a trailing comma
            name, routed, bare = match.groups()
            # getphraselist: the words of a name joined with one space.
            pairs.append((" ".join(name.split()) if name else "", routed or bare))
            pos = match.end()
    return pairs


def extract_ids(value: str, *, allow_bare: bool = False) -> list[MessageId]:
    """Return the ``<local@domain>`` msg-ids in ``value`` in order, without brackets."""
    ids = [MessageId(m) for m in _BRACKETED_ID.findall(value)]
    bare = value.strip()
    bare_ok = "@" in bare and not any(c.isspace() or c in "<>" for c in bare)
    if not ids and allow_bare and bare_ok:
        ids.append(MessageId(bare))
    return ids


def parse_date(raw: str) -> datetime | None:
    """Parse an RFC 5322 date into an aware UTC datetime, ``None`` if unusable."""
    try:
        parsed = email.utils.parsedate_to_datetime(raw.strip())
    except Exception:  # ValueError, TypeError, OverflowError across versions
        return None
    if parsed.tzinfo is None:  # "-0000" means "no zone information": treat as UTC
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


@dataclass(frozen=True)
class Leaf:
    """A non-container part found while walking the MIME tree."""

    part: Message
    content_type: str
    in_related: bool
    is_message: bool  # a message/* part whose payload is a parsed message
    is_broken_multipart: bool  # multipart/* without usable parts (no boundary)


def leaves(msg: Message) -> Iterator[Leaf]:
    """Yield leaf parts depth-first in document order, without recursion."""
    # An explicit stack because the stdlib's recursive walk() fails on deep nesting.
    stack: list[tuple[Message, bool]] = [(msg, False)]
    while stack:
        part, in_related = stack.pop()
        ctype = content_type(part)
        payload = safe_payload(part)
        if isinstance(payload, list) and ctype.startswith("message/"):
            yield Leaf(part, ctype, in_related, True, False)
        elif isinstance(payload, list):
            related = in_related or ctype == "multipart/related"
            children = [p for p in payload if isinstance(p, Message)]
            stack.extend((child, related) for child in reversed(children))
        else:
            yield Leaf(part, ctype, in_related, False, ctype.startswith("multipart/"))


def safe_payload(part: Message) -> object:
    try:
        return part.get_payload()
    except Exception:
        return None


def content_type(part: Message) -> str:
    """The part's lower-case ``type/subtype``, ``text/plain`` when invalid (RFC 2045)."""
    try:
        ctype = part.get_content_type().strip().lower()
    except Exception:
        return "text/plain"
    return ctype if _CONTENT_TYPE.match(ctype) else "text/plain"


def raw_header(part: Message, name: str) -> str | None:
    """First raw header value by case-insensitive name, bypassing header objects."""
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def disposition(part: Message) -> str:
    raw = raw_header(part, "Content-Disposition") or ""
    return raw.split(";", 1)[0].strip().lower()


def content_id(part: Message) -> str | None:
    raw = raw_header(part, "Content-ID")
    if raw is None:
        return None
    value = clean_text(unfold(raw)).strip().strip("<>").strip()
    return value or None


def charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def filename(part: Message, where: str) -> tuple[str | None, list[str]]:
    """The decoded filename with any directory part removed, or ``None``."""
    try:
        name = part.get_filename()
    except Exception:
        return None, [f"{where}: unparseable filename"]
    if not name:
        return None, []
    text, defects = header_text(str(name), where)
    # policy.default decodes RFC 2231 itself but leaves RFC 2047 in some shapes.
    text, more = decode_words(text, where)
    # Only the last path segment: a filename is never a path we should honour.
    text = _CONTROL.sub("", clean_text(text)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return text or None, defects + more


def generated_filename(ctype: str, index: int) -> str:
    """A stable name like ``image-1.png`` or ``attachment-2.pdf`` for a nameless part."""
    global _MIME_TYPES
    ext = _EXTENSIONS.get(ctype)
    if ext is None:
        if _MIME_TYPES is None:
            # An instance only knows Python's built-in table, unlike the module
            # functions that read /etc/mime.types, so names match on every machine.
            _MIME_TYPES = mimetypes.MimeTypes()
        ext = _MIME_TYPES.guess_extension(ctype) or ".bin"
    stem = "image" if ctype.startswith("image/") else "attachment"
    return f"{stem}-{index}{ext}"


def transfer_encoding_notes(part: Message, where: str) -> list[str]:
    """A note when the part's transfer encoding is one nobody knows."""
    cte = unfold(raw_header(part, "Content-Transfer-Encoding") or "").strip().lower()
    if cte not in _TRANSFER_ENCODINGS:
        # The stdlib returns such payloads untouched; say so rather than guess.
        return [f"{where}: unknown transfer encoding {cte!r}; content kept as is"]
    return []


def payload_bytes(part: Message, where: str) -> tuple[bytes, list[str]]:
    """The part body with its transfer encoding undone."""
    defects = transfer_encoding_notes(part, where)
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data, defects
    payload = safe_payload(part)
    if isinstance(payload, str):
        defects.append(f"{where}: undecodable transfer encoding")
        return to_bytes(payload), defects
    return b"", defects


def serialize(msg: Message, linesep: str) -> bytes:
    """Bytes of an embedded message, with its headers kept as they were."""
    policy = email.policy.default.clone(refold_source="none", linesep=linesep)
    for candidate in (policy, email.policy.compat32.clone(linesep=linesep)):
        buffer = io.BytesIO()
        try:
            BytesGenerator(buffer, mangle_from_=False, policy=candidate).flatten(msg)
        except Exception:  # e.g. RecursionError on absurd nesting; try the next policy
            continue
        return buffer.getvalue()
    return b""


def describe_defect(defect: object, where: str) -> str:
    """``CloseBoundaryNotFoundDefect`` -> ``"<where>: close boundary not found"``."""
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return f"{where}: {words}"


def cid_references(html: str) -> set[str]:
    """Content-IDs referenced as ``cid:`` URLs in the html, lower-cased."""
    refs = re.findall(r"""cid:([^"'\s>)]+)""", html, flags=re.IGNORECASE)
    return {unquote(ref).strip("<>").lower() for ref in refs}
