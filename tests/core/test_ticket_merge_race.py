"""Merging tickets on PostgreSQL, where writers run at once: two merges of one pair
crossing (A into B while B goes into A) never both happen (core.tickets.service.merge
locks both tickets before checking them), so no cycle of merged tickets is made.
(SQLite has one writer at a time: nothing to race.)"""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.storage.db import Database
from core.storage.models import Ticket
from core.tickets import service
from tests.support.races import Hold, desk_inbox, second_waits_for_first


async def _tickets(db: Database) -> tuple[int, int, int]:
    async with db.transaction() as session:
        inbox = await desk_inbox(session)
        pair = [Ticket(portal_id=inbox.portal_id, subject=f"t{n}", team_inbox_id=inbox.id,
                       status="open", priority="normal", tags=[]) for n in (1, 2)]
        session.add_all(pair)
        await session.flush()
        return inbox.portal_id, pair[0].id, pair[1].id


async def _merge(db: Database, portal_id: int, ticket_id: int, into: int,
                 hold: Hold | None = None) -> int:
    async with db.transaction() as session:
        found = await service.ticket(session, portal_id, None, ticket_id)
        survivor = await service.merge(session, portal_id, None, found, into)
        if hold is not None:
            await hold.here()
        return survivor.id


async def test_crossing_merges_never_make_a_cycle(pg_database: Database) -> None:
    """While A is being merged into B (not yet committed), merging B into A waits for
    it, then is refused: B's partner is merged already."""
    portal_id, a, b = await _tickets(pg_database)
    first, second = await second_waits_for_first(
        lambda hold: _merge(pg_database, portal_id, a, b, hold),
        lambda: _merge(pg_database, portal_id, b, a), "the crossing merge")
    assert await first == b
    with pytest.raises(InvalidInput, match="merged"):
        await second
    async with pg_database.read() as session:
        merged = {t.id: t.merged_into_id for t in
                  (await session.get(Ticket, a), await session.get(Ticket, b)) if t}
    assert merged == {a: b, b: None}
