"""A real Dovecot, a real SMTP submission server and `inboxlog serve`, for the session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from imapclient import IMAPClient

from core import accounts
from core.storage.db import Database, sqlite_url
from tests.extension_api.test_openapi import check
from tests.support.dovecot import Dovecot
from tests.support.mail import deliver, logged_id, message
from tests.support.server import BCC_DOMAIN, ClockedServer, PortalAccount, Server, free_port
from tests.support.smtp_recorder import SmtpRecorder
from tests.support.team_mailbox import TeamMailbox


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
def inbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedServer]:
    running = ClockedServer(tmp_path_factory.mktemp("inbox-server"),
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

    def get(self, path: str, **params: Any) -> Any:
        """GET an API path as the user; the JSON body (status 200 asserted)."""
        with self.server.api(self.account.user_token) as api:
            response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        with self.server.api(self.account.user_token) as api:
            return api.post(path, json=body)

    def send(self, body: dict[str, Any], status: int) -> dict[str, Any]:
        """POST /api/v1/emails/send; the body, checked against /openapi.json."""
        response = self.post("/api/v1/emails/send", body)
        assert response.status_code == status, response.text
        with self.server.api(None) as api:
            document = api.get("/openapi.json").json()
        check(document, "/api/v1/emails/send", "post", status, response.json())
        return dict(response.json())

    def find(self, message_id: str) -> list[dict[str, Any]]:
        """The logged emails with this Message-ID (one at most, or the contract broke)."""
        return list(self.get("/api/v1/emails", message_id=message_id)["items"])

    def seed_thread(self, customer: str = "ann@acme.example") -> str:
        """The user BCCs an email to a customer: a logged thread to reply to. Its id."""
        first = f"<{uuid.uuid4().hex}@mail.test>"
        logged_id(deliver(self.server, message(sender=self.address, to=customer,
                                               message_id=first, subject="Proposal"),
                          self.account.bcc_address, mail_from=self.address))
        return first


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


def new_mailbox(dovecot: Dovecot, recorder: SmtpRecorder, server: Server, *,
                quota_kb: int | None = None) -> Mailbox:
    """A fresh Dovecot user (with a quota of ``quota_kb`` KiB when given) who is the
    user of a fresh portal on ``server``."""
    address = f"rep-{uuid.uuid4().hex[:10]}@ourco.example"
    password = "pw-" + uuid.uuid4().hex[:8]
    dovecot.add_user(address, password, quota_kb=quota_kb)
    recorder.add_user(address, password)
    account = (server.new_portal(address) if server.db_url
               else new_portal(server, address))
    return Mailbox(account, password, dovecot, recorder, server)


@pytest.fixture
def mailbox(dovecot: Dovecot, recorder: SmtpRecorder, inbox_server: Server) -> Mailbox:
    """A fresh mailbox and a fresh portal whose user owns it."""
    return new_mailbox(dovecot, recorder, inbox_server)


@pytest.fixture
def team(dovecot: Dovecot, recorder: SmtpRecorder, inbox_server: ClockedServer) -> TeamMailbox:
    """A fresh portal's team inbox whose address is a fresh Dovecot mailbox."""
    return TeamMailbox(dovecot, recorder, inbox_server)
