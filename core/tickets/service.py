"""What a member of a team inbox (or the admin) does with its tickets: list, read, change,
assign, close, reopen, merge. A ticket of an inbox the caller is not a member of, or of
another portal, is NotFound. Takes the caller's session; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import queries
from core.errors import InvalidInput, NotFound
from core.storage.models import (
    Email,
    EmailTicket,
    Team,
    Ticket,
    TicketActivity,
    TicketContact,
)
from core.tickets import activity, routing
from core.tickets.access import inbox_members, member_inboxes
from core.tickets.activity import Kind
from core.tickets.matching import Status
from core.tickets.rules import Priority


async def ticket(session: AsyncSession, portal_id: int, user_id: int | None,
                 ticket_id: int) -> Ticket:
    """A team inbox's ticket the caller may see; NotFound otherwise (plain CRM tickets,
    with no team inbox, are not served here)."""
    found = await queries.owned(session, Ticket, portal_id, ticket_id)
    allowed = await member_inboxes(session, portal_id, user_id)
    if found.team_inbox_id is None or (allowed is not None
                                       and found.team_inbox_id not in allowed):
        raise NotFound(f"no ticket {ticket_id}")
    return found


class Order(StrEnum):
    """How a list of tickets is sorted."""

    NEWEST = "newest"  # by id, newest first; paged by ``Filter.before``
    LATEST_ACTIVITY = "latest_activity"  # latest activity first, then newest; by ``offset``


@dataclass(frozen=True)
class Filter:
    status: Status | None = None
    team_inbox_id: int | None = None
    assignee_user_id: int | None = None
    unassigned: bool = False
    priority: Priority | None = None
    order: Order = Order.NEWEST
    before: int | None = None  # a cursor of the newest order: tickets with a smaller id
    offset: int = 0  # the latest-activity order's paging: that many left out
    limit: int = 50


async def tickets(session: AsyncSession, portal_id: int, user_id: int | None,
                  wanted: Filter) -> Sequence[Ticket]:
    """The caller's tickets (``user_id`` None: the admin's, every inbox), newest first
    or by latest activity (the last change, or the opening)."""
    query = select(Ticket).where(Ticket.portal_id == portal_id,
                                 Ticket.team_inbox_id.is_not(None))
    allowed = await member_inboxes(session, portal_id, user_id)
    if allowed is not None:
        query = query.where(Ticket.team_inbox_id.in_(sorted(allowed)))
    if wanted.status is not None:
        query = query.where(Ticket.status == wanted.status.value)
    if wanted.team_inbox_id is not None:
        query = query.where(Ticket.team_inbox_id == wanted.team_inbox_id)
    if wanted.assignee_user_id is not None:
        query = query.where(Ticket.assignee_user_id == wanted.assignee_user_id)
    if wanted.unassigned:  # no agent yet (it may wait in a team's queue)
        query = query.where(Ticket.assignee_user_id.is_(None))
    if wanted.priority is not None:
        query = query.where(Ticket.priority == wanted.priority.value)
    if wanted.order is Order.LATEST_ACTIVITY:
        latest = func.coalesce(Ticket.updated_at, Ticket.created_at)
        query = query.order_by(latest.desc(), Ticket.id.desc()).offset(wanted.offset)
    else:
        if wanted.before is not None:
            query = query.where(Ticket.id < wanted.before)
        query = query.order_by(Ticket.id.desc())
    return (await session.scalars(query.limit(wanted.limit))).all()


async def emails_of(session: AsyncSession, ticket_id: int) -> Sequence[Email]:
    """A ticket's emails, oldest first (deleted ones left out)."""
    return (await session.scalars(
        select(Email).join(EmailTicket, EmailTicket.email_id == Email.id)
        .where(EmailTicket.ticket_id == ticket_id, Email.deleted_at.is_(None))
        .order_by(Email.sent_at, Email.id))).all()


async def activity_of(session: AsyncSession, ticket_id: int) -> Sequence[TicketActivity]:
    return (await session.scalars(select(TicketActivity).where(
        TicketActivity.ticket_id == ticket_id).order_by(TicketActivity.id))).all()


async def contact_ids(session: AsyncSession, ticket_id: int) -> list[int]:
    return (await contact_ids_of(session, [ticket_id]))[ticket_id]


async def contact_ids_of(session: AsyncSession, ticket_ids: Sequence[int]
                         ) -> dict[int, list[int]]:
    """Each ticket's contact ids, sorted, in one read (a page of tickets)."""
    found: dict[int, list[int]] = {ticket_id: [] for ticket_id in ticket_ids}
    if ticket_ids:
        rows = await session.execute(
            select(TicketContact.ticket_id, TicketContact.contact_id)
            .where(TicketContact.ticket_id.in_(ticket_ids))
            .order_by(TicketContact.ticket_id, TicketContact.contact_id))
        for ticket_id, contact_id in rows:
            found[ticket_id].append(contact_id)
    return found


@dataclass(frozen=True)
class Change:
    """A partial change of a ticket; None leaves a field as it is."""

    status: Status | None = None
    priority: Priority | None = None
    pipeline: str | None = None
    stage: str | None = None
    subject: str | None = None
    tags: tuple[str, ...] | None = None


async def change(session: AsyncSession, found: Ticket, wanted: Change, *,
                 actor: int | None) -> Ticket:
    """Apply a partial change, each field's change in the ticket's log."""
    if found.merged_into_id is not None:
        raise InvalidInput(f"ticket {found.id} was merged into ticket {found.merged_into_id}")
    for kind, name, value in (
            (Kind.PRIORITY, "priority", wanted.priority and wanted.priority.value),
            (Kind.PIPELINE, "pipeline", wanted.pipeline),
            (Kind.STAGE, "stage", wanted.stage)):
        before = getattr(found, name)
        if value is not None and value != before:
            setattr(found, name, value)
            activity.log(session, found, kind, actor=actor, from_value=before, to_value=value,
                         detail={"how": "api"})
    if wanted.subject is not None:
        found.subject = wanted.subject
    if wanted.tags is not None:
        found.tags = list(dict.fromkeys(wanted.tags))
    if wanted.status is not None:
        await activity.set_status(session, found, wanted.status, actor=actor, reason="api")
    await session.flush()
    return found


async def assign(session: AsyncSession, found: Ticket, *, user_id: int | None,
                 team_id: int | None, actor: int | None) -> Ticket:
    """Give the ticket to a member of its inbox (``user_id``), to a team (round-robin
    among those of its members who are members of the inbox, unless ``user_id`` is one
    of them), or to nobody (both None). Nobody outside the inbox ever gets it: they
    could not open it, yet its events (subject, sender) would reach their feed."""
    assert found.team_inbox_id is not None
    inbox = set(await inbox_members(session, found.team_inbox_id))
    if team_id is not None:
        team = await session.get(Team, team_id) if 0 < team_id < 2**63 else None
        if team is None or team.portal_id != found.portal_id:
            raise InvalidInput(f"team_id: no team {team_id} in this portal")
        members = [u for u in await routing.team_users(session, found.portal_id, team_id)
                   if u in inbox]
        if not members:
            raise InvalidInput(f"team_id: no one in team {team_id} is a member of this "
                               "ticket's inbox")
        if user_id is not None and user_id not in members:
            raise InvalidInput(f"user_id: user {user_id} is not a member of both team "
                               f"{team_id} and this ticket's inbox")
        if user_id is None:
            user_id = await routing.round_robin(session, found.portal_id, members)
    elif user_id is not None and user_id not in inbox:
        raise InvalidInput(f"user_id: user {user_id} is not a member of this ticket's inbox")
    activity.assign(session, found, user_id, team_id, how="api", actor=actor)
    await session.flush()
    return found


async def merge(session: AsyncSession, portal_id: int, user_id: int | None, found: Ticket,
                into_id: int) -> Ticket:
    """Merge ``found`` into ticket ``into_id`` of the same inbox: its emails and contacts
    join it (each email keeps its thread), ``found`` is closed with ``merged_into_id``
    set (its later mail continues the surviving ticket). Returns the surviving ticket."""
    if into_id == found.id:
        raise InvalidInput("into: a ticket cannot be merged into itself")
    try:
        into = await ticket(session, portal_id, user_id, into_id)
    except NotFound:
        raise InvalidInput(f"into: no ticket {into_id}") from None
    # Both locked, in id order, and read afresh before they are checked: two merges of
    # one pair crossing (A into B while B goes into A) would each see the other unmerged
    # and make a cycle, its mail then reopening a merged ticket. (PostgreSQL; SQLite
    # has one writer at a time.)
    await session.execute(select(Ticket).where(Ticket.id.in_(sorted({found.id, into.id})))
                          .order_by(Ticket.id).with_for_update()
                          .execution_options(populate_existing=True))
    if into.team_inbox_id != found.team_inbox_id:
        raise InvalidInput("into: tickets of different team inboxes cannot be merged")
    if into.merged_into_id is not None or found.merged_into_id is not None:
        raise InvalidInput("into: a merged ticket cannot be merged again")
    moved = set(await session.scalars(select(EmailTicket.email_id).where(
        EmailTicket.ticket_id == found.id)))
    have = set(await session.scalars(select(EmailTicket.email_id).where(
        EmailTicket.ticket_id == into.id)))
    session.add_all(EmailTicket(email_id=e, ticket_id=into.id) for e in moved - have)
    people = set(await session.scalars(select(TicketContact.contact_id).where(
        TicketContact.ticket_id == found.id)))
    known = set(await session.scalars(select(TicketContact.contact_id).where(
        TicketContact.ticket_id == into.id)))
    session.add_all(TicketContact(ticket_id=into.id, contact_id=c) for c in people - known)
    found.merged_into_id = into.id
    # Tickets merged into ``found`` before now live on in ``into`` too: one step, never a
    # chain (mail on them finds its ticket in one look, however often tickets merge).
    await session.execute(update(Ticket).where(Ticket.merged_into_id == found.id)
                          .values(merged_into_id=into.id)
                          .execution_options(synchronize_session=False))
    activity.log(session, found, Kind.MERGED, actor=user_id, to_value=str(into.id))
    activity.log(session, into, Kind.MERGED, actor=user_id, from_value=str(found.id),
                 detail={"merged": found.id})
    await activity.set_status(session, found, Status.CLOSED, actor=user_id, reason="merged")
    await session.flush()
    return into
