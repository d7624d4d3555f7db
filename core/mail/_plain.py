"""The common case of :func:`core.mail.parsing.parse_message` without the stdlib parser.

Most mail inboxlog sees is one text part under a plain header block. For such a
message the stdlib's feedparser, its ``Message`` and the header objects behind
``get_content_type``/``get_param`` cost most of a parse (bench/NOTES.md, "Parsing's
common case"), and give nothing the few lines here do not: :func:`split` returns the
raw header items and the body bytes exactly as ``BytesParser(policy=PARSE_POLICY)``
and ``get_payload(decode=True)`` would, plus the part's content type and charset as
``get_content_type`` and ``get_content_charset`` would. ``parsing`` then runs the
same helpers over them as over the stdlib's tree.

:func:`split` takes a message only when it is sure; anything else returns ``None``
and goes to the stdlib as before:

- the header block is lines ``name: value`` (a name of printable ASCII without a
  colon, not a ``From `` envelope line) or folded continuations after the first
  line, all ending with the same CRLF or LF, with no other control character than
  tab (8-bit bytes are read as the feedparser reads them), then a blank line;
- at most one Content-Type, which is absent or ``text/plain``/``text/html`` with
  only ``charset``, ``format`` and ``delsp`` parameters in simple syntax (each at
  most once);
- at most one Content-Transfer-Encoding, absent or 7bit, 8bit or binary (the
  payload is then the body bytes themselves), or exactly ``quoted-printable`` or
  ``base64`` (any case, nothing around it), decoded by the functions
  ``get_payload(decode=True)`` calls, with the defects base64 decoding reports;
- no Content-Disposition (no attachment, no filename).

The feedparser's defects come only from what these rules exclude, so a message taken
here has none but base64's.
"""

from __future__ import annotations

import quopri
import re
from dataclasses import dataclass
from email._encoded_words import decode_b  # what get_payload(decode=True) decodes base64 with
from email.errors import MessageDefect

# One header line, then its continuations; the name as feedparser.headerRE wants it.
# Values: printable ASCII, tab and 8-bit bytes; never CR, LF or another control.
_FIELD = {
    sep: re.compile(
        rb"([\x21-\x39\x3b-\x7e]+):([\t\x20-\x7e\x80-\xff]*" + sep
        + rb"(?:[\t ][\t\x20-\x7e\x80-\xff]*" + sep + rb")*)"
    )
    for sep in (b"\r\n", b"\n")
}
# A Content-Type the stdlib reads the same way as this module does (see _content_type).
_CONTENT_TYPE = re.compile(
    r"[ \t]*(text/(?:plain|html))[ \t]*"
    r"((?:;[ \t]*(?:charset|format|delsp)=(?:[A-Za-z0-9._+-]+|\"[A-Za-z0-9._+-]*\")[ \t]*)*)"
    r";?[ \t]*",
    re.IGNORECASE,
)
_PARAMETER = re.compile(r";[ \t]*([A-Za-z]+)=\"?([A-Za-z0-9._+-]*)\"?[ \t]*")
_PLAIN_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
# get_payload compares str(header).lower() with these: only the bare word is surely that.
_DECODED_ENCODINGS = frozenset({"quoted-printable", "base64"})


@dataclass(frozen=True)
class PlainMessage:
    """A single-part text message, as the stdlib would have parsed it."""

    headers: tuple[tuple[str, str], ...]  # Message.raw_items(): (name, raw value)
    content_type: str  # lower-case, "text/plain" or "text/html"
    charset: str | None  # as get_content_charset() gives it: lower-case, unquoted
    body: bytes  # get_payload(decode=True)
    defects: tuple[MessageDefect, ...]  # what get_payload(decode=True) registered (base64)


def split(raw: bytes) -> PlainMessage | None:
    """``raw`` cut into headers and body when it is the common case, else ``None``."""
    if raw.startswith(b"From "):
        return None
    first_end = raw.find(b"\n")
    if first_end < 0:
        return None
    sep = b"\r\n" if first_end > 0 and raw[first_end - 1] == 0x0D else b"\n"
    field = _FIELD[sep]
    headers: list[tuple[str, str]] = []
    pos = 0
    while True:
        if raw.startswith(sep, pos):
            break  # the blank line that ends the header block
        match = field.match(raw, pos)
        if match is None:
            return None
        pos = match.end()
        # EmailPolicy.header_source_parse: leading blanks of the first line dropped,
        # continuations kept with their line breaks, the last line break dropped.
        value = match.group(2)[: -len(sep)].lstrip(b" \t")
        headers.append((match.group(1).decode("ascii"),
                        value.decode("ascii", "surrogateescape")))
    found = _content_headers(headers)
    if found is None:
        return None
    content_type, charset, encoding = found
    body = raw[pos + len(sep):]
    defects: tuple[MessageDefect, ...] = ()
    if encoding == "quoted-printable":
        body = quopri.decodestring(body)
    elif encoding == "base64":
        body, found_defects = decode_b(b"".join(body.splitlines()))
        defects = tuple(found_defects)
    return PlainMessage(tuple(headers), content_type, charset, body, defects)


def _content_headers(headers: list[tuple[str, str]]) -> tuple[str, str | None, str] | None:
    """The content type, charset and transfer encoding ("" when the body is the payload),
    or ``None`` when the headers leave the common case."""
    content_types: list[str] = []
    encodings: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            content_types.append(value)
        elif lowered == "content-transfer-encoding":
            encodings.append(value)
        elif lowered == "content-disposition":
            return None
    if len(encodings) > 1 or len(content_types) > 1:
        return None
    encoding = ""
    if encodings and encodings[0].lower() in _DECODED_ENCODINGS:
        encoding = encodings[0].lower()
    elif encodings and encodings[0].strip(" \t").lower() not in _PLAIN_ENCODINGS:
        return None
    found = _content_type(content_types[0]) if content_types else ("text/plain", None)
    return None if found is None else (*found, encoding)


def _content_type(value: str) -> tuple[str, str | None] | None:
    if "\n" in value or "\r" in value:
        return None  # folded: left to the stdlib's header parser
    match = _CONTENT_TYPE.fullmatch(value)
    if match is None:
        return None
    params: dict[str, str] = {}
    for name, param in _PARAMETER.findall(match.group(2)):
        if name.lower() in params:
            return None
        params[name.lower()] = param
    charset = params.get("charset")
    # get_content_charset(): lower-cased; an empty quoted value is an empty charset.
    return match.group(1).lower(), None if charset is None else charset.lower()
