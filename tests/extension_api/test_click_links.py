"""The click redirect's cache of sends' links: a repeated click reads no database, and
deleting an email (``forget``) or the time to live makes the next click read again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from core import tracked_sends
from core.tracked_sends import Links
from extension_api.click_links import LinkCache

LINKS = Links(1, datetime(2026, 1, 1, tzinfo=UTC), {0: "https://a.example/"})


class CountingDb:
    def __init__(self) -> None:
        self.reads = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        self.reads += 1
        yield None


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> dict[str, Links | None]:
    answers: dict[str, Links | None] = {"s" * 24: LINKS}

    async def links_of(session: Any, send_token: str) -> Links | None:
        return answers.get(send_token)

    monkeypatch.setattr(tracked_sends, "links_of", links_of)
    return answers


async def test_repeated_clicks_read_the_database_once(stored: dict[str, Links | None]) -> None:
    db, now = CountingDb(), [0.0]
    cache = LinkCache(db, ttl=30, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(100):
        assert await cache.get("s" * 24) == LINKS
        assert await cache.get("u" * 24) is None  # unknown sends are cached too
    assert db.reads == 2
    stored["s" * 24] = None  # deleted
    cache.forget()
    assert await cache.get("s" * 24) is None and db.reads == 3
    stored["s" * 24] = LINKS  # restored by another process: seen once the entry is old
    now[0] = 29
    assert await cache.get("s" * 24) is None
    now[0] = 31
    assert await cache.get("s" * 24) == LINKS and db.reads == 4


async def test_the_cache_stays_bounded(stored: dict[str, Links | None]) -> None:
    cache = LinkCache(CountingDb(), size=10)  # type: ignore[arg-type]
    for i in range(50):
        await cache.get(f"{i:024d}")
    assert len(cache._entries) == 10
