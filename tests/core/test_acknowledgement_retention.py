"""A team inbox's acknowledgement outbox keeps a customer's address and the whole
message: a settled row (sent or given up) is purged ACKNOWLEDGEMENT_DAYS later, and
erasing the contact removes theirs at once, in their portal only (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core import accounts, deletion, retention
from core.storage.blobs import LocalBlobStore
from core.storage.db import Database
from core.storage.models import AcknowledgementOutbox, Contact, Ticket, utcnow
from core.tickets import inboxes

EVE = "eve@client.example"


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def _outbox(db: Database, name: str, rows: dict[str, tuple[str, dict[str, datetime]]]
                  ) -> tuple[int, dict[str, int]]:
    """A portal with a team inbox and one ticket and outbox row per ``rows`` entry
    (label: recipient, settled columns); the portal and the rows' ids by label."""
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, name)).portal
        inbox = await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
            name="Support"))
        ids = {}
        for label, (recipient, settled) in rows.items():
            ticket = Ticket(portal_id=portal.id, subject=label, status="open",
                            priority="normal", tags=[], team_inbox_id=inbox.id)
            session.add(ticket)
            await session.flush()
            row = AcknowledgementOutbox(
                portal_id=portal.id, ticket_id=ticket.id,
                message_id=f"<{name}.{label}@acme.example>", recipient=recipient,
                message=b"Subject: received\r\n\r\nThank you.\r\n",
                created_at=utcnow() - timedelta(days=30), **settled)
            session.add(row)
            await session.flush()
            ids[label] = row.id
        return portal.id, ids


async def _left(db: Database) -> set[int]:
    async with db.read() as session:
        return set(await session.scalars(select(AcknowledgementOutbox.id)))


async def test_settled_rows_purged_after_their_days(database: Database,
                                                    blobs: LocalBlobStore) -> None:
    now = utcnow()
    old = now - timedelta(days=retention.ACKNOWLEDGEMENT_DAYS, hours=1)
    recent = now - timedelta(days=retention.ACKNOWLEDGEMENT_DAYS - 1)
    _portal, ids = await _outbox(database, "Desk", {
        "sent_old": ("a@client.example", {"sent_at": old}),
        "given_up_old": ("b@client.example", {"given_up_at": old}),
        "sent_recent": ("c@client.example", {"sent_at": recent}),
        "given_up_recent": ("d@client.example", {"given_up_at": recent}),
        "unsent": ("e@client.example", {}),  # still due, however old
    })
    counts = await retention.purge(database, blobs, now)
    assert counts["acknowledgements"] == 2
    assert await _left(database) == {ids["sent_recent"], ids["given_up_recent"],
                                     ids["unsent"]}


async def test_erasing_a_contact_removes_their_acknowledgements(database: Database) -> None:
    """Sent or not, the erased person's rows go; another person's, and the same address's
    in another portal, stay. Deleting without erase keeps them."""
    portal_id, ids = await _outbox(database, "Desk", {
        "eve_sent": (EVE, {"sent_at": utcnow()}),
        "eve_unsent": ("Eve@Client.example", {}),
        "fred": ("fred@client.example", {}),
    })
    _other, theirs = await _outbox(database, "Other", {"eve": (EVE, {})})
    async with database.transaction() as session:
        kept = Contact(portal_id=portal_id, email="fred@client.example")
        eve = Contact(portal_id=portal_id, email=EVE)
        session.add_all([kept, eve])
        await session.flush()
        await deletion.delete_contact(session, portal_id, kept.id, erase=False)
        await deletion.delete_contact(session, portal_id, eve.id, erase=True)
    assert await _left(database) == {ids["fred"], theirs["eve"]}
