"""The DATA reader: aiosmtpd's rules (end of data, dot-stuffing, limits) in large reads,
with a bare LF ending a line too (kept as CRLF).

Two kinds of checks: a stream fed in pieces cut at every offset, so every piece
boundary meets a dot line, a CRLF, a bare LF and the terminator; and the same bytes sent
to InboxlogSMTP over loopback and, with their line endings made CRLF, to a plain
aiosmtpd server, whose transcripts must match.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from unittest import mock

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtp_ingest import replies
from smtp_ingest._data import DataReader, Outcome
from smtp_ingest.server import InboxlogSMTP

LIMIT = 200  # stream limit and line limit (CRLF included) of the small test readers


class _CountingReader(DataReader):
    """Records where its pieces of body end, to show the tests reach piece boundaries."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pieces = 0

    def _take(self, piece: bytes) -> None:
        self.pieces += 1
        super()._take(piece)


async def _read(stream: bytes, cuts: list[int], *, size_limit: int | None = None,
                memory_limit: int = 1 << 20) -> tuple[_CountingReader, bytes | None, bytes]:
    """Feed ``stream`` to a DataReader cut at ``cuts``, as if each piece were one recv;
    the reader, its content (None when refused) and what it left unread. A read ends
    4 bytes before the end of what was fed (asyncio's readuntil keeps what could start
    the terminator), so a cut at every offset puts a read boundary at every offset."""
    reader = asyncio.StreamReader(limit=LIMIT)
    data = _CountingReader(size_limit=size_limit, line_limit=LIMIT, memory_limit=memory_limit)
    task = asyncio.create_task(data.receive(reader))
    previous = 0
    for cut in [*cuts, len(stream)]:
        reader.feed_data(stream[previous:cut])
        previous = cut
        await asyncio.sleep(0)
    reader.feed_eof()
    await asyncio.wait_for(task, 5)
    content = await data.content() if data.outcome is Outcome.RECEIVED else None
    return data, content, await reader.read()


def _run(*args: Any, **kwargs: Any) -> tuple[_CountingReader, bytes | None, bytes]:
    return asyncio.run(_read(*args, **kwargs))


# As sent (dot-stuffed): lines of one to three dots and more, at every distance from
# the 200-byte reads; "." alone would end DATA.
DOTTED = b"".join(b"." * (1 + n % 3) + b"d" * (n % 7 or n % 3 == 0) + b"\r\n"
                  + b"w" * (n * 5) + b"\r\n" for n in range(24))


def _crlf(body: bytes) -> bytes:
    """Every line ending a CRLF: a bare LF becomes one, a lone CR stays as it is."""
    return body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _unstuffed(body: bytes) -> bytes:
    """The body as kept: line endings made CRLF, one dot off every line starting with one."""
    return (b"\r\n" + _crlf(body)).replace(b"\r\n.", b"\r\n")[2:]


def test_dot_stuffing_is_undone_wherever_a_read_ends() -> None:
    """Lines starting with '.' lose one dot whatever read boundary falls next to them."""
    stream = DOTTED + b".\r\nNOOP\r\n"
    for cut in range(1, len(stream)):
        data, content, rest = _run(stream, [cut])
        assert (content, rest) == (_unstuffed(DOTTED), b"NOOP\r\n"), cut
        assert data.pieces >= 2 or cut <= LIMIT + 4, cut


def test_terminator_split_across_reads_ends_data() -> None:
    """CRLF.CRLF split between two reads at any byte still ends DATA, and only there."""
    body = b"x" * 150 + b"\r\n" + b"y" * 190 + b"\r\n" + b"z" * 20 + b"\r\n"
    stream = body + b".\r\nMAIL FROM:<a@b>\r\n"
    for first in range(1, len(stream)):
        for second in (first + 1, first + 3, first + 5):
            cuts = [c for c in (first, second) if c < len(stream)]
            _, content, rest = _run(stream, cuts)
            assert (content, rest) == (body, b"MAIL FROM:<a@b>\r\n"), cuts


def test_a_first_line_of_one_dot_is_an_empty_message() -> None:
    """'.' as the first line ends DATA at once; '..' is a line holding one dot."""
    assert _run(b".\r\nQUIT\r\n", [1])[1:] == (b"", b"QUIT\r\n")
    assert _run(b"..\r\n.\r\n", [1, 2, 3])[1] == b".\r\n"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r\n",
                                      b"\r.\r\n", b"\r\n.\n", b"\r\n. \r\n"], ids=repr)
def test_only_crlf_dot_crlf_ends_data(fake_end: bytes) -> None:
    """Bare LF or CR around a dot does not end DATA (no SMTP smuggling): the bytes stay
    in the body, a bare LF made CRLF and a dot starting a line unstuffed."""
    body = b"c" * 150 + fake_end + b"MAIL FROM:<x@y>\r\n" + b"d" * 150 + b"\r\n"
    for cut in range(1, len(body)):
        assert _run(body + b".\r\n", [cut])[1] == _unstuffed(body), cut


def test_over_the_size_limit_the_body_is_discarded_and_read_to_its_end() -> None:
    """Past the size limit DATA is still read to its end (the session stays in step),
    nothing is kept, and the size counts every byte sent."""
    body = b"0123456789abcdef\r\n" * 50
    data, content, rest = _run(body + b".\r\nRSET\r\n", [100, 333, 600], size_limit=500)
    assert (data.outcome, content, rest, data.size) == (Outcome.TOO_MUCH, None, b"RSET\r\n",
                                                        len(body))
    exact = _run(body + b".\r\n", [], size_limit=len(body))
    assert exact[0].outcome is Outcome.RECEIVED and exact[1] == body


def test_the_size_limit_counts_the_body_as_kept() -> None:
    """With bare LF the size is counted as kept, each LF a CRLF: 50 lines of 17 bytes
    as sent and an empty CRLF line (a bare LF before the dot ends no DATA) are 852 bytes
    sent, 902 kept: over a limit of 890, and at 902 exactly they fit."""
    body = b"0123456789abcdef\n" * 50 + b"\r\n"
    data, content, rest = _run(body + b".\r\nRSET\r\n", [100, 333, 600], size_limit=890)
    assert (data.outcome, content, rest, data.size) == (Outcome.TOO_MUCH, None, b"RSET\r\n",
                                                        902)
    exact = _run(body + b".\r\n", [], size_limit=902)
    assert exact[0].outcome is Outcome.RECEIVED and exact[1] == _crlf(body)


def test_line_limit_counts_the_crlf() -> None:
    """A line of exactly the limit (CRLF included) passes; one byte more is refused."""
    fits = b"a" * (LIMIT - 2) + b"\r\n"
    for cut in range(1, 3 * LIMIT):
        assert _run(fits * 3 + b".\r\n", [cut])[1] == fits * 3, cut
        data, _, rest = _run(fits + b"b" + fits + b".\r\nNOOP\r\n", [cut])
        assert (data.outcome, rest) == (Outcome.TOO_LONG, b"NOOP\r\n"), cut


def test_bare_lf_ends_a_line_and_is_kept_as_crlf() -> None:
    """LF, CRLF and a lone CR mixed, cut anywhere: each LF is kept as a CRLF, a CRLF
    stays one, a lone CR stays as it is; the size counts the body as kept."""
    body = b"one\ntwo\r\nthree\rstill three\n\nfive\r\r\nsix\n\r\n"
    kept = b"one\r\ntwo\r\nthree\rstill three\r\n\r\nfive\r\r\nsix\r\n\r\n"
    assert _unstuffed(body) == kept
    for cut in range(1, len(body) + 3):
        data, content, rest = _run(body + b".\r\nNOOP\r\n", [cut])
        assert (content, rest, data.size) == (kept, b"NOOP\r\n", len(kept)), cut


def test_a_dot_after_a_bare_lf_is_unstuffed_wherever_a_read_ends() -> None:
    """smtplib stuffs a dot after every LF: a line after a bare LF loses its first dot,
    also when the read before it ended on that LF."""
    lines = [b"." * (1 + n % 3) + b"x" * (n * 7 % 190) for n in range(40)]
    sent = b"".join(b"." + line + b"\n" for line in lines)
    kept = b"".join(line + b"\r\n" for line in lines)
    assert _unstuffed(sent) == kept
    for cut in range(1, len(sent) + 3):
        _, content, rest = _run(sent + b"\r\n.\r\nNOOP\r\n", [cut])
        assert (content, rest) == (kept + b"\r\n", b"NOOP\r\n"), cut


def test_line_limit_counts_each_line_whatever_its_ending() -> None:
    """The limit counts a line as kept, its CRLF included: LIMIT - 2 bytes before a bare
    LF fit, one more does not; a lone CR ends no line, so it counts in its line."""
    fits = b"a" * (LIMIT - 2) + b"\n"
    over = b"a" * (LIMIT - 1) + b"\n"
    cr_split = b"b" * (LIMIT // 2) + b"\r" + b"b" * (LIMIT // 2) + b"\r\n"
    for cut in range(1, 3 * LIMIT, 7):
        data, content, _ = _run(fits * 5 + b"\r\n.\r\n", [cut])
        assert (data.outcome, content) == (Outcome.RECEIVED, _unstuffed(fits * 5) + b"\r\n")
        for body in (fits + over + fits, fits + cr_split):
            data, _, rest = _run(body + b"\r\n.\r\nNOOP\r\n", [cut])
            assert (data.outcome, rest) == (Outcome.TOO_LONG, b"NOOP\r\n"), (cut, body[:5])


def test_many_bare_lf_lines_past_the_line_limit_are_received() -> None:
    """Thousands of short LF-only lines, far more than one line limit in all, are one
    message (this was '500 Line too long' when only CRLF ended a line)."""
    body = b"".join(b"line %05d\n" % n for n in range(5000))
    data, content, _ = _run(body + b"\r\n.\r\n", list(range(150, len(body), 150)),
                            memory_limit=4000)
    assert data.outcome is Outcome.RECEIVED and content == _crlf(body) + b"\r\n"


def test_a_large_body_spills_to_a_file_unchanged() -> None:
    """Past the memory limit the body goes to a temporary file; the bytes are the same."""
    body = b"".join(b".%06d line\r\n" % i for i in range(3000))
    data, content, _ = _run(body + b".\r\n", list(range(97, len(body), 97)), memory_limit=1000)
    assert content == _unstuffed(body) and data.pieces > 100


# --- the same transcript as aiosmtpd ---------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes | None] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 OK"

    async def refuse_oversized(self, session: Any, envelope: Any, size: int) -> str:
        return replies.TOO_LARGE


class _PlainSMTP(SMTP):
    line_length_limit = LIMIT


class _OurSMTP(InboxlogSMTP):
    line_length_limit = LIMIT


SIZE_LIMIT = 1500
# aiosmtpd's reply texts for what ours words with enhanced status codes.
_AS_AIOSMTPD = {replies.TOO_LARGE: "552 Error: Too much mail data",
                replies.LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)"}


async def _transcript(factory: type[SMTP], script: bytes, pieces: list[int], *,
                      size_limit: int = SIZE_LIMIT) -> tuple[list[str], list[bytes | None]]:
    handler = _Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: factory(handler, data_size_limit=size_limit, hostname="test", loop=loop),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        previous = 0
        for cut in [*pieces, len(script)]:
            writer.write(script[previous:cut])
            previous = cut
            await writer.drain()
            await asyncio.sleep(0.001)
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    lines = raw.decode().split("\r\n")
    return [_AS_AIOSMTPD.get(line, line) for line in lines if line[3:4] != "-"], handler.contents


TOKENS = st.sampled_from([
    b"a", b"text ", b".", b"..", b"\r\n", b"\n", b"\r", b"\r\n.", b"\r\n..", b".\r\n",
    b"\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"-" * 60,
    b"x" * 120, b"y" * 190, b"z" * 260, b"\r\n.\r\nNOOP\r\n", b"\x00\xff",
    b"\n.", b"\n..", b".\n", b"\r\r\n", b"v" * 197,
])


def _as_crlf(data: bytes) -> tuple[bytes, int]:
    """``data`` (DATA before its end) as a client would send it with CRLF line endings,
    for aiosmtpd, which ends a line at CRLF only; and how many lines had to change more.

    Every line ending becomes CRLF. A line '.' after a bare LF, which is an empty line
    to us but the end of DATA to aiosmtpd, is given as the empty line it is kept as:
    one byte shorter, so aiosmtpd's size limit is lowered by one for each."""
    lines = _crlf(data).split(b"\r\n")[:-1] if data else []
    shortened = lines.count(b".")
    return b"".join((b"" if line == b"." else line) + b"\r\n" for line in lines), shortened


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(TOKENS, max_size=40).map(b"".join),
       cuts=st.lists(st.integers(1, 3000), max_size=4))
def test_same_transcript_as_aiosmtpd(body: bytes, cuts: list[int]) -> None:
    """Any body, sent in any pieces: InboxlogSMTP gives the replies and the message
    contents that aiosmtpd 1.4.6's own DATA gives for the same body with CRLF line
    endings (smuggled ends, bare LF and CR, dots, limits); the same bytes when the body
    has no bare LF."""
    end = b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"
    head = b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
    stream = body + end + b"NOOP\r\nQUIT\r\n"
    split = (b"\r\n" + stream).find(b"\r\n.\r\n")  # where DATA really ends
    data, after = stream[:split], stream[split:]
    as_crlf, shortened = _as_crlf(data)
    if b"\n" not in data.replace(b"\r\n", b""):
        assert (as_crlf, shortened) == (data, 0)  # nothing to change: aiosmtpd's own input
    script = head + stream
    pieces = sorted({c for c in cuts if c < len(script)})
    # What follows an early end is read as commands: past 5 unknown ones aiosmtpd hangs
    # up while the client still writes, and the reset loses replies at random.
    with mock.patch("aiosmtpd.smtp.BOGUS_LIMIT", 1000):
        plain = asyncio.run(_transcript(_PlainSMTP, head + as_crlf + after, pieces,
                                        size_limit=SIZE_LIMIT - shortened))
        ours = asyncio.run(_transcript(_OurSMTP, script, pieces))
    if (len(_crlf(data)) > SIZE_LIMIT
            and any(len(line) + 2 > LIMIT for line in _crlf(data).split(b"\r\n"))):
        # Over both limits: which aiosmtpd reports first depends on how reads fall.
        both = {"552 Error: Too much mail data", "500 Line too long (see RFC5321 4.5.3.1.6)"}
        plain = ([("REFUSED" if r in both else r) for r in plain[0]], plain[1])
        ours = ([("REFUSED" if r in both else r) for r in ours[0]], ours[1])
    assert ours == plain
