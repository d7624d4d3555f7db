"""A team inbox acknowledges a sender at most once per ACK_INTERVAL, also when two
processes take that sender's mail at once on PostgreSQL (``serve --workers``, several
nodes): core.tickets.intake claims the acknowledgement in one conditional UPDATE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from core import accounts
from core.storage.db import Database, migrate
from core.storage.models import TeamInbox, TeamInboxSender
from core.tickets import inboxes, intake
from tests.support import postgres

SENDER = "carla@client.example"


@pytest.fixture
async def pg_database() -> AsyncIterator[Database]:
    url = await postgres.create_database()
    db = Database(url)
    await migrate(db)
    yield db
    await db.dispose()
    await postgres.drop_database(url)


async def _inbox(db: Database) -> int:
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "Desk")).portal
        inbox = await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
            name="Support"))
        await intake._counted(session, inbox, SENDER)  # the row intake writes first
        return inbox.id


async def _claim(db: Database, inbox_id: int, held: asyncio.Event | None = None,
                 release: asyncio.Event | None = None) -> bool:
    async with db.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        claimed = await intake._claim_acknowledgement(session, inbox.id, SENDER)
        if held is not None and release is not None:
            held.set()
            await release.wait()
        return claimed


async def test_two_writers_at_once_acknowledge_once(pg_database: Database) -> None:
    """While one transaction has claimed the sender's acknowledgement (not committed
    yet), another waits for it and then finds the sender acknowledged: one of them
    acknowledges, not both (reading last_ack_at first, both did)."""
    inbox_id = await _inbox(pg_database)
    held, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_claim(pg_database, inbox_id, held, release))
    holding = asyncio.create_task(held.wait())
    await asyncio.wait({first, holding}, return_when=asyncio.FIRST_COMPLETED)
    if first.done():
        first.result()  # it failed before holding: say why
    second = asyncio.create_task(_claim(pg_database, inbox_id))
    done, _ = await asyncio.wait({second}, timeout=0.3)
    assert not done, "the second claim did not wait for the first"
    release.set()
    assert (await first, await second) == (True, False)


async def test_acknowledged_again_after_the_interval(database: Database) -> None:
    """On both backends: acknowledged once, not again within ACK_INTERVAL, again once
    it is over; a sender with no row (not counted) is not acknowledged."""
    inbox_id = await _inbox(database)
    assert [await _claim(database, inbox_id) for _ in range(2)] == [True, False]
    async with database.transaction() as session:
        row = await session.get(TeamInboxSender, (inbox_id, SENDER))
        assert row is not None and row.last_ack_at is not None
        row.last_ack_at -= intake.ACK_INTERVAL + timedelta(seconds=1)
    assert await _claim(database, inbox_id) is True
    async with database.transaction() as session:
        assert not await intake._claim_acknowledgement(session, inbox_id, "x@client.example")
