"""A team inbox acknowledges a sender at most once per ACK_INTERVAL, also when two
processes take that sender's mail at once on PostgreSQL (``serve --workers``, several
nodes): core.tickets.senders claims the acknowledgement in one conditional UPDATE."""

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
        await senders.count_message(session, inbox, SENDER)  # the row intake writes first
        return inbox.id


async def _claim(db: Database, inbox_id: int, hold: Hold | None = None) -> bool:
    async with db.transaction() as session:
        inbox = await session.get(TeamInbox, inbox_id)
        assert inbox is not None
        claimed = await senders.claim_acknowledgement(session, inbox.id, SENDER)
        if hold is not None:
            await hold.here()
        return claimed


async def test_two_writers_at_once_acknowledge_once(pg_database: Database) -> None:
    """While one transaction has claimed the sender's acknowledgement (not committed
    yet), another waits for it and then finds the sender acknowledged: one of them
    acknowledges, not both (reading last_ack_at first, both did)."""
    inbox_id = await _inbox(pg_database)
    first, second = await second_waits_for_first(
        lambda hold: _claim(pg_database, inbox_id, hold),
        lambda: _claim(pg_database, inbox_id), "the second claim", timeout=0.3)
    assert (await first, await second) == (True, False)


async def test_acknowledged_again_after_the_interval(database: Database) -> None:
    """On both backends: acknowledged once, not again within ACK_INTERVAL, again once
    it is over; a sender with no row (not counted) is not acknowledged."""
    inbox_id = await _inbox(database)
    assert [await _claim(database, inbox_id) for _ in range(2)] == [True, False]
    async with database.transaction() as session:
        row = await session.get(TeamInboxSender, (inbox_id, SENDER))
        assert row is not None and row.last_ack_at is not None
        row.last_ack_at -= senders.ACK_INTERVAL + timedelta(seconds=1)
    assert await _claim(database, inbox_id) is True
    async with database.transaction() as session:
        assert not await senders.claim_acknowledgement(session, inbox_id, "x@client.example")
