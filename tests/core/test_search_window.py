"""A query with words ranks only its WINDOW most recently logged matches; the older ones
follow, newest first, so a word in most emails costs WINDOW rankings, not one per email,
and every match is still found, once, across the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core import search
from core.search import _postgres, _sqlite, parse
from core.storage.db import Database
from core.storage.models import Thread
from core.types import Direction
from tests.core.test_search import DAY, _email, _ids_of, _portal, _store


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(search, "WINDOW", 3)
    return 3


async def _pages(database: Database, portal: int, query: str, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor: str | None = None
    async with database.read() as session:
        while True:
            page = await search.search(session, portal, query, limit=limit, cursor=cursor)
            pages.append([hit.email.id for hit in page.hits])
            if page.cursor is None:
                return pages
            cursor = page.cursor


async def test_the_newest_matches_are_ranked_then_the_older_follow(
        database: Database, window: int) -> None:
    """Six matches, a window of three: the three newest best first, then the three older
    newest first, whatever their rank; a word with fewer matches than the window is
    ranked whole, as before."""
    portal = await _portal(database)
    # Logged in this order (ids ascending); "offer" in the subject ranks first.
    oldest_best = await _store(database, portal, subject="Offer", body="offer offer")
    old = await _store(database, portal, subject="Re", body="an offer", sent_at=DAY)
    older = await _store(database, portal, subject="Re", body="the offer",
                         sent_at=DAY - timedelta(days=1))
    newer = await _store(database, portal, subject="Re", body="our offer, the one")
    best = await _store(database, portal, subject="Offer", body="see the offer")
    newest = await _store(database, portal, subject="Re", body="this offer")
    rare = await _store(database, portal, subject="Re", body="rarity")
    ranked = await _ids_of(database, portal, "offer")
    assert ranked[0] == best and sorted(ranked[:3]) == sorted([newer, best, newest])
    assert ranked[3:] == [older, old, oldest_best]
    assert await _ids_of(database, portal, "rarity") == [rare]
    assert sorted(await _ids_of(database, portal, "subject:offer")) == [oldest_best, best]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7])
async def test_pages_cross_the_window_without_gaps_or_repeats(
        database: Database, window: int, limit: int) -> None:
    """Paged with any limit, the pages hold every match once, in the order of one page."""
    portal = await _portal(database)
    for i in range(7):
        await _store(database, portal, subject="Offer" if i % 3 == 0 else "Re",
                     body=f"offer number {i}")
    whole = await _ids_of(database, portal, "offer")
    pages = await _pages(database, portal, "offer", limit)
    assert [i for page in pages for i in page] == whole
    assert len(whole) == 7
    assert all(len(page) == limit for page in pages[:-1])


async def test_the_window_is_the_portals_and_the_filters(
        database: Database, window: int) -> None:
    """Another portal's matches take no place in the window; filters apply before it."""
    portal = await _portal(database, "Mine")
    theirs = await _portal(database, "Theirs")
    mine = [await _store(database, portal, subject="Offer", body="offer") for _ in range(2)]
    for _ in range(5):
        await _store(database, theirs, subject="Offer", body="offer")
    outgoing = await _store(database, portal, subject="Re", body="offer")
    incoming = await _store(database, portal, subject="Re", body="offer",
                            direction="incoming")
    found = await _ids_of(database, portal, "offer")
    assert sorted(found) == sorted([*mine, outgoing, incoming])
    assert await _ids_of(database, portal, "offer",
                         search.Filters(direction=Direction.INCOMING)) == [incoming]


async def test_both_ways_to_the_window_find_the_same(
        database: Database, window: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a word in most emails walks the newest ones, a rarer word collects
    its matches from the index first (ANALYZE's statistics tell which): the same pages
    either way. SQLite has one way."""
    portal = await _portal(database)
    async with database.transaction() as session:
        thread = Thread(portal_id=portal, subject="")
        session.add(thread)
        await session.flush()
        for i in range(30):
            session.add(_email(portal, thread.id, subject="Offer" if i % 4 == 0 else "Re",
                               body="common words" + (" once" if i == 7 else "")))
    queries = [parse(q) for q in ("common", "once", "common once", '"common words"', "offer")]
    async with database.read() as session:
        if database.is_sqlite:
            assert not any([await _sqlite.dense(session, q) for q in queries])
            return
        await session.execute(text("ANALYZE search_documents"))
        assert [await _postgres.dense(session, q) for q in queries] == [
            True, False, False, False, True]
    found: dict[bool, list[list[list[int]]]] = {}
    for forced in (True, False):
        async def choose(session: object, query: object, forced: bool = forced) -> bool:
            return forced
        monkeypatch.setattr(_postgres, "dense", choose)
        found[forced] = [await _pages(database, portal, q, 4)
                         for q in ("common", "once", "offer", "-once common")]
    assert found[True] == found[False]
    assert sum(len(p) for p in found[True][0]) == 30
