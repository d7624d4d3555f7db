"""Ticket replies through a team inbox's mailbox whose outcome is uncertain, in process
against the real Dovecot, the real SMTP test server and PostgreSQL: the server never
confirms it, or the database goes away once it is sent. The agent hears exactly that
(never an error inviting a resend) and nothing is logged. On both backends (the sync
into the team inbox's intake included)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from core import accounts
from core.inboxes import ConnectRequest, Endpoint
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.storage.models import Ticket, TicketActivity
from core.tickets import inboxes as team_inboxes
from core.types import MailSecurity
from extension_api.app import create_app
from inbox_sync.service import InboxService, ServiceOptions
from tests.inbox_sync.inprocess import LOOPBACK, SECRET, logged
from tests.support import postgres
from tests.support.dovecot import SENT, Dovecot
from tests.support.mail import message
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture
async def released(recorder: SmtpRecorder) -> AsyncIterator[SmtpRecorder]:
    """The SMTP test server, with any message it still holds let through afterwards."""
    yield recorder
    if (recorder.folder / "holding").exists():
        recorder.release()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    url = await postgres.create_database()
    yield url
    await postgres.drop_database(url)


@dataclass
class Desk:
    """A team inbox with its Dovecot mailbox connected, an agent, and one ticket opened by
    a customer at hold.example (the SMTP test server holds mail to them)."""

    runtime: Runtime
    service: InboxService
    address: str
    password: str
    ticket_id: int
    token: str

    def api(self) -> httpx.AsyncClient:
        app = create_app(self.runtime)
        app.state.inboxes = self.service
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                 timeout=60, headers={"Authorization": f"Bearer {self.token}"})

    def sent_folder_size(self, dovecot: Dovecot) -> int:
        with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
            client.login(self.address, self.password)
            return int(client.select_folder(SENT, readonly=True)[b"EXISTS"])


@pytest.fixture
async def desk(tmp_path: Path, dovecot: Dovecot, released: SmtpRecorder,
               db_url: str) -> AsyncIterator[Desk]:
    runtime = Runtime(Settings(data_dir=tmp_path, secret_key=SECRET, db_url=db_url))
    await migrate(runtime.db)
    address, password = f"desk-{uuid.uuid4().hex[:8]}@ourco.example", "pw-team"
    dovecot.add_user(address, password)
    released.add_user(address, password)
    async with runtime.db.transaction() as session:
        portal = (await accounts.create_portal(session, "p")).portal
        agent = await accounts.add_user(session, portal.id, "agent@ourco.example", name="Al")
        team = await team_inboxes.create_inbox(session, portal.id, team_inboxes.InboxChange(
            name="Support", members=(team_inboxes.Member(user_id=agent.user.id),)))
        portal_id, team_id, token = portal.id, team.id, agent.api_token
    service = InboxService(runtime, ServiceOptions(background=False, timeout=1,
                                                   destinations=LOOPBACK))
    await service.start()
    try:
        inbox_id = await service.connect_team(portal_id, team_id, ConnectRequest(
            address, password,
            imap=Endpoint("127.0.0.1", dovecot.imap_port, MailSecurity.NONE),
            smtp=Endpoint("127.0.0.1", released.port, MailSecurity.NONE)))
        with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
            client.login(address, password)
            client.append("INBOX", message(
                sender="ann@hold.example", to=address, subject="Help",
                message_id=make_msgid(domain="hold.example")).as_bytes(),
                msg_time=datetime.now(UTC))
        report = await service.sync_now(portal_id, inbox_id)
        assert [f.logged for f in report.folders if f.role == "inbox"] == [1]
        async with runtime.db.read() as session:
            ticket_id = await session.scalar(select(Ticket.id).where(
                Ticket.team_inbox_id == team_id))
        assert ticket_id is not None
        yield Desk(runtime, service, address, password, ticket_id, token)
    finally:
        if db_url:
            await postgres.set_available(db_url, True)
        await service.stop()
        await runtime.close()


async def _received(recorder: SmtpRecorder, message_id: str) -> None:
    deadline = time.monotonic() + 20
    while not any(message_id.encode() in raw for _, raw in recorder.messages()):
        assert time.monotonic() < deadline, "the server never accepted it"
        await asyncio.sleep(0.05)


async def test_an_unconfirmed_team_reply_is_not_logged(
        desk: Desk, dovecot: Dovecot, released: SmtpRecorder) -> None:
    """The server takes the reply and never answers: 504 send_unconfirmed (it may have
    been sent), no email nor agent_reply, no copy in Sent; then the server accepts it."""
    async with desk.api() as api:
        response = await api.post(f"/api/v1/tickets/{desk.ticket_id}/replies",
                                  json={"text": "On it."})
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "send_unconfirmed" and "may have been sent" in error["message"]
    message_id = error["message"].split("<", 1)[1].split(">", 1)[0]
    assert not await logged(desk.runtime, message_id)
    async with desk.runtime.db.read() as session:
        kinds = list(await session.scalars(select(TicketActivity.kind).where(
            TicketActivity.ticket_id == desk.ticket_id)))
    assert "agent_reply" not in kinds
    released.release()
    await _received(released, message_id)
    assert desk.sent_folder_size(dovecot) == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_team_reply_sent_while_the_database_dies_says_so(
        desk: Desk, released: SmtpRecorder, db_url: str) -> None:
    """The server has the reply when PostgreSQL goes away, then accepts it: 503
    reply_sent_not_logged naming it and saying not to send it again (a plain 503 would
    invite the agent to); once the database is back, nothing was logged."""
    desk.service.options = replace(desk.service.options, timeout=30)
    async with desk.api() as api:
        sending = asyncio.create_task(api.post(
            f"/api/v1/tickets/{desk.ticket_id}/replies", json={"text": "On it."}))
        await asyncio.to_thread(released.wait_holding)
        await postgres.set_available(db_url, False)
        released.release()
        response = await sending
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "reply_sent_not_logged"
    assert "was sent to ann@hold.example" in error["message"]
    assert "do not send it again" in error["message"]
    message_id = error["message"].split("<", 1)[1].split(">", 1)[0]
    await _received(released, message_id)
    await postgres.set_available(db_url, True)
    assert not await logged(desk.runtime, message_id)
