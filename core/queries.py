"""Read side: portal-scoped look-ups for the API. Another portal's ids are NotFound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.mail.threads import base_subject
from core.storage.models import Attachment, Company, Contact, Email, EmailContact, Thread
from core.tickets.access import sees_email, sees_inbox_mail, visible_email


class _PortalRow(Protocol):
    __tablename__: str
    portal_id: Any


M = TypeVar("M", bound=_PortalRow)


def _singular(table: str) -> str:
    noun = (table[:-3] + "y" if table.endswith("ies")
            else table[:-2] if table.endswith(("xes", "sses")) else table.removesuffix("s"))
    return noun.replace("_", " ")


async def owned(session: AsyncSession, model: type[M], portal_id: int, object_id: int) -> M:
    """The row ``object_id`` of ``model`` if it belongs to ``portal_id``; else NotFound.

    Another portal's row and a missing one give the same answer, so ids reveal nothing.
    An id past 2^63 - 1 (what the databases hold) is missing too: never looked up.
    """
    found = await session.get(model, object_id) if 0 < object_id < 2**63 else None
    if found is None or found.portal_id != portal_id:
        raise NotFound(f"no {_singular(model.__tablename__)} {object_id}")
    return found


async def contact(session: AsyncSession, portal_id: int, contact_id: int) -> Contact:
    return await owned(session, Contact, portal_id, contact_id)


async def company(session: AsyncSession, portal_id: int, company_id: int) -> Company:
    return await owned(session, Company, portal_id, company_id)


async def thread(session: AsyncSession, portal_id: int, thread_id: int) -> Thread:
    return await owned(session, Thread, portal_id, thread_id)


async def contacts_by_email(session: AsyncSession, portal_id: int, email: str) -> Sequence[Contact]:
    return (await session.scalars(
        select(Contact).where(Contact.portal_id == portal_id, Contact.email == email.lower())
    )).all()


async def contacts_page(
    session: AsyncSession, portal_id: int, *, after: int, limit: int
) -> Sequence[Contact]:
    return (await session.scalars(
        select(Contact).where(Contact.portal_id == portal_id, Contact.id > after)
        .order_by(Contact.id).limit(limit)
    )).all()


async def email(session: AsyncSession, portal_id: int, email_id: int, *,
                viewer: int | None = None) -> Email:
    """The portal's email ``email_id`` unless deleted (a deleted one is NotFound too).
    ``viewer``: the user asking (None: the admin); a team inbox's email is NotFound to a
    user who is not its member (docs/tickets.md)."""
    found = await owned(session, Email, portal_id, email_id)
    if found.deleted_at is not None or not await sees_email(session, found, viewer):
        raise NotFound(f"no email {email_id}")
    return found


async def emails_by_message_id(
    session: AsyncSession, portal_id: int, message_id: str, *, viewer: int | None = None
) -> Sequence[Email]:
    return (await session.scalars(
        select(Email).where(
            Email.portal_id == portal_id, Email.message_id == message_id.strip().strip("<>"),
            Email.deleted_at.is_(None), await visible_email(session, portal_id, viewer),
        )
    )).all()


async def timeline(
    session: AsyncSession, portal_id: int, contact_id: int, *, limit: int,
    viewer: int | None = None,
) -> Sequence[Email]:
    """A contact's emails ``viewer`` may see (None: the admin), newest first."""
    await contact(session, portal_id, contact_id)
    return (await session.scalars(
        select(Email)
        .join(EmailContact, EmailContact.email_id == Email.id)
        .where(EmailContact.contact_id == contact_id, Email.deleted_at.is_(None),
               await visible_email(session, portal_id, viewer))
        .order_by(Email.sent_at.desc(), Email.id.desc())
        .limit(limit)
    )).all()


async def _hides(session: AsyncSession, portal_id: int, thread_id: int,
                 viewer: int | None) -> bool:
    """Whether the thread holds an email (not deleted) that ``viewer`` may not see."""
    if viewer is None:
        return False
    return await session.scalar(select(Email.id).where(
        Email.thread_id == thread_id, Email.deleted_at.is_(None),
        not_(await visible_email(session, portal_id, viewer))).limit(1)) is not None


async def thread_emails(session: AsyncSession, portal_id: int, thread_id: int, *,
                        viewer: int | None = None) -> Sequence[Email]:
    """A thread's emails ``viewer`` may see (None: the admin), oldest first; NotFound for
    a thread whose every email is a team inbox's the viewer is not a member of."""
    await thread(session, portal_id, thread_id)
    found = (await session.scalars(
        select(Email)
        .where(Email.thread_id == thread_id, Email.deleted_at.is_(None),
               await visible_email(session, portal_id, viewer))
        .order_by(Email.sent_at, Email.id)
    )).all()
    if not found and await _hides(session, portal_id, thread_id, viewer):
        raise NotFound(f"no thread {thread_id}")
    return found


async def visible_thread(session: AsyncSession, portal_id: int, thread_id: int, *,
                         viewer: int | None = None) -> Thread:
    """The thread, unless every email on it is one ``viewer`` may not see (NotFound, as
    ``thread_emails``): where a user may move their email to."""
    found = await thread(session, portal_id, thread_id)
    if await _hides(session, portal_id, thread_id, viewer) and await session.scalar(
            select(Email.id).where(Email.thread_id == thread_id, Email.deleted_at.is_(None),
                                   await visible_email(session, portal_id, viewer))
            .limit(1)) is None:
        raise NotFound(f"no thread {thread_id}")
    return found


async def thread_subject(session: AsyncSession, found: Thread, shown: Sequence[Email], *,
                         viewer: int | None = None) -> str:
    """The thread's subject as ``viewer`` may see it. A thread's subject is its first
    email's: where the thread holds an email the viewer may not see (a team inbox's),
    it is the first shown email's instead, so a colleague never reads the subject of
    the inbox's mail."""
    if not await _hides(session, found.portal_id, found.id, viewer):
        return found.subject
    return base_subject(shown[0].subject)[:998] if shown else ""


async def contact_attachments(
    session: AsyncSession, portal_id: int, contact_id: int, *, viewer: int | None = None
) -> Sequence[Any]:
    """Every file logged with a contact's emails (those ``viewer`` may see), newest email
    first: (Attachment, Email)."""
    await contact(session, portal_id, contact_id)
    rows = await session.execute(
        select(Attachment, Email)
        .join(Email, Email.id == Attachment.email_id)
        .join(EmailContact, EmailContact.email_id == Email.id)
        .where(EmailContact.contact_id == contact_id, Email.deleted_at.is_(None),
               await visible_email(session, portal_id, viewer))
        .order_by(Email.sent_at.desc(), Attachment.id)
    )
    return [(a, e) for a, e in rows]


async def attachment(session: AsyncSession, portal_id: int, attachment_id: int, *,
                     viewer: int | None = None) -> Attachment:
    row = (await session.execute(
        select(Attachment, Email.portal_id, Email.deleted_at, Email.team_inbox_id)
        .join(Email, Email.id == Attachment.email_id)
        .where(Attachment.id == attachment_id)
    )).first()
    if (row is None or row[1] != portal_id or row[2] is not None
            or not await sees_inbox_mail(session, portal_id, row[3], viewer)):
        raise NotFound(f"no attachment {attachment_id}")
    found: Attachment = row[0]
    return found
