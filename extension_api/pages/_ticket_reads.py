"""What the ticket pages read that core's ticket service does not list: the tickets of
the team inboxes a viewer sees, filtered by inbox, status, assignee and priority, by
latest activity, a page at a time; the users a page names. Access is core's
(``core.tickets.access.member_inboxes``): a viewer never gets a row of an inbox they
are not a member of (the admin: every inbox of the portal), nor of another portal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import Contact, Ticket, User
from core.tickets.access import member_inboxes


@dataclass(frozen=True)
class Wanted:
    """A page of the list: ``assignee`` is ``me``, ``none`` (no agent) or "" (anyone);
    ``status``, ``priority`` and ``inbox_id`` None for any."""

    viewer_id: int
    who: int | None  # whose membership counts: None for the admin
    inbox_id: int | None = None
    status: str | None = None
    priority: str | None = None
    assignee: str = ""
    page: int = 1
    size: int = 25


@dataclass(frozen=True)
class Listed:
    tickets: list[Ticket]
    more: bool  # a next page exists


async def listed(session: AsyncSession, portal_id: int, wanted: Wanted) -> Listed:
    """The tickets, latest activity first (then newest), ``wanted.page`` of them."""
    query = select(Ticket).where(Ticket.portal_id == portal_id,
                                 Ticket.team_inbox_id.is_not(None))
    allowed = await member_inboxes(session, portal_id, wanted.who)
    if allowed is not None:
        query = query.where(Ticket.team_inbox_id.in_(sorted(allowed)))
    if wanted.inbox_id is not None:
        query = query.where(Ticket.team_inbox_id == wanted.inbox_id)
    if wanted.status is not None:
        query = query.where(Ticket.status == wanted.status)
    if wanted.priority is not None:
        query = query.where(Ticket.priority == wanted.priority)
    if wanted.assignee == "me":
        query = query.where(Ticket.assignee_user_id == wanted.viewer_id)
    elif wanted.assignee == "none":  # no agent yet (it may wait in a team's queue)
        query = query.where(Ticket.assignee_user_id.is_(None))
    latest = func.coalesce(Ticket.updated_at, Ticket.created_at)
    rows = list((await session.scalars(
        query.order_by(latest.desc(), Ticket.id.desc())
        .offset((wanted.page - 1) * wanted.size).limit(wanted.size + 1))).all())
    return Listed(rows[:wanted.size], len(rows) > wanted.size)


async def users(session: AsyncSession, portal_id: int, ids: Iterable[int | None]
                ) -> dict[int, User]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.scalars(select(User).where(User.portal_id == portal_id,
                                                    User.id.in_(wanted)))
    return {user.id: user for user in rows}


async def contacts(session: AsyncSession, portal_id: int, ids: Iterable[int | None]
                   ) -> dict[int, Contact]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.scalars(select(Contact).where(Contact.portal_id == portal_id,
                                                       Contact.id.in_(wanted)))
    return {contact.id: contact for contact in rows}
