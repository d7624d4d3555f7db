"""Merging tickets on PostgreSQL, where writers run at once: two merges of one pair
crossing (A into B while B goes into A) never both happen (core.tickets.service.merge
locks both tickets before checking them), so no cycle of merged tickets is made.
(SQLite has one writer at a time: nothing to race.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core import accounts
from core.errors import InvalidInput
from core.storage.db import Database, migrate
from core.storage.models import Ticket
from core.tickets import inboxes, service
from tests.support import postgres


@pytest.fixture
async def pg_database() -> AsyncIterator[Database]:
    url = await postgres.create_database()
    db = Database(url)
    await migrate(db)
    yield db
    await db.dispose()
    await postgres.drop_database(url)


async def _tickets(db: Database) -> tuple[int, int, int]:
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "Desk")).portal
        inbox = await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
            name="Support"))
        pair = [Ticket(portal_id=portal.id, subject=f"t{n}", team_inbox_id=inbox.id,
                       status="open", priority="normal", tags=[]) for n in (1, 2)]
        session.add_all(pair)
        await session.flush()
        return portal.id, pair[0].id, pair[1].id


async def _merge(db: Database, portal_id: int, ticket_id: int, into: int,
                 held: asyncio.Event | None = None,
                 release: asyncio.Event | None = None) -> int:
    async with db.transaction() as session:
        found = await service.ticket(session, portal_id, None, ticket_id)
        survivor = await service.merge(session, portal_id, None, found, into)
        if held is not None and release is not None:
            held.set()
            await release.wait()
        return survivor.id


async def test_crossing_merges_never_make_a_cycle(pg_database: Database) -> None:
    """While A is being merged into B (not yet committed), merging B into A waits for
    it, then is refused: B's partner is merged already."""
    portal_id, a, b = await _tickets(pg_database)
    held, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_merge(pg_database, portal_id, a, b, held, release))
    holding = asyncio.create_task(held.wait())
    await asyncio.wait({first, holding}, return_when=asyncio.FIRST_COMPLETED)
    if first.done():
        first.result()  # it failed before holding: say why
    second = asyncio.create_task(_merge(pg_database, portal_id, b, a))
    done, _ = await asyncio.wait({second}, timeout=0.5)
    assert not done, "the crossing merge did not wait for the first"
    release.set()
    assert await first == b
    with pytest.raises(InvalidInput, match="merged"):
        await second
    async with pg_database.read() as session:
        merged = {t.id: t.merged_into_id for t in
                  (await session.get(Ticket, a), await session.get(Ticket, b)) if t}
    assert merged == {a: b, b: None}
