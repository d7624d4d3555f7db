"""What the pages read that the JSON API does not: contact search, a company's contacts,
the ingest log searched by sender, address and time, and the newest event id.

Portal-scoped like ``core.queries``; every function only reads. What reads a team
inbox's mail takes ``viewer`` (a user id; None: the admin) and leaves out what they may
not see, in the query (docs/tickets.md, "Who sees what").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import visible_entry
from core.mail.threads import base_subject
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
from core.tickets.access import visible_email


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
                     until: datetime | None = None, limit: int = 100,
                     viewer: int | None) -> Sequence[IngestLogEntry]:
    """The portal's not-logged entries ``viewer`` may see (a team inbox's only for its
    members; ``core.audit.visible_entry``), newest first: ``sender`` matches the From or
    the envelope sender, ``address`` the logging address (both: contains, any case)."""
    query = select(IngestLogEntry).where(IngestLogEntry.portal_id == portal_id,
                                         await visible_entry(session, portal_id, viewer))
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
                       text: str = "", limit: int = 30,
                       viewer: int | None) -> list[ThreadChoice]:
    """The threads of the email's contacts, other than its own, newest first; with
    ``text``, only those whose subject contains it (any case). Deleted emails count
    for nothing, nor emails ``viewer`` may not see (a team inbox's): a thread of only
    those is not listed, and a thread that also holds them is named, and found by
    ``text``, by the viewer's own emails, as ``queries.thread_subject`` names it."""
    email = await session.get(Email, email_id)
    if email is None or email.portal_id != portal_id:
        return []
    visible = await visible_email(session, portal_id, viewer)
    contacts = select(EmailContact.contact_id).where(EmailContact.email_id == email_id)
    theirs = select(EmailContact.email_id).where(EmailContact.contact_id.in_(contacts))
    hidden = select(Email.id).where(Email.thread_id == Thread.id,
                                    Email.deleted_at.is_(None), not_(visible))
    hides = exists(hidden.correlate(Thread)) if viewer is not None else None
    newest = func.max(Email.sent_at)
    query = (select(Thread.id, Thread.subject, newest, func.count(Email.id))
             .join(Email, Email.thread_id == Thread.id)
             .where(Thread.portal_id == portal_id, Email.portal_id == portal_id,
                    Email.deleted_at.is_(None), Email.id.in_(theirs), visible,
                    Thread.id != email.thread_id)
             .group_by(Thread.id, Thread.subject).order_by(newest.desc(), Thread.id.desc())
             .limit(limit))
    if text.strip():
        pattern = _like(text.strip().lower())
        by_subject = func.lower(Thread.subject).like(pattern, escape="\\")
        if hides is None:
            query = query.where(by_subject)
        else:
            seen = select(Email.id).where(Email.thread_id == Thread.id,
                                          Email.deleted_at.is_(None), visible,
                                          func.lower(Email.subject).like(pattern, escape="\\"))
            query = query.where(or_(and_(not_(hides), by_subject),
                                    and_(hides, exists(seen.correlate(Thread)))))
    rows = (await session.execute(query)).all()
    subjects = {row[0]: row[1] for row in rows}
    if hides is not None and rows:
        mixed = set(await session.scalars(select(Thread.id).where(
            Thread.id.in_(list(subjects)), hides)))
        for thread_id in mixed:
            first = await session.scalar(select(Email.subject).where(
                Email.thread_id == thread_id, Email.deleted_at.is_(None), visible)
                .order_by(Email.sent_at, Email.id).limit(1))
            subjects[thread_id] = base_subject(first or "")[:998]
    return [ThreadChoice(row[0], subjects[row[0]], row[2], row[3]) for row in rows]
