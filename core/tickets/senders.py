"""A team inbox's per-sender rows (``team_inbox_senders``): each sender's count of
messages in its current hour, the inbox-wide cap on new tickets per hour, and when the
sender was last acknowledged. The guards ``core.tickets.intake`` applies against loops
and floods, and the once-per-interval rule of acknowledgements (RFC 3834). Never
commits.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import case, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import TeamInbox, TeamInboxSender, Ticket, utcnow

SENDER_WINDOW = timedelta(hours=1)
ACK_INTERVAL = timedelta(hours=4)  # RFC 3834 3.1.1: not the same sender again soon
# New tickets one team inbox opens in an hour at most: past it, mail that would open one
# is not logged (mail continuing a ticket still is). An outsider rotating From addresses
# passes every per-sender allowance; this bounds what they cost. Generous: a busy
# support@ opens far fewer.
HOURLY_TICKETS_ENV = "INBOXLOG_TEAM_INBOX_HOURLY_TICKETS"
DEFAULT_HOURLY_TICKETS = 1000
# The ``team_inbox_senders`` row counting the inbox's refusals past that cap (not an
# address: no sender has it).
CAP_ROW = "*"
PRUNE_EVERY = 600.0  # seconds between one process's prunings of one inbox's sender rows
_pruned: dict[int, float] = {}


def hourly_ticket_cap() -> int:
    """The inbox-wide cap on new tickets per hour (``INBOXLOG_TEAM_INBOX_HOURLY_TICKETS``)."""
    text = os.environ.get(HOURLY_TICKETS_ENV, "").strip()
    return max(1, int(text)) if text.isdigit() else DEFAULT_HOURLY_TICKETS



async def count_message(session: AsyncSession, inbox: TeamInbox, address: str) -> int:
    """Count one more message of ``address`` in its current hour; the count. One
    statement (an upsert returning the count), so two writers at once on PostgreSQL
    (``serve --workers``, other nodes) each add their own one: none counts from a
    value the other has already raised."""
    await _prune(session, inbox.id)
    at = utcnow()
    now = literal(at, TeamInboxSender.window_start.type)
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    over = TeamInboxSender.window_start <= at - SENDER_WINDOW  # its hour is over
    upsert = insert(TeamInboxSender).values(
        team_inbox_id=inbox.id, address=address, window_start=now, count=1,
    ).on_conflict_do_update(
        index_elements=[TeamInboxSender.team_inbox_id, TeamInboxSender.address],
        set_={"window_start": case((over, now), else_=TeamInboxSender.window_start),
              "count": case((over, 1), else_=TeamInboxSender.count + 1)},
    ).returning(TeamInboxSender.count)
    return int(await session.scalar(upsert) or 0)


async def _prune(session: AsyncSession, inbox_id: int) -> None:
    """Drop the inbox's sender rows that no longer count: their hour is over and they
    were not acknowledged within ACK_INTERVAL (at most every PRUNE_EVERY per process)."""
    now = time.monotonic()
    if now - _pruned.get(inbox_id, -PRUNE_EVERY) < PRUNE_EVERY:
        return
    _pruned[inbox_id] = now
    cutoff = utcnow() - max(SENDER_WINDOW, ACK_INTERVAL)
    await session.execute(
        delete(TeamInboxSender).where(
            TeamInboxSender.team_inbox_id == inbox_id, TeamInboxSender.window_start < cutoff,
            or_(TeamInboxSender.last_ack_at.is_(None), TeamInboxSender.last_ack_at < cutoff))
        .execution_options(synchronize_session=False))


async def opened_this_hour(session: AsyncSession, inbox: TeamInbox, cap: int) -> int:
    """The tickets ``inbox`` opened in the last hour (counted up to ``cap``)."""
    recent = (select(Ticket.id).where(
        Ticket.portal_id == inbox.portal_id, Ticket.created_at >= utcnow() - SENDER_WINDOW,
        Ticket.team_inbox_id == inbox.id).limit(cap).subquery())
    return int(await session.scalar(select(func.count()).select_from(recent)) or 0)



async def claim_acknowledgement(session: AsyncSession, inbox_id: int, sender: str) -> bool:
    """Whether ``sender`` may be acknowledged now (not within ACK_INTERVAL), marking it
    acknowledged if so. One conditional UPDATE ... RETURNING: of two writers at once on
    PostgreSQL the second waits for the first's row lock, then finds it acknowledged."""
    now = utcnow()
    claimed = await session.scalar(
        update(TeamInboxSender)
        .where(TeamInboxSender.team_inbox_id == inbox_id, TeamInboxSender.address == sender,
               or_(TeamInboxSender.last_ack_at.is_(None),
                   TeamInboxSender.last_ack_at <= now - ACK_INTERVAL))
        .values(last_ack_at=now)
        .returning(TeamInboxSender.address)
        .execution_options(synchronize_session=False))
    return claimed is not None

