"""A ticket's activity log and its events: every change to a ticket goes through here,
so the log (what SLAs are computed from) and the feed never disagree. The functions add
to the caller's session and never commit; the session recomputes the SLA figures of the
tickets whose log it changed just before it commits (``core.tickets.figures``)."""

from __future__ import annotations

import enum
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import Event, Ticket, TicketActivity, utcnow
from core.tickets import figures as _figures  # noqa: F401 (keeps figures on write)
from core.tickets.matching import Status
from core.types import EventType


class Kind(enum.StrEnum):
    CREATED = "created"
    CUSTOMER_MESSAGE = "customer_message"
    AGENT_REPLY = "agent_reply"
    NOTE = "note"
    STATUS = "status"
    ASSIGNED = "assigned"
    PRIORITY = "priority"
    STAGE = "stage"
    PIPELINE = "pipeline"
    MERGED = "merged"
    AUTOMATIC = "automatic"


def log(session: AsyncSession, ticket: Ticket, kind: Kind, *, actor: int | None = None,
        email_id: int | None = None, from_value: str | None = None,
        to_value: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """One entry in the ticket's log; the ticket's ``updated_at`` moves with it."""
    now = utcnow()
    ticket.updated_at = now
    session.add(TicketActivity(
        portal_id=ticket.portal_id, ticket_id=ticket.id, at=now, kind=kind.value,
        actor_user_id=actor, email_id=email_id, from_value=from_value, to_value=to_value,
        detail=detail or {}))


ASSIGNEE: Literal["assignee"] = "assignee"


def emit(session: AsyncSession, ticket: Ticket, kind: EventType, *,
         email_id: int | None = None, recipient: int | Literal["assignee"] | None = ASSIGNEE,
         **detail: Any) -> None:
    """A ``ticket_*`` event in the feed of ``recipient``, by default the ticket's
    assignee (an unassigned ticket's events are in the admin's feed only)."""
    user_id = ticket.assignee_user_id if recipient == ASSIGNEE else recipient
    session.add(Event(
        portal_id=ticket.portal_id, user_id=user_id, type=kind.value,
        email_id=email_id, detail={"ticket_id": ticket.id,
                                   "team_inbox_id": ticket.team_inbox_id, **detail}))


async def cycles(session: AsyncSession, ticket_id: int) -> int:
    """How many response cycles the ticket has had: 1, plus one per reopen."""
    reopens = await session.scalar(select(func.count()).select_from(TicketActivity).where(
        TicketActivity.ticket_id == ticket_id, TicketActivity.kind == Kind.STATUS.value,
        TicketActivity.from_value == Status.CLOSED.value,
        TicketActivity.to_value == Status.OPEN.value))
    return 1 + (reopens or 0)


async def set_status(session: AsyncSession, ticket: Ticket, status: Status, *,
                     actor: int | None = None, reason: str, email_id: int | None = None,
                     ) -> bool:
    """Move the ticket to ``status``, logging it (a reopen with its new cycle) and
    emitting ``ticket_closed`` on a close; False when it was there already."""
    before = Status(ticket.status)
    if before is status:
        return False
    detail: dict[str, Any] = {"reason": reason}
    now = utcnow()
    if before is Status.CLOSED:
        detail["cycle"] = await cycles(session, ticket.id) + 1
        ticket.reopened_at, ticket.closed_at = now, None
    if status is Status.CLOSED:
        ticket.closed_at = now
    ticket.status = status.value
    log(session, ticket, Kind.STATUS, actor=actor, email_id=email_id,
        from_value=before.value, to_value=status.value, detail=detail)
    if status is Status.CLOSED:
        emit(session, ticket, EventType.TICKET_CLOSED, reason=reason)
    return True


def assignee_label(user_id: int | None, team_id: int | None) -> str | None:
    """How the log writes an assignee: ``user:<id>``, ``team:<id>`` or None."""
    if user_id is not None:
        return f"user:{user_id}"
    return None if team_id is None else f"team:{team_id}"


def assign(session: AsyncSession, ticket: Ticket, user_id: int | None,
           team_id: int | None, *, how: str, actor: int | None = None) -> bool:
    """Give the ticket to a user (and the team it came through) or nobody, logging it
    and emitting ``ticket_assigned``; False when nothing changed."""
    before = assignee_label(ticket.assignee_user_id, ticket.assignee_team_id)
    after = assignee_label(user_id, team_id)
    if before == after:
        return False
    ticket.assignee_user_id, ticket.assignee_team_id = user_id, team_id
    log(session, ticket, Kind.ASSIGNED, actor=actor, from_value=before, to_value=after,
        detail={"how": how})
    emit(session, ticket, EventType.TICKET_ASSIGNED, assignee_user_id=user_id,
         assignee_team_id=team_id, how=how)
    return True
