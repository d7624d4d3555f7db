"""Group commit on SQLite: concurrent Database.run calls share a transaction, each in
its own savepoint, and nobody hears back before the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput, StorageUnavailable
from core.storage.db import Database, migrate, sqlite_url
from core.storage.models import Portal


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path / "group.sqlite3"))
    await migrate(database)
    yield database
    await database.dispose()


async def _count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Portal)) or 0)


def _add_portal(name: str, *, fail: bool = False) -> Callable[[AsyncSession], Awaitable[int]]:
    async def work(session: AsyncSession) -> int:
        portal = Portal(name=name, bcc_token=f"tok-{name}", never_log=[])
        session.add(portal)
        await session.flush()
        await asyncio.sleep(0)  # let the other callers queue up behind this one
        if fail:
            raise InvalidInput(f"{name} refused")
        return portal.id

    return work


async def test_concurrent_runs_share_commits_and_a_failure_stays_its_own(db: Database) -> None:
    commits = 0

    from sqlalchemy import event

    @event.listens_for(db._ingest_engine.sync_engine, "commit")
    def _counted(_conn) -> None:  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1

    results = await asyncio.gather(
        *(db.run(_add_portal(f"p{n}", fail=n == 7)) for n in range(30)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], InvalidInput)
    assert "p7 refused" in str(failures[0])
    assert len({r for r in results if isinstance(r, int)}) == 29
    assert await _count(db) == 29  # the refused one's rows were rolled back alone
    assert commits < 30  # 30 callers, fewer transactions


async def test_nobody_hears_back_before_the_commit(db: Database) -> None:
    """A caller that gets its result can read its rows from another connection."""
    async def check(name: str) -> None:
        portal_id = await db.run(_add_portal(name))
        async with db.read() as session:
            assert await session.get(Portal, portal_id) is not None

    await asyncio.gather(*(check(f"c{n}") for n in range(20)))


async def test_a_failed_commit_fails_every_caller_of_the_batch(db: Database) -> None:
    from sqlalchemy import event

    @event.listens_for(db._ingest_engine.sync_engine, "commit")
    def _disk_full(_conn) -> None:  # type: ignore[no-untyped-def]
        raise OSError("No space left on device")

    results = await asyncio.gather(*(db.run(_add_portal(f"f{n}")) for n in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    event.remove(db._ingest_engine.sync_engine, "commit", _disk_full)
    assert await _count(db) == 0
    assert isinstance(await db.run(_add_portal("after")), int)  # and writing goes on
    assert await _count(db) == 1


async def test_a_caller_that_went_away_is_not_written(db: Database) -> None:
    blocker = asyncio.Event()

    async def slow(session: AsyncSession) -> None:
        await blocker.wait()

    first = asyncio.create_task(db.run(slow))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(db.run(_add_portal("gone")))
    await asyncio.sleep(0.01)
    gone.cancel()
    blocker.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await db.run(_add_portal("kept")) > 0
    assert await _count(db) == 1


async def test_one_job_breaking_the_transaction_fails_alone(db: Database) -> None:
    """A failure that ends the shared transaction (here an OSError, as from a blob file
    that cannot be written) is retried job by job: only its own caller gets 451-worthy
    StorageUnavailable, the others are committed."""
    def add(name: str, *, broken: bool = False) -> Callable[[AsyncSession], Awaitable[int]]:
        async def work(session: AsyncSession) -> int:
            portal_id = await _add_portal(name)(session)
            if broken:
                raise OSError("No space left on device")
            return portal_id
        return work

    results = await asyncio.gather(*(db.run(add(f"b{n}", broken=n == 4)) for n in range(12)),
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], StorageUnavailable), results
    assert await _count(db) == 11


async def test_a_stopped_writer_leaves_nobody_waiting(db: Database) -> None:
    """At shutdown the writer task is cancelled: its callers and those queued behind
    it are told (cancelled), none waits for ever."""
    started = asyncio.Event()

    async def slow(session: AsyncSession) -> None:
        started.set()
        await asyncio.sleep(30)

    first = asyncio.create_task(db.run(slow))
    await started.wait()
    queued = asyncio.create_task(db.run(_add_portal("queued")))
    await asyncio.sleep(0.01)
    writer = db._group_commit._writer  # type: ignore[union-attr]
    assert writer is not None
    writer.cancel()
    done, pending = await asyncio.wait([first, queued], timeout=5)
    assert not pending
    assert all(task.cancelled() for task in done)
    assert isinstance(await db.run(_add_portal("later")), int)  # a new writer starts
