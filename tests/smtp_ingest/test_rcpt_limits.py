"""Guessing logging addresses at the SMTP port: failed RCPTs are limited per session and
per client address, then `421 4.7.0` and the connection is closed (smtplib, real port)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import Session

from smtp_ingest.handler import (
    MAX_FAILED_RCPTS_PER_IP,
    MAX_FAILED_RCPTS_PER_SESSION,
    FailedRecipients,
)
from tests.support.server import PortalAccount, Server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, PortalAccount]]:
    """A server of its own: the per-address counts must not spill into other tests."""
    server = Server(tmp_path_factory.mktemp("rcpt-limits")).start()
    try:
        yield server, server.new_portal()
    finally:
        server.stop()


def _session(server: Server, source: str) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30,
                        source_address=(source, 0))
    smtp.ehlo("guesser.test")
    assert smtp.mail("rep@ourco.example")[0] == 250
    return smtp


def _guess(smtp: smtplib.SMTP, count: int, start: int = 0) -> list[tuple[int, str]]:
    return [(code, text.decode()) for code, text in
            (smtp.rcpt(f"guess{start + i}@bcc.test") for i in range(count))]


def test_a_session_gets_limited_failed_rcpts_then_421_and_is_disconnected(
    guarded: tuple[Server, PortalAccount]
) -> None:
    """The 10th unknown recipient answers 421 4.7.0 and the connection closes, so the
    right address is never tried in that session; a new session can still deliver."""
    server, account = guarded
    smtp = _session(server, "127.0.0.2")
    replies = _guess(smtp, MAX_FAILED_RCPTS_PER_SESSION)
    assert [code for code, _ in replies[:-1]] == [550] * (MAX_FAILED_RCPTS_PER_SESSION - 1)
    code, text = replies[-1]
    assert code == 421 and text.startswith("4.7.0"), (code, text)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.rcpt(account.bcc_address)
    smtp.close()
    # Not a lock-out of the address yet: an honest retry goes through.
    with _session(server, "127.0.0.2") as smtp:
        assert smtp.rcpt(account.bcc_address)[0] == 250


def test_a_client_address_gets_limited_failed_rcpts_across_sessions(
    guarded: tuple[Server, PortalAccount]
) -> None:
    """Spreading the guesses over many sessions does not help: once one client address
    has failed 50 RCPTs, every RCPT from it answers 421 (also the right address);
    another client address is not affected."""
    server, account = guarded
    refused, last = 0, (0, "")
    while last[0] != 421 and refused < MAX_FAILED_RCPTS_PER_IP:
        smtp = _session(server, "127.0.0.3")  # each session stays under its own limit
        for _ in range(MAX_FAILED_RCPTS_PER_SESSION - 1):
            last = _guess(smtp, 1, start=refused)[0]
            if last[0] != 550:
                break
            refused += 1
        smtp.close()
    assert last[0] == 421 and last[1].startswith("4.7.0"), last
    assert refused == MAX_FAILED_RCPTS_PER_IP - 1
    smtp = _session(server, "127.0.0.3")
    code, text = smtp.rcpt(account.bcc_address)
    assert code == 421 and text.decode().startswith("4.7.0")
    smtp.close()
    with _session(server, "127.0.0.4") as other:
        assert other.rcpt(account.bcc_address)[0] == 250


def _peer(loop: asyncio.AbstractEventLoop, peername: tuple[str | int, ...]) -> Session:
    """A session as aiosmtpd makes one: ``peer`` is the socket's peername (a tuple;
    aiosmtpd annotates it as a string)."""
    session = Session(loop)
    setattr(session, "peer", peername)  # noqa: B010
    return session


def test_the_per_address_limit_counts_an_ipv6_client_by_its_64() -> None:
    """An IPv6 client holds a whole /64: a fresh address of it per session must not give
    it fresh failures (nor flush the other clients' counts)."""
    limits = FailedRecipients(per_session=1000, per_ip=5)
    loop = asyncio.new_event_loop()
    try:
        sessions = [_peer(loop, (f"2001:db8:1:2::{host:x}", 25, 0, 0)) for host in range(1, 7)]
        assert [limits.fail(s) for s in sessions[:5]] == [False] * 4 + [True]
        assert limits.over(sessions[5])  # another address of the same /64
        other = _peer(loop, ("2001:db8:1:3::1", 25, 0, 0))
        assert not limits.over(other)
        mapped = _peer(loop, ("::ffff:192.0.2.1", 25, 0, 0))
        plain = _peer(loop, ("192.0.2.1", 25))
        for _ in range(5):
            limits.fail(mapped)
        assert limits.over(plain)
    finally:
        loop.close()
