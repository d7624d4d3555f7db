"""The DATA reader: aiosmtpd's rules (end of data, dot-stuffing, limits) in large reads.

Two kinds of checks: a stream fed in pieces cut at every offset, so every piece
boundary meets a dot line, a CRLF and the terminator; and the same bytes sent to a
plain aiosmtpd server and to InboxlogSMTP over loopback, whose transcripts must match.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

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


def _unstuffed(body: bytes) -> bytes:
    return (b"\r\n" + body).replace(b"\r\n.", b"\r\n")[2:]


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
    """Bare LF or CR around a dot does not end DATA (no SMTP smuggling); the bytes stay
    in the body as sent, a dot after a CRLF unstuffed as aiosmtpd does."""
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


def test_line_limit_counts_the_crlf() -> None:
    """A line of exactly the limit (CRLF included) passes; one byte more is refused."""
    fits = b"a" * (LIMIT - 2) + b"\r\n"
    for cut in range(1, 3 * LIMIT):
        assert _run(fits * 3 + b".\r\n", [cut])[1] == fits * 3, cut
        data, _, rest = _run(fits + b"b" + fits + b".\r\nNOOP\r\n", [cut])
        assert (data.outcome, rest) == (Outcome.TOO_LONG, b"NOOP\r\n"), cut


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

    async def record_refusal(self, *args: Any, **kwargs: Any) -> None:
        pass


class _PlainSMTP(SMTP):
    line_length_limit = LIMIT


class _OurSMTP(InboxlogSMTP):
    line_length_limit = LIMIT


SIZE_LIMIT = 1500
# aiosmtpd's reply texts for what ours words with enhanced status codes.
_AS_AIOSMTPD = {replies.TOO_LARGE: "552 Error: Too much mail data",
                replies.LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)"}


async def _transcript(factory: type[SMTP], script: bytes,
                      pieces: list[int]) -> tuple[list[str], list[bytes | None]]:
    handler = _Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: factory(handler, data_size_limit=SIZE_LIMIT, hostname="test", loop=loop),
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
])


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(TOKENS, max_size=40).map(b"".join),
       cuts=st.lists(st.integers(1, 3000), max_size=4))
def test_same_transcript_as_aiosmtpd(body: bytes, cuts: list[int]) -> None:
    """Any body, sent in any pieces: InboxlogSMTP gives the replies and the message
    contents that aiosmtpd 1.4.6's own DATA gives (smuggled ends, bare LF, dots, limits)."""
    end = b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"
    script = (b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
              + body + end + b"NOOP\r\nQUIT\r\n")
    pieces = sorted({c for c in cuts if c < len(script)})
    plain = asyncio.run(_transcript(_PlainSMTP, script, pieces))
    ours = asyncio.run(_transcript(_OurSMTP, script, pieces))
    data = body[: (b"\r\n" + body + end).find(b"\r\n.\r\n")]
    if len(data) > SIZE_LIMIT and any(len(line) + 2 > LIMIT for line in data.split(b"\r\n")):
        # Over both limits: which aiosmtpd reports first depends on how reads fall.
        both = {"552 Error: Too much mail data", "500 Line too long (see RFC5321 4.5.3.1.6)"}
        plain = ([("REFUSED" if r in both else r) for r in plain[0]], plain[1])
        ours = ([("REFUSED" if r in both else r) for r in ours[0]], ours[1])
    assert ours == plain
