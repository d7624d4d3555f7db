"""Node leases (core.leases) on both backends: one holder at a time, takeover on expiry,
one turn per interval, renewals that tell a holder what it lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete, select

from core import leases
from core.storage.db import Database, migrate, sqlite_url
from core.storage.models.lease import NodeLease
from tests.support import postgres


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def lease_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """One migrated database per backend for the module (migrating costs seconds);
    each test clears the leases table."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("leases") / "leases.db")
    else:
        url = asyncio.run(postgres.create_database())

    async def setup() -> None:
        db = Database(url)
        await migrate(db)
        await db.dispose()

    asyncio.run(setup())
    yield url
    if request.param == "postgres":
        asyncio.run(postgres.drop_database(url))


@pytest.fixture
async def database(lease_db_url: str) -> AsyncIterator[Database]:
    db = Database(lease_db_url)
    async with db.transaction() as session:
        await session.execute(delete(NodeLease))
    yield db
    await db.dispose()


async def _acquire(db: Database, name: str, holder: str, ttl: float) -> bool:
    async with db.transaction() as session:
        return await leases.acquire(session, name, holder, ttl)


async def _turn(db: Database, name: str, holder: str, every: float) -> bool:
    async with db.transaction() as session:
        return await leases.take_turn(session, name, holder, every)


async def _renew(db: Database, holder: str, ttl: float) -> set[str]:
    async with db.transaction() as session:
        return await leases.renew(session, holder, ttl)


async def test_one_holder_until_the_lease_expires(database: Database) -> None:
    """A held lease is refused to another node and kept by its holder; once expired
    (a TTL already past stands for a dead node's), the other takes it over."""
    assert await _acquire(database, "inbox:1", "node-a", 30)
    assert not await _acquire(database, "inbox:1", "node-b", 30)
    assert await _acquire(database, "inbox:1", "node-a", 30)  # its own: extended
    assert await _acquire(database, "inbox:1", "node-a", -1)  # expired at once
    assert await _acquire(database, "inbox:1", "node-b", 30)
    assert not await _acquire(database, "inbox:1", "node-a", 30)
    async with database.read() as session:
        assert await leases.live(session, leases.INBOX) == {"inbox:1": "node-b"}


async def test_renew_returns_only_what_the_holder_still_holds(database: Database) -> None:
    """Renewal extends the holder's inbox and node leases, not another node's, not a
    purge turn; a lease taken over is missing from what it returns."""
    for name in ("inbox:1", "inbox:2", "node:node-a"):
        assert await _acquire(database, name, "node-a", -1)
    assert await _acquire(database, "inbox:3", "node-b", 30)
    assert await _turn(database, leases.PURGE, "node-a", 60)
    assert await _acquire(database, "inbox:2", "node-b", 30)  # node-a's had expired
    assert await _renew(database, "node-a", 30) == {"inbox:1", "node:node-a"}
    async with database.read() as session:
        assert await leases.live(session, leases.INBOX) == {"inbox:1": "node-a",
                                                           "inbox:2": "node-b",
                                                           "inbox:3": "node-b"}
        assert await leases.live(session, leases.NODE) == {"node:node-a": "node-a"}


async def test_a_prefix_is_not_a_pattern(database: Database) -> None:
    """`_` and `%` in a prefix match themselves only (LIKE wildcards escaped)."""
    assert await _acquire(database, "inboxes", "node-a", 30)
    async with database.read() as session:
        assert await leases.live(session, "inbox_") == {}
        assert await leases.live(session, "inbox%") == {}


async def test_sweep_forgets_long_gone_nodes(database: Database) -> None:
    """Heartbeats expired longer ago than asked are deleted; recent ones and other
    leases stay."""
    assert await _acquire(database, "node:gone", "gone", -100)
    assert await _acquire(database, "node:recent", "recent", -1)
    assert await _acquire(database, "inbox:1", "gone", -100)
    async with database.transaction() as session:
        await leases.sweep(session, leases.NODE, after=30)
    async with database.read() as session:
        names = set(await session.scalars(select(NodeLease.name)))
    assert names == {"node:recent", "inbox:1"}


async def test_release_lets_another_node_in_at_once(database: Database) -> None:
    """Released leases (named, or all of a holder's) are free to another node at once;
    a holder cannot release what another holds."""
    for name in ("inbox:1", "inbox:2", "inbox:3"):
        assert await _acquire(database, name, "node-a", 30)
    async with database.transaction() as session:
        await leases.release(session, "node-b", ["inbox:1"])  # not node-b's: no effect
        await leases.release(session, "node-a", ["inbox:1"])
        await leases.release(session, "node-a", [])
    assert await _acquire(database, "inbox:1", "node-b", 30)
    assert not await _acquire(database, "inbox:2", "node-b", 30)
    async with database.transaction() as session:
        await leases.release(session, "node-a")
    assert await _acquire(database, "inbox:2", "node-b", 30)
    assert await _acquire(database, "inbox:3", "node-b", 30)


async def test_take_over_moves_a_live_lease(database: Database) -> None:
    """A user's action takes the inbox to the node they asked, live lease or not; the
    former holder's renewal no longer includes it."""
    assert await _acquire(database, "inbox:7", "node-a", 30)
    async with database.transaction() as session:
        await leases.take_over(session, "inbox:7", "node-b", 30)
        await leases.take_over(session, "inbox:8", "node-b", 30)
    assert await _renew(database, "node-a", 30) == set()
    assert await _renew(database, "node-b", 30) == {"inbox:7", "inbox:8"}


async def test_one_turn_per_interval_among_nodes(database: Database) -> None:
    """A periodic job's turn goes to one node per interval, the holder included: the
    next turn only once the interval has passed."""
    assert await _turn(database, leases.PURGE, "node-a", 0.4)
    assert not await _turn(database, leases.PURGE, "node-b", 0.4)
    assert not await _turn(database, leases.PURGE, "node-a", 0.4)
    await asyncio.sleep(0.45)
    assert await _turn(database, leases.PURGE, "node-b", 0.4)
    assert not await _turn(database, leases.PURGE, "node-a", 0.4)


async def test_my_turn_is_this_nodes(database: Database) -> None:
    """my_turn takes the turn for this process's node id, in its own transaction."""
    assert await leases.my_turn(database, "job-mine", 30)
    assert not await leases.my_turn(database, "job-mine", 30)
    async with database.read() as session:
        assert await leases.live(session, "job-mine") == {"job-mine": leases.this_node()}


async def test_concurrent_claims_have_one_winner(database: Database) -> None:
    """Eight nodes asking for the same free lease at the same moment: exactly one gets
    it (on PostgreSQL the statements really run concurrently)."""
    for round_ in range(3):
        name = f"inbox:{100 + round_}"
        won = await asyncio.gather(*(_acquire(database, name, f"node-{i}", 30)
                                     for i in range(8)))
        assert sum(won) == 1
        turns = await asyncio.gather(*(_turn(database, f"job-{round_}", f"node-{i}", 30)
                                       for i in range(8)))
        assert sum(turns) == 1


async def test_the_database_clock_is_the_one_used(database: Database) -> None:
    """Leases are dated by the database's clock (here the same machine's: close to it)."""
    async with database.read() as session:
        now = await leases.clock(session)
    assert abs(now - time.time()) < 5


def test_holding_stops_before_the_lease_could_expire() -> None:
    """A holder's leases count as its own only until ttl - margin after the start of
    its last successful renewal, never before one."""
    holding = leases.Holding(ttl=10, margin=4)
    assert not holding.still_valid()
    began = holding.renewing()
    holding.renewed(began)
    assert holding.still_valid()
    holding.renewed(began - 6.5)
    assert not holding.still_valid()


def test_names_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inbox lease names round-trip; the TTL comes from INBOXLOG_LEASE_SECONDS (at
    least a second); a node id is stable in a process."""
    assert leases.inbox_of(leases.inbox_lease(42)) == 42
    assert leases.inbox_of("inbox:x") is None and leases.inbox_of("purge") is None
    monkeypatch.delenv(leases.TTL_ENV, raising=False)
    assert leases.ttl_from_env() == leases.DEFAULT_TTL
    monkeypatch.setenv(leases.TTL_ENV, "2.5")
    assert leases.ttl_from_env() == 2.5
    monkeypatch.setenv(leases.TTL_ENV, "0")
    assert leases.ttl_from_env() == 1.0
    assert leases.this_node() == leases.this_node()
    assert leases.turn_checks(3600) == 360 and leases.turn_checks(1) == 0.2
