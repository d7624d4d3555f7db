"""Preparing a raw message for the pipeline, outside any transaction (in a thread, or
on the event loop for a small one).

Checks the size limits, parses the message, recovers the original inside a forward and
works out what a timeline shows of each (``Display``): the CPU-heavy part of logging,
kept out of the write. The result, ``Prepared``, offers admission one or two
``Candidate`` messages to log: the message as it arrived, and a forward's original.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import MessageTooLarge
from core.mail.forwards import ForwardedOriginal, extract_forward
from core.mail.languages import language_of
from core.mail.parsing import ParsedMessage, parse_message, sanitize_html, synthetic_message_id
from core.mail.quotes import reply_text
from core.storage.worker_threads import DaemonThreads
from core.tracking import strip_tracking
from core.types import MessageId

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
# Python's header parser is quadratic in header size; refuse before parsing.
MAX_HEADER_BYTES = 256 * 1024
MAX_MESSAGE_ID = 998


def header_block_size(raw: bytes) -> int:
    """Bytes before the empty line that ends the header block (all of ``raw`` when there
    is none); the line may end in CRLF or a bare LF."""
    crlf = raw.find(b"\r\n\r\n")
    # An LF-LF ends it first only if it comes before: a 45 MB body is not scanned for one.
    lf = raw.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else len(raw))
    ends = [i for i in (crlf, lf) if i >= 0]
    return min(ends) if ends else len(raw)


@dataclass(frozen=True)
class Display:
    """What a timeline shows of a message: the reply without its quote ("" when nothing
    is quoted: the text is then shown once) and the sanitized HTML; and the language it
    is written in (``core.mail.languages``), for search's stemming."""

    reply_text: str
    html: str
    language: str | None = None

    @classmethod
    def of(cls, parsed: ParsedMessage) -> Display:
        # CPU-heavy (regexes over every line, an HTML sanitizer): done in ``prepare``'s
        # thread, not inside the write transaction.
        html = sanitize_html(strip_tracking(parsed.html)) if parsed.html else ""
        reply = reply_text(parsed.text)
        return cls("" if reply == parsed.text else reply, html,
                   language_of(parsed.headers, reply))  # about 0.1 ms (a 4 KB sample)


@dataclass(frozen=True)
class Candidate:
    """A message as it would be logged: the message itself, or the original inside a
    forward. ``synthetic_id``: ``message_id`` was made up (it carried none)."""

    parsed: ParsedMessage
    message_id: MessageId | None  # None only in a header-only candidate
    synthetic_id: bool
    display: Display

    @classmethod
    def of_headers(cls, parsed: ParsedMessage) -> Candidate:
        """A candidate read from a header block alone, for a decision (``admit``) that
        stores nothing: no display, and no id made up for one that has none."""
        return cls(parsed, parsed.message_id, False, Display("", ""))


@dataclass(frozen=True)
class Prepared:
    """A message parsed and checked, ready for ``pipeline.log_message`` / ``ingest``."""

    raw: bytes
    message: Candidate  # the message as it arrived
    original: Candidate | None = None  # what it forwards, when that could be read
    forward_failure: str | None = None  # it looks like a forward, but could not be read


def _original(original: ForwardedOriginal, outer: ParsedMessage) -> Candidate:
    parsed = dataclasses.replace(
        outer, message_id=original.message_id, in_reply_to=original.in_reply_to,
        references=original.references, from_=original.from_, sender=None, reply_to=(),
        to=original.to, cc=original.cc, resent_from=(), subject=original.subject,
        date=original.date, text=original.text, html=original.html,
        attachments=original.attachments, headers=(), thread_index=None,
        defects=(*outer.defects, f"original recovered from a {original.format} forward"),
    )
    if original.message_id:
        return Candidate(parsed, original.message_id, False, Display.of(parsed))
    return Candidate(parsed, synthetic_message_id(parsed), True, Display.of(parsed))


def _prepare_sync(raw: bytes, spool_dir: Path) -> Prepared:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    if header_block_size(raw[: MAX_HEADER_BYTES + 4]) > MAX_HEADER_BYTES:
        raise MessageTooLarge(f"header block exceeds {MAX_HEADER_BYTES} bytes")
    parsed = parse_message(raw, spool_dir=spool_dir)
    message_id = parsed.message_id or synthetic_message_id(parsed)
    if len(message_id) > MAX_MESSAGE_ID:
        # RFC 5322 caps a line at 998 octets; a longer id is junk, but a stable one.
        message_id = MessageId(hashlib.sha256(message_id.encode()).hexdigest()[:40]
                               + "@long-id.inboxlog")
    forward = extract_forward(parsed, raw)
    original = (_original(forward.original, parsed)
                if forward.original is not None else None)
    message = Candidate(parsed, message_id, parsed.message_id is None, Display.of(parsed))
    return Prepared(raw, message, original, forward.reason)


# A message this small is prepared on the event loop itself: about 0.5 ms for 4 KB of
# text, 10 ms at worst for 8 KB (a hundred nested parts). Handing it to a thread cost
# more CPU than that (the hop each way, and the two threads taking the GIL from each
# other); larger ones still go to a thread, so no message holds the loop for long.
INLINE_BYTES = 8 * 1024

# Parsing's own threads, not asyncio's default executor: blob writes inside a
# transaction use that one, and a slow parse must not take the threads a commit needs.
# Bounded (four keep both cores of a small machine busy where nh3 lets go of the GIL),
# and daemon threads: a shutdown does not wait for a parse still running.
PARSE_THREADS = 4
_PARSING = DaemonThreads(PARSE_THREADS, "parse")


async def prepare(raw: bytes, *, spool_dir: Path | None = None) -> Prepared:
    """Check the size limits and parse (past ``INLINE_BYTES``, in a worker thread).
    Raises MessageTooLarge.

    Large attachments are decoded to files in ``spool_dir`` (default: the system's temp
    directory), hashed and fsynced there, not held in memory; give the blob store's
    ``spool_dir()`` and storing them is a link. They go when the result does.
    """
    where = spool_dir if spool_dir is not None else Path(tempfile.gettempdir())
    if len(raw) <= INLINE_BYTES:
        return _prepare_sync(raw, where)
    call = functools.partial(contextvars.copy_context().run, _prepare_sync, raw, where)
    return await asyncio.get_running_loop().run_in_executor(_PARSING, call)
