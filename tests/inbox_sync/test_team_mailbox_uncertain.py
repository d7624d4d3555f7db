"""A ticket reply through a team inbox's mailbox whose SMTP server never confirms it, in
process against the real Dovecot and the real SMTP test server: the agent hears it may
have been sent (never an error inviting a resend), nothing is logged on the ticket and
no copy goes to Sent; the server then accepts it, so it did go out. On both backends
(the sync into the team inbox's intake included)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
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


async def test_an_unconfirmed_team_reply_is_not_logged(
        tmp_path: Path, dovecot: Dovecot, released: SmtpRecorder, db_url: str) -> None:
    recorder = released
    runtime = Runtime(Settings(data_dir=tmp_path, secret_key=SECRET, db_url=db_url))
    await migrate(runtime.db)
    address, password = f"desk-{uuid.uuid4().hex[:8]}@ourco.example", "pw-team"
    dovecot.add_user(address, password)
    recorder.add_user(address, password)
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
            smtp=Endpoint("127.0.0.1", recorder.port, MailSecurity.NONE)))
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
        app = create_app(runtime)
        app.state.inboxes = service
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://api", timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            response = await api.post(f"/api/v1/tickets/{ticket_id}/replies",
                                      json={"text": "On it."})
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "send_unconfirmed" and "may have been sent" in error["message"]
        message_id = error["message"].split("<", 1)[1].split(">", 1)[0]
        assert not await logged(runtime, message_id)
        async with runtime.db.read() as session:
            kinds = list(await session.scalars(select(TicketActivity.kind).where(
                TicketActivity.ticket_id == ticket_id)))
        assert "agent_reply" not in kinds
        recorder.release()
        deadline = time.monotonic() + 20
        while not any(message_id.encode() in raw for _, raw in recorder.messages()):
            assert time.monotonic() < deadline, "the server never accepted it"
            await asyncio.sleep(0.05)
        with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
            client.login(address, password)
            assert client.select_folder(SENT, readonly=True)[b"EXISTS"] == 0
    finally:
        await service.stop()
        await runtime.close()
