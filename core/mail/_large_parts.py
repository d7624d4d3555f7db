"""Large leaf bodies cut out of a raw message before the stdlib parser sees it.

The stdlib's feedparser keeps every body line as a str before joining them, and
``get_payload(decode=True)`` copies the payload twice more: a 45 MB message with a
44 MB attachment peaks at about eight times its size. So each large leaf body (base64
or not transfer-encoded) is first decoded straight to a spool file, hashed as it is
written, and replaced by a one-line placeholder; the stdlib parses what remains, and
each placeholder is then looked up in its tree and paired with its file.

The result is the stdlib's own, byte for byte: a body is cut only where the
feedparser's rules (universal newlines, the boundary lines of every enclosing
multipart) make it one leaf's whole payload, and only when none of those boundaries
occurs in it at all; a base64 body only when the stdlib would decode it on its strict
path, with the same defects; and each placeholder must come back as the payload of the
part the cut was made in. Anything else and the caller parses the original bytes.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from email.errors import InvalidBase64PaddingDefect, MessageDefect
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

from core.mail._mime import PARSE_POLICY
from core.mail.spool import SpooledFile, SpoolWriter

# Bodies above this size are spooled. Below it the stdlib's copies cost little.
SPOOL_THRESHOLD = 1024 * 1024
_CHUNK = 1024 * 1024  # decoded per step: bounds memory, and the GIL is free in between
_MAX_DEPTH = 100  # the stdlib's own recursion gives up long before
_MAX_PARTS = 10_000
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# What Message.get_payload(decode=True) transforms other than base64: left to it.
_NOT_STREAMED = frozenset({"quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"})
# feedparser.headerRE and its universal-newline line splitting, on bytes.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_LF, _CR, _SPACE, _TAB = 10, 13, 32, 9


@dataclass(frozen=True)
class SpooledBody:
    """A leaf's decoded payload on disk, and the defects decoding it reports."""

    file: SpooledFile
    # What Message.get_payload(decode=True) would have registered on the part.
    defects: tuple[MessageDefect, ...]


def parse_spooling(
    raw: bytes, spool_dir: Path, threshold: int = SPOOL_THRESHOLD
) -> tuple[Message, dict[int, SpooledBody]] | None:
    """The stdlib's parse of ``raw`` with its large leaf bodies on disk.

    Returns the parsed message and, by ``id(part)``, the spooled body of each part whose
    payload is a placeholder. ``None`` when nothing was worth cutting or the cut could
    not be proven right: parse ``raw`` itself then. Never raises.
    """
    if len(raw) <= threshold:
        return None
    cuts: list[_Cut] = []
    try:
        for candidate in _Scanner(raw, threshold).candidates():
            body = _spool(raw, candidate, spool_dir)
            if body is not None:
                cuts.append(_Cut(candidate, body, f"inboxlog-spooled-{secrets.token_hex(16)}"))
        if not cuts:
            return None
        msg = BytesParser(policy=PARSE_POLICY).parsebytes(_reduced(raw, cuts))
        found = _locate(msg, cuts)
    except Exception:  # the stdlib's RecursionError, an OSError of the spool: parse as usual
        found = None
    if found is None:
        for cut in cuts:
            cut.body.file.discard()
        return None
    return msg, found


@dataclass(frozen=True)
class _Boundary:
    text: str  # as Message.get_boundary() gives it
    line: bytes  # b"--" + the boundary: how its lines start


@dataclass(frozen=True)
class _Hit:
    """A boundary line: ``raw[start:end]``, end of line included."""

    boundary: _Boundary
    start: int
    end: int
    close: bool  # the closing ``--boundary--``


@dataclass(frozen=True)
class _Candidate:
    start: int  # the payload is raw[start:end], its final line ending excluded
    end: int
    path: tuple[int, ...]  # child indexes from the root
    boundaries: tuple[_Boundary, ...]  # of the multiparts on the path, outermost first
    cte: str  # as Message.get_payload reads it


@dataclass(frozen=True)
class _Cut:
    candidate: _Candidate
    body: SpooledBody
    token: str


class _GiveUp(Exception):
    """The message is too odd to be worth cutting."""


class _Scanner:
    """Walks the MIME structure the way email.feedparser does, without keeping bodies.

    Only the part headers are parsed (by the stdlib, from their exact bytes); bodies
    are skipped by searching for the boundary lines that end them.
    """

    def __init__(self, raw: bytes, threshold: int) -> None:
        self.raw = raw
        self.threshold = threshold
        self.found: list[_Candidate] = []
        self.parts = 0

    def candidates(self) -> list[_Candidate]:
        try:
            self._part(0, len(self.raw), (), (), digest_child=False, top=True)
        except _GiveUp:
            return []
        return self.found

    def _part(self, start: int, end: int, path: tuple[int, ...],
              stack: tuple[_Boundary, ...], *, digest_child: bool, top: bool) -> None:
        """The part in ``raw[start:end]``; ``end`` is the start of the line ending it."""
        self.parts += 1
        if self.parts > _MAX_PARTS or len(path) > _MAX_DEPTH:
            raise _GiveUp
        body = self._header_end(start, end, stack)
        if body is None:
            return  # no empty line after the headers: the feedparser's quirks apply
        headers = BytesParser(policy=PARSE_POLICY).parsebytes(
            self.raw[start:body], headersonly=True)
        if digest_child:  # as feedparser._new_message does
            headers.set_default_type("message/rfc822")
        maintype = headers.get_content_maintype()
        if maintype == "message":
            return  # parsed as a message of its own by the stdlib: left to it
        if maintype == "multipart":
            self._multipart(headers, body, path, stack)
            return
        payload_end = end if top else _before_line_end(self.raw, body, end)
        if payload_end - body <= self.threshold:
            return
        cte = str(headers.get("content-transfer-encoding", "")).lower()
        if cte in _NOT_STREAMED:
            return
        # Belt and braces: no enclosing boundary string anywhere in a cut body, so no
        # line of it can be one whatever the line rules (base64 never contains "-").
        if any(self.raw.find(b.line, body, payload_end) >= 0 for b in stack):
            return
        self.found.append(_Candidate(body, payload_end, path, stack, cte))

    def _multipart(self, headers: Message, body: int, path: tuple[int, ...],
                   stack: tuple[_Boundary, ...]) -> None:
        text = headers.get_boundary()
        if text is None:
            return  # read as text by the stdlib
        try:
            line = b"--" + text.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return  # can never match a line: everything is preamble
        if b"\r" in line or b"\n" in line:
            return
        own = _Boundary(text, line)
        inner = (*stack, own)
        digest = headers.get_content_type() == "multipart/digest"
        hit = self._next_boundary(body, inner)
        if hit is None or hit.boundary is not own or hit.close:
            return  # no part at all
        index = 0
        while True:
            child = hit.end
            # Like the feedparser, skip repeated boundary lines ("--b" then "--b--" too).
            while (again := self._boundary_at(child, inner)) is not None and again.boundary is own:
                child = again.end
            following = self._next_boundary(child, inner)
            child_end = following.start if following is not None else len(self.raw)
            self._part(child, child_end, (*path, index), inner, digest_child=digest, top=False)
            index += 1
            if following is None or following.boundary is not own or following.close:
                return  # the epilogue, if any, is not cut
            hit = following

    def _header_end(self, start: int, end: int, stack: tuple[_Boundary, ...]) -> int | None:
        """Where the body starts: after the empty line ending the header block."""
        pos = start
        while pos < end:
            match = _LINE.match(self.raw, pos, end)
            assert match is not None  # the pattern matches the empty string
            if self.raw[pos] in (_CR, _LF):
                return match.end()
            if not _HEADER_LINE.match(self.raw, pos) or self._boundary_at(pos, stack):
                return None
            pos = match.end()
        return None

    def _boundary_at(self, pos: int, bounds: tuple[_Boundary, ...]) -> _Hit | None:
        """The boundary line starting at ``pos``, the outermost boundary first."""
        for boundary in bounds:
            hit = self._find(boundary, pos, pos + 1)
            if hit is not None:
                return hit
        return None

    def _next_boundary(self, pos: int, bounds: tuple[_Boundary, ...]) -> _Hit | None:
        """The first boundary line at or after ``pos`` (a line start), the outermost
        boundary first when a line is several; the innermost is searched first, so the
        others are only searched up to it."""
        best: _Hit | None = None
        for boundary in reversed(bounds):
            limit = best.start + 1 if best is not None else len(self.raw)
            hit = self._find(boundary, pos, limit)
            if hit is not None:
                best = hit
        return best

    def _find(self, boundary: _Boundary, pos: int, limit: int) -> _Hit | None:
        """The first line starting in ``[pos, limit)`` that feedparser's boundary regex
        ``--boundary(--)?[ \\t]*(\\r\\n|\\r|\\n)?$`` matches."""
        raw, line = self.raw, boundary.line
        while True:
            found = raw.find(line, pos, limit + len(line) - 1)
            if found < 0:
                return None
            if found == 0 or raw[found - 1] in (_CR, _LF):  # at a line start
                after = found + len(line)
                close = raw.startswith(b"--", after)
                stop = after + 2 if close else after
                while stop < len(raw) and raw[stop] in (_SPACE, _TAB):
                    stop += 1
                if stop == len(raw) or raw[stop] in (_CR, _LF):
                    eol = 2 if raw.startswith(b"\r\n", stop) else 1 if stop < len(raw) else 0
                    return _Hit(boundary, found, stop + eol, close)
            pos = found + 1


def _before_line_end(raw: bytes, start: int, end: int) -> int:
    """``end`` less the line ending before it: the newline preceding a boundary belongs
    to the boundary (RFC 2046), and the feedparser strips it from the payload."""
    if end - start >= 2 and raw.startswith(b"\r\n", end - 2):
        return end - 2
    if end > start and raw[end - 1] in (_CR, _LF):
        return end - 1
    return end


def _spool(raw: bytes, candidate: _Candidate, spool_dir: Path) -> SpooledBody | None:
    """Decode a candidate's payload to a spool file; ``None`` when the stdlib would not
    decode it on its plain path (broken base64: left to the stdlib)."""
    with SpoolWriter(spool_dir) as writer:
        if candidate.cte == "base64":
            defects = _decode_base64(raw, candidate.start, candidate.end, writer)
            if defects is None:
                return None
        else:  # get_payload(decode=True) returns such payloads as they are
            for piece in _pieces(raw, candidate.start, candidate.end):
                writer.write(piece)
            defects = ()
        return SpooledBody(writer.finish(), defects)


def _pieces(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    for pos in range(start, end, _CHUNK):
        yield raw[pos : min(pos + _CHUNK, end)]


def _decode_base64(
    raw: bytes, start: int, end: int, writer: SpoolWriter
) -> tuple[MessageDefect, ...] | None:
    """What ``email._encoded_words.decode_b`` makes of the payload with its line breaks
    removed, when it succeeds on its first, strict attempt; else ``None``.

    Every block but the last is pure alphabet and a multiple of four characters, so
    decoding it alone gives the same bytes; the last one, with the padding decode_b
    adds, goes through the same strict decoder as the stdlib's.
    """
    carry = b""
    length = 0
    for piece in _pieces(raw, start, end):
        stripped = piece.translate(None, b"\r\n")
        length += len(stripped)
        data = carry + stripped
        # Hold back the last quad and any incomplete one: padding may only end the body.
        keep = max(0, len(data) - len(data) % 4 - 4)
        block, carry = data[:keep], data[keep:]
        if block.translate(None, _BASE64_ALPHABET):
            return None
        writer.write(binascii.a2b_base64(block))
    missing = -length % 4
    try:
        writer.write(binascii.a2b_base64(carry + b"=" * missing, strict_mode=True))
    except binascii.Error:
        return None
    return (InvalidBase64PaddingDefect(),) if missing else ()


def _reduced(raw: bytes, cuts: list[_Cut]) -> bytes:
    pieces: list[bytes] = []
    pos = 0
    for cut in cuts:
        pieces += [raw[pos : cut.candidate.start], cut.token.encode()]
        pos = cut.candidate.end
    pieces.append(raw[pos:])
    return b"".join(pieces)


def _locate(msg: Message, cuts: list[_Cut]) -> dict[int, SpooledBody] | None:
    """Each cut's part in the parsed tree, checked to be where the cut was made."""
    found: dict[int, SpooledBody] = {}
    for cut in cuts:
        candidate, part = cut.candidate, msg
        for index, boundary in zip(candidate.path, candidate.boundaries, strict=True):
            payload = part.get_payload()
            if part.get_boundary() != boundary.text or not isinstance(payload, list):
                return None
            child = payload[index] if index < len(payload) else None
            if not isinstance(child, Message):
                return None
            part = child
        if (part.is_multipart() or part.get_payload() != cut.token
                or part.get_content_maintype() in ("multipart", "message")
                or str(part.get("content-transfer-encoding", "")).lower() != candidate.cte):
            return None
        found[id(part)] = cut.body
    return found
