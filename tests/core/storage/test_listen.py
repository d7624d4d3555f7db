"""LISTEN/NOTIFY on a real PostgreSQL: an event committed by any connection wakes the
EventBus of a process listening, which reconnects when its connection is killed; the
bus's own wake-up rules (stretched poll, no wake-up lost between two waits)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from sqlalchemy import insert

from core import accounts
from core.storage.db import Database
from core.storage.listen import EVENTS_CHANNEL, asyncpg_dsn
from core.storage.models import Event
from extension_api.live import EventBus


async def _until(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _woken_within(bus: EventBus, seconds: float) -> float:
    began = time.monotonic()
    await bus.wait(seconds)
    return time.monotonic() - began


async def test_a_committed_event_wakes_a_listening_bus(pg_database: Database) -> None:
    """An events insert committed on another connection wakes the bus at once (the
    trigger notifies at commit), with the stream's poll stretched while listening."""
    bus = EventBus(listening_poll=30)
    task = bus.listen(pg_database)
    assert task is not None
    try:
        await _until(lambda: bus.listening)
        await bus.wait(0.05)  # the wake-up every (re)connection gives
        async with pg_database.transaction() as session:
            portal = (await accounts.create_portal(session, "Listen")).portal
        waiter = asyncio.create_task(_woken_within(bus, 0.5))
        await asyncio.sleep(0.1)
        assert not waiter.done()  # no event yet: still waiting past the 0.5 s asked
        await asyncio.sleep(0.5)
        assert not waiter.done()
        async with pg_database.transaction() as session:
            session.add(Event(portal_id=portal.id, type="open"))
        assert await asyncio.wait_for(waiter, 5) < 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_listener_reconnects_when_its_connection_is_killed(pg_database: Database) -> None:
    """The listening backend terminated by the server: the listener connects again and
    notifications wake the bus again; meanwhile streams poll at their own pace."""
    bus = EventBus(listening_poll=30)
    task = bus.listen(pg_database)
    assert task is not None and bus.listener is not None
    listener = bus.listener
    admin = await asyncpg.connect(asyncpg_dsn(pg_database.url))
    try:
        await _until(lambda: bus.listening)
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query LIKE 'LISTEN%'")
        assert killed == 1
        await _until(lambda: listener.connections == 2 and bus.listening)
        await bus.wait(0.05)
        waiter = asyncio.create_task(_woken_within(bus, 0.5))
        await asyncio.sleep(0.1)
        await admin.execute(f"SELECT pg_notify('{EVENTS_CHANNEL}', '')")
        assert await asyncio.wait_for(waiter, 5) < 2
    finally:
        await admin.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_trigger_names_the_portals_of_the_events(pg_database: Database) -> None:
    """One insert statement of events for two portals: one notification at commit,
    naming both portals; nothing before the commit."""
    async with pg_database.transaction() as session:
        first = (await accounts.create_portal(session, "One")).portal.id
        second = (await accounts.create_portal(session, "Two")).portal.id
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(pg_database.url))
    try:
        await conn.add_listener(EVENTS_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        async with pg_database.transaction() as session:
            await session.execute(insert(Event).values([
                {"portal_id": first, "type": "open", "detail": {}},
                {"portal_id": second, "type": "open", "detail": {}},
                {"portal_id": first, "type": "click", "detail": {}}]))
            await session.flush()
            await asyncio.sleep(0.2)
            assert heard.empty()  # not before the commit
        payload = await asyncio.wait_for(heard.get(), 5)
        assert sorted(payload.split(",")) == sorted([str(first), str(second)])
        await asyncio.sleep(0.2)
        assert heard.empty()  # one notification for the statement
    finally:
        await conn.close()


async def test_a_portal_stream_wakes_for_its_portal_only() -> None:
    """A stream waiting for portal 1 sleeps through portal 2's events and wakes at its
    own or at a wake-up for all; a stream waiting for any portal wakes at each."""
    bus = EventBus()

    async def woken(portal_id: int | None, then: list[int] | None) -> float:
        waiter = asyncio.create_task(_waited(bus, 1.0, portal_id))
        await asyncio.sleep(0.05)
        bus.notify(then)
        return await waiter

    assert await woken(1, [2]) >= 0.9
    assert await woken(1, [1, 2]) < 0.5
    assert await woken(1, None) < 0.5
    assert await woken(None, [2]) < 0.5
    bus._notified("3,4")  # from the database: coalesced, then portals 3 and 4
    assert await _waited(bus, 1.0, 4) < 0.5


async def _waited(bus: EventBus, seconds: float, portal_id: int | None) -> float:
    began = time.monotonic()
    await bus.wait(seconds, portal_id=portal_id)
    return time.monotonic() - began


async def test_a_wake_up_between_two_waits_is_not_lost() -> None:
    """A stream notified while it was reading (not waiting) returns from its next wait
    at once; without a notification it waits its time-out."""
    bus = EventBus()

    async def stream() -> list[float]:
        times = [await _woken_within(bus, 0.3)]  # nothing: the whole 0.3 s
        bus.notify()  # as if an event were committed while it read
        times.append(await _woken_within(bus, 5))
        times.append(await _woken_within(bus, 0.3))
        return times

    first, second, third = await asyncio.create_task(stream())
    assert first >= 0.29 and second < 0.1 and third >= 0.29


async def test_sqlite_keeps_the_in_process_wake_up(tmp_path: object) -> None:
    """On SQLite nothing listens: the bus is woken by its own process only."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    bus = EventBus()
    assert bus.listen(db) is None and not bus.listening
    await db.dispose()
