"""Receiving the DATA body in large reads instead of one line at a time.

aiosmtpd 1.4.6 reads DATA one line at a time on the event loop (a ``readuntil`` and
Python bookkeeping per 78-byte line) and keeps every line until the end: a 45 MB
message is 570,000 lines, and every other session waits while they are read. This
reader takes whatever the stream holds (up to its 64 KB limit) per step and keeps the
body once, in a temporary file past 1 MB, with aiosmtpd's rules, except that a bare LF
ends a line too (SPEC.md, "Line endings"):

- only CRLF ``.`` CRLF ends DATA (a bare LF or CR around the dot does not: no SMTP
  smuggling), and ``.`` CRLF as the very first line;
- inside the body a line ends at an LF, with or without a CR before it, and is kept
  with CRLF: Python's ``smtplib.SMTP.data(bytes)``, many scripts and PHP mailers send
  bare LF. A lone CR ends no line and is kept as it is: no client takes it as one (they
  dot-stuff after an LF only), and RFC 5321 has no such line ending either;
- a line starting with ``.`` loses that dot (RFC 5321 4.5.2), after a bare LF as after a
  CRLF: smtplib and MTAs stuff a dot after any LF;
- sizes count the body as kept, every line ending a CRLF, dots still stuffed: the size
  limit counts that, and the line limit counts each line with its CRLF;
- past the size limit, or on a line longer than the line limit, the body is discarded
  as it streams and DATA is still read to its end, so the reply comes after it and the
  session stays in step; the first of the two to happen decides it.
"""

from __future__ import annotations

import asyncio
import enum
import io
import tempfile
from typing import IO

from core.storage.worker_threads import to_thread_to_the_end

TERMINATOR = b"\r\n.\r\n"
MEMORY_LIMIT = 1024 * 1024  # bodies past this go to a temporary file


class Outcome(enum.Enum):
    RECEIVED = "received"
    TOO_MUCH = "too much data"  # over the size limit
    TOO_LONG = "line too long"
    NOT_KEPT = "could not be kept"  # the temporary file failed (disk full)


def _partial_terminator(data: bytes) -> int:
    """Length of the longest end of ``data`` that could begin a terminator."""
    for size in range(len(TERMINATOR) - 1, 0, -1):
        if data.endswith(TERMINATOR[:size]):
            return size
    return 0


class DataReader:
    """One DATA body: :meth:`receive` it, check :attr:`outcome`, then :meth:`content`."""

    def __init__(self, *, size_limit: int | None, line_limit: int,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.size_limit = size_limit
        self.line_limit = line_limit
        self.memory_limit = memory_limit
        self.outcome = Outcome.RECEIVED
        self.size = 0  # bytes before the final dot, as kept (CRLF) but dot-stuffed
        self._line = 0  # length of the line that the bytes so far leave unfinished
        self._first = True
        self._line_start = False  # the last piece ended a line with a bare LF
        self._held: list[bytes] = []
        self._held_size = 0
        self._file: IO[bytes] | None = None

    async def receive(self, reader: asyncio.StreamReader) -> None:
        """Read up to and including the line ``.`` that ends DATA, and nothing after it
        (pipelined commands stay in ``reader``)."""
        # DATA starts at the beginning of a line: as if right after a CRLF. Bytes that
        # may begin a terminator wait in ``tail`` until the next ones tell.
        tail = b"\r\n"
        while True:
            if tail:
                data = tail + await reader.readexactly(len(TERMINATOR) - len(tail))
            else:
                try:
                    data = await reader.readuntil(TERMINATOR)
                except asyncio.LimitOverrunError as exc:
                    # No terminator in the buffer: take what cannot be part of one.
                    data = await reader.read(exc.consumed)
            end = data.find(TERMINATOR)
            if end >= 0:
                self._take(data[: end + 2])
                return
            keep = _partial_terminator(data)
            self._take(data[: len(data) - keep])
            tail = data[len(data) - keep :]

    def _take(self, piece: bytes) -> None:
        """Count, check and keep the next bytes of the body. No piece ends with a CR, so
        inside a CRLF, or between a CRLF and the dot after it (those bytes wait in
        ``tail``); one may end with a bare LF, and the next start with a dot."""
        if not piece:
            return
        skip = 2 if self._first else 0  # the CRLF the reading started with is not body
        self._first = False
        if piece.count(b"\n") != piece.count(b"\r\n"):  # a bare LF: make each LF a CRLF
            piece = piece.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._line_start:  # unstuff a dot that starts this piece as well
            piece, skip = b"\r\n" + piece, 2
        self._line_start = piece.endswith(b"\n")
        before = self.size
        self.size += len(piece) - skip
        if self.outcome is not Outcome.RECEIVED:
            return
        overlong = self._overlong_at(piece[skip:])
        too_much = (self.size_limit - before if self.size_limit and self.size > self.size_limit
                    else None)
        if too_much is not None and (overlong is None or too_much <= overlong):
            self._refuse(Outcome.TOO_MUCH)
        elif overlong is not None:
            self._refuse(Outcome.TOO_LONG)
        else:
            self._keep(piece.replace(b"\r\n.", b"\r\n")[skip:])

    def _overlong_at(self, data: bytes) -> int | None:
        """Where in ``data`` (every line ending a CRLF by now) a line grows past the line
        limit, if one does."""
        start = -self._line  # where the unfinished line began, relative to data
        while True:
            window = start + self.line_limit  # a line must have ended (CRLF included) here
            crlf = data.rfind(b"\r\n", max(start, 0), min(window, len(data)))
            if crlf >= 0:  # every line up to this one fits: skip them all
                start = crlf + 2
            elif window <= len(data):
                return max(window, 0)
            else:
                self._line = len(data) - start
                return None

    def _keep(self, data: bytes) -> None:
        try:
            if self._file is not None:
                self._file.write(data)
                return
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size > self.memory_limit:
                # Unnamed and removed on close (O_TMPFILE): nothing to clean after a crash.
                self._file = tempfile.TemporaryFile(prefix="inboxlog-data-")  # noqa: SIM115
                for held in self._held:
                    self._file.write(held)
                self._held.clear()
        except OSError:
            self._refuse(Outcome.NOT_KEPT)

    def _refuse(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.close()

    async def content(self) -> bytes:
        """The body, dot-stuffing undone, in one bytes object (read from the temporary
        file in a worker thread). The reader is closed afterwards."""
        file = self._file
        if file is None:
            data = b"".join(self._held)
            self.close()
            return data

        def read_all() -> bytes:
            file.flush()
            file.seek(0)
            # FileIO.readall sizes its buffer from the file: one allocation, one copy.
            with io.FileIO(file.fileno(), closefd=False) as raw:
                return raw.readall()

        try:
            # Cancelled (the client went away), it still waits for the thread: closing
            # the file under it would free its descriptor number for another file.
            return await to_thread_to_the_end(read_all)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of what was kept (also when the connection is lost)."""
        self._held.clear()
        self._held_size = 0
        if self._file is not None:
            self._file.close()
            self._file = None
