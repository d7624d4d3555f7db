"""Deleting logged email (restorable for 90 days) and erasing a contact for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.queries import contact as owned_contact
from core.queries import owned
from core.retention import delete_emails, restorable_until
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


async def delete_contact(
    session: AsyncSession, portal_id: int, contact_id: int, *, erase: bool
) -> Erased:
    """Remove a contact. With ``erase``, also every email no other contact needs, with
    its attachments, raw copies and events, the audit entries naming the person and
    the team inboxes' acknowledgements to them, sent or not (a person's right to be
    forgotten). Blob files go in the orphan sweep that the
    caller runs after commit."""
    contact = await owned_contact(session, portal_id, contact_id)
    emails = attachments = events = audit_entries = 0
    if erase:
        mine = select(EmailContact.email_id).where(EmailContact.contact_id == contact_id)
        shared = (select(EmailContact.email_id)
                  .where(EmailContact.email_id.in_(mine), EmailContact.contact_id != contact_id))
        only_mine = list((await session.scalars(
            select(Email.id).where(Email.id.in_(mine), Email.id.not_in(shared)))).all())
        if only_mine:
            attachments = await session.scalar(select(func.count()).select_from(Attachment)
                                                .where(Attachment.email_id.in_(only_mine))) or 0
            events = await session.scalar(select(func.count()).select_from(Event)
                                          .where(Event.email_id.in_(only_mine))) or 0
        emails = await delete_emails(session, only_mine)
        result = await session.execute(delete(IngestLogEntry).where(
            IngestLogEntry.portal_id == portal_id,
            func.lower(IngestLogEntry.sender) == contact.email))
        audit_entries = result.rowcount or 0  # type: ignore[attr-defined]
        await session.execute(delete(AcknowledgementOutbox).where(  # their address, the mail
            AcknowledgementOutbox.portal_id == portal_id,
            func.lower(AcknowledgementOutbox.recipient) == contact.email))
    await session.delete(contact)
    return Erased(emails, attachments, events, audit_entries)
