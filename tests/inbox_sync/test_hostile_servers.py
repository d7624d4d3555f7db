"""A mail server the user controls cannot exhaust inboxlog: literals, lines, replies,
time and bytes are bounded, and a breach ends the connection with a precise error.

The servers (tests/inbox_sync/hostile.py) send what they announce from a small buffer;
the memory that counts is the peak resident size (VmHWM) of the `serve` process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from socket import socket
from typing import Any

import pytest

from core.inboxes import Endpoint, InboxError
from inbox_sync.imap import ImapSession
from tests.inbox_sync.conftest import Mailbox, new_mailbox
from tests.inbox_sync.hostile import (
    Listener,
    drip,
    endless_line,
    giant_greeting_literal,
    imap_with_giant_fetch,
)
from tests.inbox_sync.inprocess import LOOPBACK
from tests.support.dovecot import Dovecot
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder

TIMEOUT = 2  # the server's --inbox-timeout
GIANT = 800 * 1024 * 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("hostile"), extra_env={
        "INBOXLOG_INBOX_TIMEOUT": str(TIMEOUT), "INBOXLOG_INBOX_SYNC": "false"}).start()
    yield running
    running.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot, recorder: SmtpRecorder, server: Server) -> Mailbox:
    return new_mailbox(dovecot, recorder, server)


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[socket, Listener], None]], Listener]]:
    started: list[Listener] = []

    def start(handle: Callable[[socket, Listener], None]) -> Listener:
        started.append(Listener(handle))
        return started[-1]

    yield start
    for listener in started:
        listener.stop()


def peak_rss(server: Server) -> int:
    """VmHWM of the serve process, in bytes."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _at(port: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none"}


def _post(mailbox: Mailbox, path: str, body: dict[str, Any] | None, budget: float
          ) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post(path, json=body, timeout=budget + 10)
    took = time.monotonic() - started
    assert took < budget, f"answered in {took:.1f} s, over {budget} s: {response.text}"
    return response.status_code, response.json()


def _violation(status: int, body: dict[str, Any], *limits: str) -> None:
    """A 502 remote_protocol_violation naming one of ``limits``."""
    assert status == 502, body
    error = body["error"]
    assert error["code"] == "remote_protocol_violation", error
    assert any(f"the {limit} limit" in error["message"] for limit in limits), error


def test_a_giant_literal_in_the_greeting_is_refused_unread(
        mailbox: Mailbox, hostile: Callable[..., Listener]) -> None:
    """An IMAP greeting announcing an 800 MB literal (and sending it) is refused on the
    announcement: the process does not grow, the connect answers at once."""
    server = hostile(giant_greeting_literal(GIANT))
    before = peak_rss(mailbox.server)
    status, body = _post(mailbox, "/api/v1/inboxes", mailbox.connect_body(
        imap=_at(server.port)), budget=2 * TIMEOUT)
    _violation(status, body, "literal")
    grown = peak_rss(mailbox.server) - before
    print(f"peak RSS {before / MB:.0f} MB before, grown by {grown / MB:.1f} MB")
    assert grown < 32 * MB, grown


def test_a_giant_literal_in_a_fetch_ends_the_sync(
        mailbox: Mailbox, hostile: Callable[..., Listener]) -> None:
    """A server that logs in fine and then answers the header FETCH with an 800 MB
    literal: the sync ends with remote_protocol_violation, the inbox says which limit,
    and memory stays flat."""
    server = hostile(imap_with_giant_fetch(GIANT))
    inbox = mailbox.connect(imap=_at(server.port))
    before = peak_rss(mailbox.server)
    status, body = _post(mailbox, f"/api/v1/inboxes/{inbox['id']}/sync", None,
                         budget=4 * TIMEOUT)
    _violation(status, body, "literal")
    assert peak_rss(mailbox.server) - before < 32 * MB
    state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
    assert state["status"] == "remote_protocol_violation"
    assert "literal" in state["status_reason"]


def test_an_endless_imap_line_is_cut(mailbox: Mailbox,
                                     hostile: Callable[..., Listener]) -> None:
    """A greeting line that never ends is cut at the line limit (128 KB), not at 1 MB
    or never."""
    server = hostile(endless_line(b"* OK "))
    before = peak_rss(mailbox.server)
    status, body = _post(mailbox, "/api/v1/inboxes", mailbox.connect_body(
        imap=_at(server.port)), budget=2 * TIMEOUT)
    _violation(status, body, "line")
    assert peak_rss(mailbox.server) - before < 32 * MB


def test_an_imap_server_sending_one_byte_a_second_is_cut_off(
        mailbox: Mailbox, hostile: Callable[..., Listener]) -> None:
    """A greeting dripping one byte a second never trips a socket time-out; the time
    budget of the connection ends it within the --inbox-timeout."""
    server = hostile(drip(b"* OK slowly "))
    status, body = _post(mailbox, "/api/v1/inboxes", mailbox.connect_body(
        imap=_at(server.port)), budget=TIMEOUT + 3)
    # The response's time limit and the opening's budget are both the time-out.
    _violation(status, body, "time", "connection opening time")


def test_an_endless_smtp_reply_is_cut(mailbox: Mailbox,
                                      hostile: Callable[..., Listener]) -> None:
    """An SMTP greeting that never ends is refused at the reply length limit."""
    server = hostile(endless_line(b"220-"))
    before = peak_rss(mailbox.server)
    status, body = _post(mailbox, "/api/v1/inboxes", mailbox.connect_body(
        smtp=_at(server.port)), budget=3 * TIMEOUT)
    _violation(status, body, "reply length")
    assert body["error"]["message"].count("a") < 100
    assert peak_rss(mailbox.server) - before < 32 * MB


def test_an_smtp_server_sending_one_byte_a_second_is_cut_off(
        mailbox: Mailbox, hostile: Callable[..., Listener]) -> None:
    """An SMTP greeting dripping one byte a second is answered within the budget."""
    server = hostile(drip(b"220 slowly "))
    status, body = _post(mailbox, "/api/v1/inboxes", mailbox.connect_body(
        smtp=_at(server.port)), budget=3 * TIMEOUT + 3)
    assert status in (502, 504), body
    assert body["error"]["code"] in ("timeout", "remote_protocol_violation"), body


@pytest.mark.parametrize(("method", "size"), [("fetch_headers", 300 * 1024),
                                              ("fetch_bodies", 51 * MB)])
def test_header_and_body_literals_have_their_own_caps(
        hostile: Callable[..., Listener], method: str, size: int) -> None:
    """In process: a header block over 256 KB and a body over the 50 MB message limit
    are refused on their announcement, whatever the FETCH."""
    server = hostile(imap_with_giant_fetch(size))
    session = ImapSession.open(Endpoint("127.0.0.1", server.port, "none"), "u", "p",
                               timeout=TIMEOUT, destinations=LOOPBACK)
    try:
        session.examine("INBOX")
        with pytest.raises(InboxError) as refused:
            getattr(session, method)([1])
        assert refused.value.code == "remote_protocol_violation"
        assert f"a literal of {size} bytes" in refused.value.message
    finally:
        session.close()
