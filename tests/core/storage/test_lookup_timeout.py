"""RCPT's look-ups share one kept PostgreSQL connection per process
(``core.storage.statements.KeptConnection``): a look-up that stalls (here the portals
table locked by another session) answers RCPT with 451 4.3.0 within the look-up timeout
instead of holding every session's RCPT, and the next RCPT, once the lock is gone, is
answered on a fresh connection. Through the SMTP port of a server on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import asyncpg
import pytest

from core.storage.listen import asyncpg_dsn
from tests.support import postgres
from tests.support.server import Server

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(tmp_path_factory.mktemp("lookup-timeout"), extra_env={
            "INBOXLOG_LOOKUP_TIMEOUT": str(TIMEOUT)}) as running:
        yield running


class TableLock:
    """``LOCK TABLE portals`` (ACCESS EXCLUSIVE: even reads wait) held by another
    session, on a thread of its own, until ``release()``."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.held = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._hold()))

    async def _hold(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.db_url))
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE portals IN ACCESS EXCLUSIVE MODE")
                self.held.set()
                while not self.done.is_set():
                    await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> TableLock:
        self.thread.start()
        assert self.held.wait(20)
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(20)


def test_a_stalled_rcpt_look_up_answers_451_and_the_next_one_works(server: Server) -> None:
    account = server.new_portal("stall@ourco.example")
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        assert smtp.mail("ann@acme.example")[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250  # the kept connection made
        with TableLock(server.db_url), server.smtp() as other:
            started = time.monotonic()
            code, text = smtp.rcpt(account.bcc_address)
            elapsed = time.monotonic() - started
            assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
            assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2, elapsed
            other.ehlo("other.test")  # another session waits no longer than its timeout
            assert other.mail("bob@acme.example")[0] == 250
            started = time.monotonic()
            assert other.rcpt(account.bcc_address)[0] == 451
            assert time.monotonic() - started < TIMEOUT + 2
        assert smtp.rcpt(account.bcc_address)[0] == 250
        smtp.rset()
        assert smtp.mail("ann@acme.example")[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250
    assert "took over 1 s" in server.log()
