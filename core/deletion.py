"""Deleting logged email (restorable for 90 days) and erasing a contact for good."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.queries import contact as owned_contact
from core.queries import owned
from core.retention import delete_emails, restorable_until, yield_write_lock
from core.storage.db import Database
from core.storage.models import (
    AcknowledgementOutbox,
    Attachment,
    Email,
    EmailContact,
    Event,
    IngestLogEntry,
    utcnow,
)


async def owned_email(session: AsyncSession, portal_id: int, email_id: int) -> Email:
    """The portal's email ``email_id``, deleted or not; NotFound for another portal's."""
    return await owned(session, Email, portal_id, email_id)


async def delete_email(session: AsyncSession, portal_id: int, email_id: int) -> Email:
    """Hide an email from every view; it stays restorable for 90 days (idempotent)."""
    email = await owned_email(session, portal_id, email_id)
    if email.deleted_at is None:
        email.deleted_at = utcnow()
    return email


async def restore_email(
    session: AsyncSession, portal_id: int, email_id: int, now: datetime | None = None
) -> Email:
    """Undo a deletion within 90 days; past that the email is gone (NotFound)."""
    email = await owned_email(session, portal_id, email_id)
    if email.deleted_at is not None:
        if restorable_until(email.deleted_at) <= (now or utcnow()):
            raise NotFound(f"no email {email_id}")
        email.deleted_at = None
    return email


@dataclass(frozen=True)
class Erased:
    emails: int
    attachments: int
    events: int
    audit_entries: int

    def __add__(self, other: Erased) -> Erased:
        return Erased(self.emails + other.emails, self.attachments + other.attachments,
                      self.events + other.events, self.audit_entries + other.audit_entries)


NOTHING = Erased(0, 0, 0, 0)

# Rows removed per write transaction while erasing: the write lock (on SQLite, every
# tenant's mail waits on it) is held for one chunk, not for the whole person.
ERASE_CHUNK = 500


async def delete_contact(
    session: AsyncSession, portal_id: int, contact_id: int, *, erase: bool
) -> Erased:
    """Remove a contact. With ``erase``, also every email no other contact needs, with
    its attachments, raw copies and events, the audit entries naming the person and
    the team inboxes' acknowledgements to them, sent or not (a person's right to be
    forgotten). Blob files go in the orphan sweep that the caller runs after commit.

    All in the caller's transaction; ``erase_contact`` does the same in chunks."""
    contact = await owned_contact(session, portal_id, contact_id)
    erased = NOTHING
    if erase:
        erased = await _erase_emails(session, await _only_theirs(session, contact_id))
        audit_entries, _acks = await _erase_mentions(session, portal_id, contact.email)
        erased += Erased(0, 0, 0, audit_entries)
    await session.delete(contact)
    return erased


async def erase_contact(db: Database, portal_id: int, contact_id: int) -> Erased:
    """``delete_contact(erase=True)`` in write transactions of at most ``ERASE_CHUNK``
    emails, audit entries or acknowledgements each.

    The contact row stays until the last transaction, which sweeps again whatever was
    linked to them meanwhile (mail that arrived during the erasure) and deletes the
    contact in the same commit: when this returns, nothing of theirs is left. A crash
    part-way leaves the contact with less of their data and no answer saying it is
    done; the next call for the same contact carries on from there.
    """
    async with db.read() as session:
        address = (await owned_contact(session, portal_id, contact_id)).email
        linked = list(await session.scalars(select(EmailContact.email_id).where(
            EmailContact.contact_id == contact_id).order_by(EmailContact.email_id)))
    erased = NOTHING
    for start in range(0, len(linked), ERASE_CHUNK):  # the emails only they needed
        started = time.monotonic()
        async with db.transaction() as session:
            await owned_contact(session, portal_id, contact_id)  # erased by another call: 404
            ids = await _only_theirs(session, contact_id, linked[start:start + ERASE_CHUNK])
            erased += await _erase_emails(session, ids)
        await yield_write_lock(started)
    while True:  # the audit entries and acknowledgements naming them
        started = time.monotonic()
        async with db.transaction() as session:
            audit_entries, acks = await _erase_mentions(session, portal_id, address,
                                                        limit=ERASE_CHUNK)
        erased += Erased(0, 0, 0, audit_entries)
        if max(audit_entries, acks) < ERASE_CHUNK:
            break
        await yield_write_lock(started)
    async with db.transaction() as session:  # what came meanwhile, and the contact
        erased += await delete_contact(session, portal_id, contact_id, erase=True)
    return erased


async def _only_theirs(session: AsyncSession, contact_id: int,
                       among: list[int] | None = None) -> list[int]:
    """The contact's emails (of ``among``, if given) that no other contact is linked to.

    Each email's links are looked up by its key, so a chunk costs its own size, not
    the contact's whole history."""
    linked = EmailContact.email_id == Email.id
    query = select(Email.id).where(
        exists().where(linked, EmailContact.contact_id == contact_id),
        ~exists().where(linked, EmailContact.contact_id != contact_id))
    if among is None:
        query = query.where(Email.id.in_(
            select(EmailContact.email_id).where(EmailContact.contact_id == contact_id)))
    else:
        query = query.where(Email.id.in_(among))
    return list((await session.scalars(query)).all())


async def _erase_emails(session: AsyncSession, ids: list[int]) -> Erased:
    if not ids:
        return NOTHING
    attachments = await session.scalar(select(func.count()).select_from(Attachment)
                                       .where(Attachment.email_id.in_(ids))) or 0
    events = await session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.email_id.in_(ids))) or 0
    return Erased(await delete_emails(session, ids), attachments, events, 0)


async def _erase_mentions(session: AsyncSession, portal_id: int, address: str,
                          limit: int | None = None) -> tuple[int, int]:
    """Delete (up to ``limit`` of each) the audit entries of mail from ``address`` and
    the acknowledgements to it: their numbers."""
    entries = (select(IngestLogEntry.id).where(
        IngestLogEntry.portal_id == portal_id, func.lower(IngestLogEntry.sender) == address)
        .limit(limit))
    acks = (select(AcknowledgementOutbox.id).where(  # their address, the mail
        AcknowledgementOutbox.portal_id == portal_id,
        func.lower(AcknowledgementOutbox.recipient) == address).limit(limit))
    audit = await session.execute(delete(IngestLogEntry).where(IngestLogEntry.id.in_(entries)))
    sent = await session.execute(
        delete(AcknowledgementOutbox).where(AcknowledgementOutbox.id.in_(acks)))
    return (audit.rowcount or 0,  # type: ignore[attr-defined]
            sent.rowcount or 0)  # type: ignore[attr-defined]
