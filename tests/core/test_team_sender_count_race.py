"""A team inbox's per-sender hourly count on PostgreSQL, where writers run at once
(``serve --workers``, several nodes): two messages of one sender counted at the same
time are two more, never one (core.tickets.senders counts in one upsert statement).
(SQLite has one writer at a time: nothing to race; the hour's reset on both backends.)"""

from __future__ import annotations

from datetime import timedelta

from core.storage.db import Database
from core.storage.models import TeamInbox, TeamInboxSender
from core.tickets import senders
from tests.support.races import Hold, desk_inbox, second_waits_for_first

SENDER = "carla@client.example"


async def _inbox(db: Database) -> int:
    async with db.transaction() as session:
        inbox = await desk_inbox(session)
        return inbox.id


async def _count(db: Database, inbox_id: int, hold: Hold | None = None) -> int:
    async with db.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        count = await senders.count_message(session, inbox, SENDER)
        if hold is not None:
            await hold.here()
        return count


async def test_two_writers_at_once_both_count(pg_database: Database) -> None:
    """While one transaction has counted the sender's third message (not committed
    yet), another counting its fourth waits for it and counts 4: neither starts from
    the 2 both could read."""
    inbox_id = await _inbox(pg_database)
    assert [await _count(pg_database, inbox_id) for _ in range(2)] == [1, 2]
    first, second = await second_waits_for_first(
        lambda hold: _count(pg_database, inbox_id, hold),
        lambda: _count(pg_database, inbox_id), "the second count", timeout=0.3)
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
        row.window_start -= senders.SENDER_WINDOW + timedelta(seconds=1)
    assert await _count(database, inbox_id) == 1
    async with database.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        assert await senders.count_message(session, inbox, "other@client.example") == 1
