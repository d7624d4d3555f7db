"""core.tickets.figures on both backends: two transactions writing one ticket's log at
the same time leave figures computed from both (the second waits for the first's row
lock, then reads its rows); the outbox's backoff doubles up to its ceiling."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from core import accounts
from core.storage.db import Database
from core.storage.models import Ticket, TicketActivity, TicketFigures
from core.tickets import acknowledgements, activity
from tests.support.ticket_rows import team_inbox, ticket


async def test_concurrent_writers_of_one_ticket(database: Database) -> None:
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        inbox = await team_inbox(session, portal, "support")
        ticket_id = await ticket(session, portal, inbox,
                                 datetime.now(ZoneInfo("UTC")) - timedelta(hours=1))
    flushed = asyncio.Event()

    async def first() -> None:
        async with database.transaction() as session:
            row = await session.get(Ticket, ticket_id)
            assert row is not None
            activity.log(session, row, activity.Kind.AGENT_REPLY)
            await session.flush()  # holds the ticket's row (PostgreSQL) or the writer lock
            flushed.set()
            await asyncio.sleep(0.3)  # the second is waiting meanwhile

    async def second() -> None:
        await flushed.wait()
        async with database.transaction() as session:
            row = await session.get(Ticket, ticket_id)
            assert row is not None
            activity.log(session, row, activity.Kind.CUSTOMER_MESSAGE)

    await asyncio.gather(first(), second())
    async with database.read() as session:
        kept = await session.get(TicketFigures, ticket_id)
        last = await session.scalar(select(func.max(TicketActivity.id)).where(
            TicketActivity.ticket_id == ticket_id))
    assert kept is not None and kept.first_response is not None
    assert kept.as_of_activity_id == last  # computed from both writers' rows


def test_retry_backoff_doubles_to_its_ceiling() -> None:
    delays = [acknowledgements.retry_delay(n, base=30).total_seconds() for n in (1, 2, 3, 9)]
    assert delays == [30, 60, 120, acknowledgements.MAX_RETRY]
