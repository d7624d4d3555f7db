"""Durable acknowledgements (docs/tickets.md): the acknowledgement of a new ticket is a
row written with the ticket, sent after the commit; a relay that is down at first gets
it later, once, and a server killed before sending sends each after its restart, to its
own customer with its own portal's text."""

from __future__ import annotations

import asyncio
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select

from core.storage.db import Database, sqlite_url
from core.storage.models import AcknowledgementOutbox
from tests.support.mail import logged_id
from tests.support.server import Server, free_port
from tests.support.smtp_recorder import SmtpRecorder
from tests.support.tickets import customer_mail, make_desk

RETRY = {"INBOXLOG_ACK_RETRY_SECONDS": "0.2"}


def _acks(recorder: SmtpRecorder, to: str) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(raw) for envelope, raw in recorder.messages()
            if to in envelope["rcpt_tos"]]  # type: ignore[misc]


def _rows(server: Server) -> list[tuple[int, int, bool]]:
    """(ticket, attempts, sent) of each outbox row, read from the server's database; an
    attempt counts once its outcome is recorded (the row no longer claimed)."""
    async def read() -> list[tuple[int, int, bool]]:
        db = Database(sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.read() as session:
                return [(r.ticket_id, r.attempts if r.claimed_until is None else 0,
                         r.sent_at is not None)
                        for r in await session.scalars(select(AcknowledgementOutbox)
                                                       .order_by(AcknowledgementOutbox.id))]
        finally:
            await db.dispose()
    return asyncio.run(read())


def _until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def relay(tmp_path: Path) -> SmtpRecorder:
    """A relay that is not running yet: connections to its port are refused."""
    (tmp_path / "relay").mkdir()
    recorder = SmtpRecorder(tmp_path / "relay", free_port())
    recorder.add_user("relay", "s3cret")
    return recorder


def test_relay_down_at_first_is_retried_and_delivers_once(tmp_path: Path,
                                                          relay: SmtpRecorder) -> None:
    """The first attempt fails (relay down) and is recorded; once the relay is up, a
    retry delivers the acknowledgement, still Auto-Submitted, exactly once."""
    server = Server(tmp_path / "srv", extra_args=relay.serve_args(), extra_env=RETRY).start()
    try:
        desk = make_desk(server, ack=True)
        ticket_id = desk.ticket_of_email(logged_id(desk.send(
            customer_mail("lea@client.example"))))["id"]
        _until(lambda: any(r[1] >= 1 for r in _rows(server)), "no failed first attempt")
        assert _rows(server)[0][:1] == (ticket_id,) and not _rows(server)[0][2]
        relay.start()
        try:
            _until(lambda: _rows(server)[0][2], "never delivered")
            [ack] = _acks(relay, "lea@client.example")
            assert ack["Auto-Submitted"] == "auto-replied"
            assert f"[Ticket#{ticket_id}]" in ack["Subject"]
            attempts = _rows(server)[0][1]
            time.sleep(0.6)  # three retry periods: a sent row is never sent again
            assert len(_acks(relay, "lea@client.example")) == 1
            assert _rows(server)[0][1] == attempts
        finally:
            relay.stop()
    finally:
        server.stop()


def test_a_server_killed_after_the_commit_sends_after_restart(tmp_path: Path,
                                                               relay: SmtpRecorder) -> None:
    """Two portals' tickets are committed (250) with their acknowledgement rows; the
    server is killed before any relay took them; restarted with a working relay, it
    sends each once, to its own customer, with its own portal's text and ticket."""
    server = Server(tmp_path / "srv", extra_args=relay.serve_args(), extra_env=RETRY).start()
    try:
        desks = {who: make_desk(server, ack=True, ack_text=f"{who} got #{{ticket}}")
                 for who in ("acme", "globex")}
        tickets = {who: desk.ticket_of_email(logged_id(desk.send(
            customer_mail(f"max@{who}-client.example"))))["id"]
            for who, desk in desks.items()}
        # Killed once the first attempts failed (a claim held at the kill would only
        # delay the send by the claim's five minutes).
        _until(lambda: len(rows := _rows(server)) == 2 and all(r[1] for r in rows),
               "no failed first attempts")
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        relay.start()
        try:
            server.start()
            _until(lambda: all(sent for _, _, sent in _rows(server)), "not sent after restart")
            for who, ticket_id in tickets.items():
                [ack] = _acks(relay, f"max@{who}-client.example")
                assert f"{who} got #{ticket_id}" in ack.get_content()
                assert f"[Ticket#{ticket_id}]" in ack["Subject"]
            assert len(relay.messages()) == 2
        finally:
            relay.stop()
    finally:
        server.stop()
