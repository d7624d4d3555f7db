"""A real Dovecot, a real SMTP submission server and `inboxlog serve`, for the session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from imapclient import IMAPClient

from core import accounts
from core.db import Database, sqlite_url
from tests.support.dovecot import Dovecot
from tests.support.server import BCC_DOMAIN, PortalAccount, Server, free_port
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    running = Dovecot([], ["app@ourco.example"]).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpRecorder]:
    running = SmtpRecorder(tmp_path_factory.mktemp("smtp"), free_port()).start()
    running.add_user("app@ourco.example", "!app")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def inbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("inbox-server"),
                     extra_args=("--inbox-poll-interval", "1")).start()
    yield running
    running.stop()


@dataclass
class Mailbox:
    """A Dovecot user who is also the portal user, with what it takes to connect."""

    account: PortalAccount
    password: str
    dovecot: Dovecot
    recorder: SmtpRecorder
    server: Server

    @property
    def address(self) -> str:
        return self.account.user_email

    def connect_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "address": self.address, "password": self.password,
            "imap": {"host": "127.0.0.1", "port": self.dovecot.imap_port, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": self.recorder.port, "security": "none"},
        }
        body.update(changes)
        return body

    def connect(self, **changes: Any) -> dict[str, Any]:
        with self.server.api(self.account.user_token) as api:
            response = api.post("/api/v1/inboxes", json=self.connect_body(**changes))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.dovecot.imap_port, ssl=False, timeout=10)
        client.login(self.address, self.password)
        return client

    def append(self, message: EmailMessage, folder: str = "INBOX",
               when: datetime | None = None) -> None:
        with self.imap() as client:
            client.append(folder, message.as_bytes(), msg_time=when or datetime.now(UTC))


def new_portal(server: Server, user_email: str) -> PortalAccount:
    """A portal and its user, written straight into the server's SQLite database
    (the CLI would take two interpreter starts)."""

    async def create() -> PortalAccount:
        db = Database(sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                portal = await accounts.create_portal(session, "Inbox test")
                user = await accounts.add_user(session, portal.portal.id, user_email,
                                               name="Rita Rep")
                return PortalAccount(portal.portal.id, f"{portal.portal.bcc_token}@{BCC_DOMAIN}",
                                     portal.admin_token, user.user.id, user_email,
                                     user.api_token)
        finally:
            await db.dispose()

    return asyncio.run(create())


@pytest.fixture
def mailbox(dovecot: Dovecot, recorder: SmtpRecorder, inbox_server: Server) -> Mailbox:
    """A fresh mailbox and a fresh portal whose user owns it."""
    address = f"rep-{uuid.uuid4().hex[:10]}@ourco.example"
    password = "pw-" + uuid.uuid4().hex[:8]
    dovecot.add_user(address, password)
    recorder.add_user(address, password)
    account = new_portal(inbox_server, address)
    return Mailbox(account, password, dovecot, recorder, inbox_server)
