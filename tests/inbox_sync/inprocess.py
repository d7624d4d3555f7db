"""In-process set-up for tests that drive inbox_sync directly against the real Dovecot:
a migrated SQLite runtime, a portal whose user owns a Dovecot mailbox, a logged email."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from core import accounts, inboxes, pipeline
from core.credentials import CredentialBox
from core.inboxes import Endpoint
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.storage.models import Email, Inbox, User
from core.types import Envelope
from inbox_sync.outbound import Destinations
from tests.support.dovecot import Dovecot
from tests.support.mail import message
from tests.support.server import TEST_MAIL_HOSTS

PASSWORD = "pw"
SECRET = "test-secret"
# The connector's destination policy, allowing the test servers on loopback.
LOOPBACK = Destinations.parse(TEST_MAIL_HOSTS)


async def setup_inbox(tmp_path: Path, dovecot: Dovecot, imap_port: int | None = None, *,
                      smtp_port: int | None = None, db_url: str = ""
                      ) -> tuple[Runtime, int, str, str]:
    """(runtime, inbox id, address, Message-ID of a logged email to the customer
    ann@acme.example); the inbox's IMAP server is ``dovecot`` (or ``imap_port``), its
    SMTP server ``smtp_port`` (default a closed port). The password is ``PASSWORD``.
    The database is SQLite under ``tmp_path``, or ``db_url``."""
    runtime = Runtime(Settings(data_dir=tmp_path, secret_key=SECRET, db_url=db_url))
    await migrate(runtime.db)
    address = f"r-{uuid.uuid4().hex[:8]}@ourco.example"
    dovecot.add_user(address, PASSWORD)
    seed = f"<{uuid.uuid4().hex}@mail.test>"
    async with runtime.db.transaction() as session:
        portal = (await accounts.create_portal(session, "p")).portal
        await accounts.add_user(session, portal.id, address)
        prepared = await pipeline.prepare(message(
            sender=address, to="ann@acme.example", message_id=seed).as_bytes())
        await pipeline.ingest(session, portal=portal, prepared=prepared, envelope=Envelope(),
                              blobs=runtime.blobs, bcc_domain="bcc.test")
        user = await accounts.users_by_address(session, portal.id)
        endpoint = Endpoint("127.0.0.1", imap_port or dovecot.imap_port, "none")
        inbox = await inboxes.save_inbox(
            session, portal.id, user[address].id, address, address, endpoint,
            Endpoint("127.0.0.1", smtp_port or 1, "none"),
            CredentialBox(SECRET).encrypt(PASSWORD), 30)
        inbox_id = inbox.id
    return runtime, inbox_id, address, seed


async def inbox_row(runtime: Runtime, inbox_id: int) -> Inbox:
    async with runtime.db.read() as session:
        inbox = await session.get(Inbox, inbox_id)
        assert inbox is not None
        return inbox


async def logged(runtime: Runtime, message_id: str) -> bool:
    """Whether an email with this Message-ID (without <>) is logged."""
    async with runtime.db.read() as session:
        return await session.scalar(select(Email.id).where(
            Email.message_id == message_id)) is not None


async def user_token(runtime: Runtime, inbox_id: int) -> str:
    """A new API token of the inbox's user."""
    async with runtime.db.transaction() as session:
        inbox = await session.get(Inbox, inbox_id)
        assert inbox is not None
        user = await session.get(User, inbox.user_id)
        assert user is not None
        return (await accounts.issue_token(session, user))[1]
