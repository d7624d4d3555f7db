"""What the pages read that the JSON API does not: contact search, a company's contacts,
the ingest log searched by sender, address and time, and the newest event id.

Portal-scoped like ``core.queries``; every function only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import (
    Company,
    Contact,
    Email,
    EmailContact,
    Event,
    IngestLogEntry,
    Thread,
    TrackedSend,
    User,
)
from core.storage.models.web import WebLink, WebLogin


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_contacts(session: AsyncSession, portal_id: int, text: str, *,
                          limit: int = 50) -> Sequence[Contact]:
    """Contacts whose name or address contains ``text`` (any case); all of them, by
    name, when ``text`` is empty."""
    query = select(Contact).where(Contact.portal_id == portal_id)
    if text.strip():
        pattern = _like(text.strip().lower())
        query = query.where(or_(func.lower(Contact.email).like(pattern, escape="\\"),
                                func.lower(Contact.name).like(pattern, escape="\\")))
    return (await session.scalars(
        query.order_by(func.lower(Contact.name), Contact.email).limit(limit))).all()


async def company_contacts(session: AsyncSession, portal_id: int,
                           company_id: int) -> Sequence[Contact]:
    return (await session.scalars(select(Contact).where(
        Contact.portal_id == portal_id, Contact.company_id == company_id,
    ).order_by(Contact.email))).all()


async def ingest_log(session: AsyncSession, portal_id: int, *, sender: str = "",
                     address: str = "", since: datetime | None = None,
                     until: datetime | None = None,
                     limit: int = 100) -> Sequence[IngestLogEntry]:
    """The portal's not-logged entries, newest first: ``sender`` matches the From or
    the envelope sender, ``address`` the logging address (both: contains, any case)."""
    query = select(IngestLogEntry).where(IngestLogEntry.portal_id == portal_id)
    if sender.strip():
        pattern = _like(sender.strip().lower())
        query = query.where(or_(
            func.lower(IngestLogEntry.sender).like(pattern, escape="\\"),
            func.lower(IngestLogEntry.envelope_sender).like(pattern, escape="\\")))
    if address.strip():
        query = query.where(func.lower(IngestLogEntry.logging_address).like(
            _like(address.strip().lower()), escape="\\"))
    if since is not None:
        query = query.where(IngestLogEntry.at >= since)
    if until is not None:
        query = query.where(IngestLogEntry.at < until)
    return (await session.scalars(
        query.order_by(IngestLogEntry.id.desc()).limit(limit))).all()


async def last_event_id(session: AsyncSession, portal_id: int, user_id: int) -> int:
    """Where a user's live feed starts on a page just rendered (what is older is shown)."""
    found = await session.scalar(select(func.max(Event.id)).where(
        Event.portal_id == portal_id, Event.user_id == user_id))
    return int(found or 0)


async def team(session: AsyncSession, portal_id: int) -> Sequence[tuple[User, WebLogin | None]]:
    """The portal's users, each with their sign-in (None: they cannot sign in)."""
    rows = await session.execute(
        select(User, WebLogin).outerjoin(WebLogin, WebLogin.user_id == User.id)
        .where(User.portal_id == portal_id).order_by(User.email))
    return [(user, login) for user, login in rows]


async def open_invitations(session: AsyncSession, portal_id: int,
                           now: datetime) -> Sequence[WebLink]:
    return (await session.scalars(select(WebLink).where(
        WebLink.portal_id == portal_id, WebLink.purpose == "invite",
        WebLink.used_at.is_(None), WebLink.expires_at > now,
    ).order_by(WebLink.id.desc()))).all()


async def tracked_sends_of(session: AsyncSession, portal_id: int, user_id: int | None, *,
                           limit: int = 50) -> Sequence[TrackedSend]:
    """Tracked sends, newest first: a user's (``user_id``), or the portal's (None)."""
    query = select(TrackedSend).where(TrackedSend.portal_id == portal_id)
    if user_id is not None:
        query = query.where(TrackedSend.user_id == user_id)
    return (await session.scalars(
        query.order_by(TrackedSend.id.desc()).limit(limit))).all()


async def company_by_domain(session: AsyncSession, portal_id: int,
                            domain: str) -> Company | None:
    """The portal's company of this domain (any case), None when it has none."""
    return (await session.scalars(select(Company).where(
        Company.portal_id == portal_id,
        func.lower(Company.domain) == domain.strip().lower().removeprefix("@"),
    ))).first()


@dataclass(frozen=True)
class ThreadChoice:
    """A thread an email may move to: its subject, newest email and size."""

    id: int
    subject: str
    last_sent_at: datetime
    emails: int


async def move_targets(session: AsyncSession, portal_id: int, email_id: int, *,
                       text: str = "", limit: int = 30) -> list[ThreadChoice]:
    """The threads of the email's contacts, other than its own, newest first; with
    ``text``, only those whose subject contains it (any case). Deleted emails count
    for nothing."""
    email = await session.get(Email, email_id)
    if email is None or email.portal_id != portal_id:
        return []
    contacts = select(EmailContact.contact_id).where(EmailContact.email_id == email_id)
    theirs = select(EmailContact.email_id).where(EmailContact.contact_id.in_(contacts))
    newest = func.max(Email.sent_at)
    query = (select(Thread.id, Thread.subject, newest, func.count(Email.id))
             .join(Email, Email.thread_id == Thread.id)
             .where(Thread.portal_id == portal_id, Email.portal_id == portal_id,
                    Email.deleted_at.is_(None), Email.id.in_(theirs),
                    Thread.id != email.thread_id)
             .group_by(Thread.id, Thread.subject).order_by(newest.desc(), Thread.id.desc())
             .limit(limit))
    if text.strip():
        query = query.where(func.lower(Thread.subject).like(
            _like(text.strip().lower()), escape="\\"))
    return [ThreadChoice(row[0], row[1], row[2], row[3])
            for row in (await session.execute(query)).all()]
