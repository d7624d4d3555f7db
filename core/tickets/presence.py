"""Collision detection: who else is viewing or replying to a ticket, and whether a reply
would cross one another agent sent meanwhile (docs/ticket-replies.md).

An agent registers presence when they open a ticket (``viewing``) and while they write
(``replying``), renewing it at least every ``PRESENCE_FOR`` (a closed tab simply stops
renewing, and its presence lapses). The row keeps the ticket's last activity when the
agent first loaded it: another agent's reply logged after that is a collision, and a
reply started on the stale view is refused unless the agent forces it. The rows live in
the database, so every node serving the API sees the same agents. Never commits.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import CoreError
from core.storage.models import Ticket, TicketActivity, TicketPresence, User, utcnow
from core.tickets.activity import Kind

PRESENCE_FOR = timedelta(seconds=30)


class State(enum.StrEnum):
    VIEWING = "viewing"
    REPLYING = "replying"


@dataclass(frozen=True)
class Present:
    """Another agent on the ticket right now."""

    user_id: int
    name: str
    email: str
    state: State
    since: datetime
    expires_at: datetime


@dataclass(frozen=True)
class CrossedReply:
    """A reply another agent sent after the caller loaded the ticket."""

    activity_id: int
    user_id: int | None
    email_id: int | None
    at: datetime


class ReplyCollision(CoreError):
    """Another agent replied since the caller loaded the ticket (HTTP 409): read their
    reply first, or send anyway with ``force``."""

    code = "reply_collision"

    def __init__(self, crossed: Sequence[CrossedReply], others: Sequence[Present]) -> None:
        who = ", ".join(sorted({f"user {c.user_id}" for c in crossed}))
        super().__init__(f"another agent ({who}) replied to this ticket after you loaded "
                         "it: read their reply, then send yours again with force=true to "
                         "send it anyway")
        self.crossed, self.others = tuple(crossed), tuple(others)


async def last_activity(session: AsyncSession, ticket_id: int) -> int:
    """The id of the ticket's latest activity (0 for none): the version an agent saw."""
    return int(await session.scalar(select(func.max(TicketActivity.id)).where(
        TicketActivity.ticket_id == ticket_id)) or 0)


def logged(session: AsyncSession) -> TicketActivity:
    """The activity ``activity.log`` just added to ``session`` (not yet flushed)."""
    [row] = [o for o in session.new if isinstance(o, TicketActivity)]
    return row


async def register(session: AsyncSession, ticket: Ticket, user_id: int, state: State, *,
                   now: datetime | None = None) -> TicketPresence:
    """The agent is on the ticket (again) until ``PRESENCE_FOR`` from now. A presence
    that had lapsed starts over: what they loaded is the ticket as it is now."""
    now = now or utcnow()
    row = await session.get(TicketPresence, (ticket.id, user_id))
    if row is None or row.expires_at <= now:
        if row is not None:
            await session.delete(row)
            await session.flush()
        row = TicketPresence(ticket_id=ticket.id, user_id=user_id, portal_id=ticket.portal_id,
                             state=state.value, since=now,
                             seen_activity_id=await last_activity(session, ticket.id),
                             expires_at=now + PRESENCE_FOR)
        session.add(row)
    else:
        row.state, row.expires_at = state.value, now + PRESENCE_FOR
    await session.flush()
    return row


async def leave(session: AsyncSession, ticket_id: int, user_id: int) -> None:
    """The agent closed the ticket: their presence ends now."""
    await session.execute(delete(TicketPresence).where(
        TicketPresence.ticket_id == ticket_id, TicketPresence.user_id == user_id))


async def seen(session: AsyncSession, ticket_id: int, user_id: int, activity_id: int) -> None:
    """After the agent's own reply: what they have seen is the ticket up to it."""
    row = await session.get(TicketPresence, (ticket_id, user_id))
    if row is not None:
        row.seen_activity_id = max(row.seen_activity_id, activity_id)


async def others(session: AsyncSession, ticket_id: int, user_id: int | None, *,
                 now: datetime | None = None) -> list[Present]:
    """The other agents viewing or replying to the ticket now (replying first)."""
    now = now or utcnow()
    rows = await session.execute(
        select(TicketPresence, User).join(User, User.id == TicketPresence.user_id)
        .where(TicketPresence.ticket_id == ticket_id, TicketPresence.expires_at > now,
               TicketPresence.user_id != (user_id or 0))
        .order_by(TicketPresence.since, TicketPresence.user_id))
    found = [Present(user.id, user.name, user.email, State(row.state), row.since,
                     row.expires_at) for row, user in rows]
    return sorted(found, key=lambda p: p.state is not State.REPLYING)


async def loaded_version(session: AsyncSession, ticket_id: int, user_id: int) -> int | None:
    """The ticket activity the agent's live presence loaded, or None without one."""
    row = await session.get(TicketPresence, (ticket_id, user_id))
    if row is None or row.expires_at <= utcnow():
        return None
    return row.seen_activity_id


async def crossed_replies(session: AsyncSession, ticket_id: int, user_id: int,
                          after: int) -> list[CrossedReply]:
    """Other agents' replies logged on the ticket after activity ``after``."""
    rows = await session.scalars(select(TicketActivity).where(
        TicketActivity.ticket_id == ticket_id, TicketActivity.id > after,
        TicketActivity.kind == Kind.AGENT_REPLY.value,
        (TicketActivity.actor_user_id != user_id) | TicketActivity.actor_user_id.is_(None),
    ).order_by(TicketActivity.id))
    return [CrossedReply(a.id, a.actor_user_id, a.email_id, a.at) for a in rows]


async def check_collision(session: AsyncSession, ticket: Ticket, user_id: int, *,
                          seen_activity_id: int | None, force: bool) -> list[Present]:
    """The other agents present; ReplyCollision when another agent replied after the
    version the caller loaded (``seen_activity_id``, else their presence's) unless
    ``force``. A caller who never loaded the ticket through presence and names no
    version cannot collide."""
    present = await others(session, ticket.id, user_id)
    after = seen_activity_id if seen_activity_id is not None else await loaded_version(
        session, ticket.id, user_id)
    if after is not None and not force:
        crossed = await crossed_replies(session, ticket.id, user_id, after)
        if crossed:
            raise ReplyCollision(crossed, present)
    return present

