"""A team inbox's per-sender hourly count on PostgreSQL, where writers run at once
(``serve --workers``, several nodes): two messages of one sender counted at the same
time are two more, never one (core.tickets.intake counts in one upsert statement).
(SQLite has one writer at a time: nothing to race; the hour's reset on both backends.)"""

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
        return inbox.id


async def _count(db: Database, inbox_id: int, held: asyncio.Event | None = None,
                 release: asyncio.Event | None = None) -> int:
    async with db.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        count = await intake._counted(session, inbox, SENDER)
        if held is not None and release is not None:
            held.set()
            await release.wait()
        return count


async def test_two_writers_at_once_both_count(pg_database: Database) -> None:
    """While one transaction has counted the sender's third message (not committed
    yet), another counting its fourth waits for it and counts 4: neither starts from
    the 2 both could read."""
    inbox_id = await _inbox(pg_database)
    assert [await _count(pg_database, inbox_id) for _ in range(2)] == [1, 2]
    held, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_count(pg_database, inbox_id, held, release))
    holding = asyncio.create_task(held.wait())
    await asyncio.wait({first, holding}, return_when=asyncio.FIRST_COMPLETED)
    if first.done():
        first.result()  # it failed before holding: say why
    second = asyncio.create_task(_count(pg_database, inbox_id))
    done, _ = await asyncio.wait({second}, timeout=0.3)
    assert not done, "the second count did not wait for the first"
    release.set()
    assert (await first, await second) == (3, 4)
    async with pg_database.read() as session:
        row = await session.get(TeamInboxSender, (inbox_id, SENDER))
        assert row is not None and row.count == 4


async def test_a_new_hour_counts_from_one(database: Database) -> None:
    """On both backends: 1, 2 in the hour; once the row's hour is over, 1 again (and
    another sender's count is its own)."""
    inbox_id = await _inbox(database)
    assert [await _count(database, inbox_id) for _ in range(2)] == [1, 2]
    async with database.transaction() as session:
        row = await session.get(TeamInboxSender, (inbox_id, SENDER))
        assert row is not None
        row.window_start -= intake.SENDER_WINDOW + timedelta(seconds=1)
    assert await _count(database, inbox_id) == 1
    async with database.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        assert await intake._counted(session, inbox, "other@client.example") == 1
