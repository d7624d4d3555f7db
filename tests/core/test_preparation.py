"""Preparing a message outside the transaction: the size limits, the end of the header
block, and the candidates offered to admission (the message, a forward's original)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import pytest

from core._store import header_block
from core.errors import MessageTooLarge
from core.preparation import (
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    Display,
    header_block_size,
    prepare,
)
from tests.support.mail import message


@pytest.mark.parametrize(("raw", "size"), [
    (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", 10),
    (b"A: 1\nB: 2\n\nbody\n\nmore", 9),
    (b"A: 1\nB: 2\n\nbody\r\n\r\nmore", 9),  # a bare LF-LF before a CRLF-CRLF
    (b"A: 1\r\nB: 2\r\n\r\nbody\n\nmore", 10),  # an LF-LF in the body is not the end
    (b"A: 1\r\nB: 2", 10),  # no empty line: all of it is headers
    (b"", 0),
])
def test_the_header_block_ends_at_the_first_empty_line(raw: bytes, size: int) -> None:
    """Whichever line ending, the first empty line ends the headers (the size is that of
    the block without the line break before it); the stored copy is exactly those bytes."""
    assert header_block_size(raw) == size
    assert header_block(raw) == raw[:size]


def test_limits_are_checked_before_parsing() -> None:
    """Over 50 MB, or a header block over 256 KB: MessageTooLarge, saying which."""
    with pytest.raises(MessageTooLarge, match="message exceeds"):
        asyncio.run(prepare(b"A: 1\r\n\r\n" + b"x" * MAX_MESSAGE_BYTES))
    with pytest.raises(MessageTooLarge, match="header block exceeds"):
        asyncio.run(prepare(b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\nbody\r\n"))


def test_the_message_is_its_own_candidate_with_a_display() -> None:
    """A plain message: one candidate, its own id, the quote cut from the reply text."""
    raw = message(sender="ann@acme.example", to="rep@ourco.example", message_id="<m@x>",
                  body="Thanks!\n\n> the numbers\n> are in\n").as_bytes()
    prepared = asyncio.run(prepare(raw))
    assert prepared.original is None and prepared.forward_failure is None
    assert (prepared.message.message_id, prepared.message.synthetic_id) == ("m@x", False)
    reply = prepared.message.display.reply_text
    assert "Thanks!" in reply and "the numbers" not in reply


def test_a_message_without_an_id_gets_a_stable_synthetic_one() -> None:
    """No Message-ID: one is made from the message, the same each time, and flagged."""
    raw = message(sender="ann@acme.example", to="rep@ourco.example").as_bytes()
    first, again = asyncio.run(prepare(raw)), asyncio.run(prepare(raw))
    assert first.message.synthetic_id and first.message.message_id
    assert first.message.message_id == again.message.message_id


def test_unquoted_text_is_shown_once() -> None:
    """Nothing quoted: the reply text is stored empty (read back as the text)."""
    assert Display.of(asyncio.run(prepare(message(
        sender="a@x.example", to="b@y.example").as_bytes())).message.parsed).reply_text == ""


def test_a_small_message_is_prepared_on_the_loop_a_larger_one_in_a_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from core import preparation

    threads: list[int] = []
    real = preparation._prepare_sync

    def recorded(raw: bytes, spool_dir: Path) -> preparation.Prepared:
        threads.append(threading.get_ident())
        return real(raw, spool_dir)

    monkeypatch.setattr(preparation, "_prepare_sync", recorded)
    head = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: s\r\n\r\n"
    line = b"The quick brown fox jumps over the lazy dog.\r\n"
    small = head + line * ((preparation.INLINE_BYTES - len(head)) // len(line))
    large = small + line
    assert len(small) <= preparation.INLINE_BYTES < len(large)

    async def both() -> tuple[preparation.Prepared, preparation.Prepared, int]:
        return await prepare(small), await prepare(large), threading.get_ident()

    on_small, on_large, loop_thread = asyncio.run(both())
    assert threads[0] == loop_thread and threads[1] != loop_thread
    assert on_small.message == real(small, Path(tempfile.gettempdir())).message
    assert on_large.message == real(large, Path(tempfile.gettempdir())).message
