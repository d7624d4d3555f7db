"""core.storage.statements on both backends: what its statements return (the types'
processors applied, Python-side defaults filled in, IN lists of any length), that they
run in the session's transaction, and that errors come out as before: a unique-key
race as IntegrityError (retried by Database.run), a dead database as
StorageUnavailable, a kept connection that died replaced at the next read."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import StorageUnavailable
from core.storage import statements
from core.storage.db import Database, sqlite_url
from core.storage.models import Event, Portal, Thread, ThreadRef
from core.storage.statements import (
    AsyncpgRunner,
    Insert,
    SqliteRunner,
    Statement,
)
from tests.support import postgres

_EVENTS, _REFS, _PORTALS = Event.__table__.c, ThreadRef.__table__.c, Portal.__table__.c
_EVENT = Statement(lambda: select(_EVENTS.type, _EVENTS.at, _EVENTS.machine, _EVENTS.detail)
                   .where(_EVENTS.id == bindparam("id")))
_REFS_IN = Statement(lambda ids: select(_REFS.message_id).where(
    _REFS.portal_id == bindparam("portal_id"), _REFS.message_id.in_(ids))
    .order_by(_REFS.message_id), lists=("ids",))
_PORTAL_BY_TOKEN = Statement(lambda: select(_PORTALS.id).where(
    _PORTALS.bcc_token == bindparam("token")).limit(1))


async def _portal(database: Database, token: str = "tok") -> int:
    async with database.transaction() as session:
        portal = Portal(name="p", bcc_token=token, never_log=[])
        session.add(portal)
        await session.flush()
        return portal.id


async def test_ingest_runs_on_the_driver(database: Database) -> None:
    async def work(session: AsyncSession) -> type:
        return type(await statements.of_session(session))

    assert await database.run(work) is (SqliteRunner if database.is_sqlite else AsyncpgRunner)


async def test_rows_ids_defaults_and_types(database: Database) -> None:
    portal_id = await _portal(database)
    threads, events = Insert(Thread.__table__, returning="id"), Insert(Event.__table__)

    async def work(session: AsyncSession) -> tuple[int, int]:
        run = await statements.of_session(session)
        thread_id = await run.insert_id(threads, {"portal_id": portal_id, "subject": "s"})
        second = await run.insert_id(threads, {"portal_id": portal_id, "subject": "t"})
        # Several rows: one statement. ``at`` and ``machine`` are the models' defaults.
        await run.insert(events, [{"portal_id": portal_id, "type": "logged",
                                   "detail": {"n": n, "word": "ü"}} for n in range(3)])
        await run.insert(Insert(ThreadRef.__table__), [
            {"portal_id": portal_id, "message_id": f"<{n}@x>", "thread_id": thread_id}
            for n in range(5)])
        return thread_id, second

    thread_id, second = await database.run(work)
    assert second == thread_id + 1
    async with database.read() as session:
        ids = list(await session.scalars(select(Event.id).order_by(Event.id)))
        subjects = list(await session.scalars(select(Thread.subject).order_by(Thread.id)))
    assert subjects == ["s", "t"] and len(ids) == 3

    async def read(session: AsyncSession
                   ) -> tuple[tuple[Any, ...] | None, list[list[tuple[Any, ...]]],
                              tuple[Any, ...] | None]:
        run = await statements.of_session(session)
        event = await run.first(_EVENT, id=ids[2])
        # 1, 3 and 5 values: IN lists padded to 1, 4 and 8 parameters.
        found = [await run.rows(_REFS_IN, portal_id=portal_id, ids=wanted)
                 for wanted in (["<4@x>"], ["<0@x>", "<9@x>", "<2@x>"],
                                [f"<{n}@x>" for n in range(3, 8)])]
        missing = await run.first(_EVENT, id=-1)
        return event, found, missing

    event, found, missing = await database.run(read)
    assert event is not None and missing is None
    kind, at, machine, detail = event
    assert (kind, machine, detail) == ("logged", False, {"n": 2, "word": "ü"})
    assert isinstance(at, datetime)
    assert found == [[("<4@x>",)], [("<0@x>",), ("<2@x>",)], [("<3@x>",), ("<4@x>",)]]


async def test_statements_share_the_sessions_transaction(database: Database) -> None:
    portal_id = await _portal(database)

    class Refused(Exception):
        pass

    async def work(session: AsyncSession) -> None:
        run = await statements.of_session(session)
        await run.insert_id(Insert(Thread.__table__, returning="id"),
                            {"portal_id": portal_id, "subject": "gone"})
        # The ORM's pending rows are flushed before a statement of the runner reads.
        session.add(Thread(portal_id=portal_id, subject="orm"))
        await statements.of_session(session)
        raise Refused

    with pytest.raises(Refused):
        await database.run(work)
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Thread)) == 0


async def test_a_unique_key_race_is_an_integrity_error(database: Database) -> None:
    portal_id = await _portal(database)
    portals = Insert(Portal.__table__, returning="id")

    async def work(session: AsyncSession) -> int:
        run = await statements.of_session(session)
        return await run.insert_id(portals, {"name": "again", "bcc_token": "tok",
                                             "never_log": []})

    with pytest.raises(IntegrityError):
        await database.run(work, attempts=2)
    async with database.read() as session:
        assert list(await session.scalars(select(Portal.id))) == [portal_id]


async def test_lookup_reads_fresh_and_outlives_a_lost_connection(database: Database) -> None:
    portal_id = await _portal(database, "first")
    async with database.lookup() as reader:
        assert await reader.first(_PORTAL_BY_TOKEN, token="first") == (portal_id,)
    async with database.transaction() as session:
        portal = await session.get(Portal, portal_id)
        assert portal is not None
        portal.bcc_token = "second"
    async with database.lookup() as reader:  # no cache: the change shows at once
        assert await reader.first(_PORTAL_BY_TOKEN, token="first") is None
        assert await reader.first(_PORTAL_BY_TOKEN, token="second") == (portal_id,)
    if database.is_sqlite:
        return
    # PostgreSQL restarted under the kept connection: the next read takes a new one.
    await postgres.set_available(database.url, False)
    await postgres.set_available(database.url, True)
    async with database.lookup() as reader:
        assert await reader.first(_PORTAL_BY_TOKEN, token="second") == (portal_id,)


async def test_a_dead_database_is_storage_unavailable(database: Database, tmp_path: Path) -> None:
    portal_id = await _portal(database)
    if database.is_sqlite:
        # A database file that is not one: every statement fails.
        broken = Database(sqlite_url(tmp_path / "not-a-database.sqlite3"))
        (tmp_path / "not-a-database.sqlite3").write_bytes(b"x" * 4096)
        try:
            with pytest.raises(StorageUnavailable):
                async with broken.lookup() as reader:
                    await reader.first(_PORTAL_BY_TOKEN, token="tok")
        finally:
            await broken.dispose()
        return
    async with database.lookup() as reader:
        assert await reader.first(_PORTAL_BY_TOKEN, token="tok") == (portal_id,)
    await postgres.set_available(database.url, False)
    try:
        with pytest.raises(StorageUnavailable):
            async with database.lookup() as reader:
                await reader.first(_PORTAL_BY_TOKEN, token="tok")

        async def work(session: AsyncSession) -> object:
            run = await statements.of_session(session)
            return await run.first(_PORTAL_BY_TOKEN, token="tok")

        with pytest.raises(StorageUnavailable):
            await database.run(work)
    finally:
        await postgres.set_available(database.url, True)


async def test_statements_are_counted(database: Database) -> None:
    await _portal(database)
    engine = "lookup" if database.is_sqlite else "main"

    def counted() -> float:
        return float(statements.STATEMENTS.labels(engine)._value.get())

    before = counted()
    async with database.lookup() as reader:
        await reader.first(_PORTAL_BY_TOKEN, token="tok")
        await reader.first(_PORTAL_BY_TOKEN, token="other")
    assert counted() - before == 2
