"""Which inboxes each node syncs (inbox_sync.schedule.InboxLeases) on a real database:
fair shares among live nodes, a node joining later, leases lost or given up, a node
that cannot renew stopping its workers; workers are recorded, not run (no IMAP here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core import accounts, inboxes, leases
from core.credentials import CredentialBox
from core.errors import StorageUnavailable
from core.inboxes import Endpoint
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.types import InboxStatus
from inbox_sync.schedule import InboxLeases


class Node:
    """An InboxLeases whose workers are a set of inbox ids."""

    def __init__(self, runtime: Runtime, name: str, ttl: float = 30) -> None:
        self.running: set[int] = set()
        self.leases = InboxLeases(runtime, ttl=ttl, start=self.running.add,
                                  stop=self._stop, node=name)

    async def _stop(self, inbox_id: int) -> None:
        self.running.discard(inbox_id)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    running = Runtime(Settings(data_dir=tmp_path, secret_key="k"))
    await migrate(running.db)
    yield running
    await running.close()


async def _inboxes(runtime: Runtime, count: int) -> list[int]:
    ids = []
    async with runtime.db.transaction() as session:
        portal = (await accounts.create_portal(session, "p")).portal
        for index in range(count):
            address = f"rep{index}@ourco.example"
            user = (await accounts.add_user(session, portal.id, address)).user
            inbox = await inboxes.save_inbox(
                session, portal.id, user.id, address, address,
                Endpoint("127.0.0.1", 993, "none"), Endpoint("127.0.0.1", 465, "none"),
                CredentialBox("k").encrypt("pw"), 30)
            ids.append(inbox.id)
    return ids


async def test_nodes_share_the_inboxes_and_a_late_node_gets_its_part(runtime: Runtime) -> None:
    """Alone, a node syncs every inbox; a second node joins: the first gives up the
    excess, the second takes it; never one inbox on both."""
    ids = await _inboxes(runtime, 5)
    a, b = Node(runtime, "node-a"), Node(runtime, "node-b")
    await a.leases.tick()
    assert a.running == set(ids)
    await b.leases.tick()  # all held: nothing for it yet
    assert b.running == set()
    await a.leases.tick()  # two nodes live: its share is 3
    await b.leases.tick()
    assert len(a.running) == 3 and len(b.running) == 2
    assert a.running.isdisjoint(b.running) and a.running | b.running == set(ids)
    for _ in range(2):  # stable: nothing moves once shared
        await a.leases.tick()
        await b.leases.tick()
    assert len(a.running) == 3 and len(b.running) == 2


async def test_a_disconnected_inbox_is_given_up(runtime: Runtime) -> None:
    """An inbox disconnected (on any node) stops its worker and frees its lease at
    the holder's next look."""
    first, second = await _inboxes(runtime, 2)
    a = Node(runtime, "node-a")
    await a.leases.tick()
    async with runtime.db.transaction() as session:
        await inboxes.set_status(session, first, InboxStatus.DISCONNECTED, "by the user")
    await a.leases.tick()
    assert a.running == {second}
    async with runtime.db.read() as session:
        assert set(await leases.live(session, leases.INBOX)) == {f"inbox:{second}"}


async def test_a_lease_taken_over_stops_the_former_holder(runtime: Runtime) -> None:
    """A user's action on node B takes the inbox there; A stops its worker at its next
    renewal and does not take it back."""
    [inbox_id] = await _inboxes(runtime, 1)
    a, b = Node(runtime, "node-a"), Node(runtime, "node-b")
    await a.leases.tick()
    await b.leases.claim(inbox_id)
    b.leases.held.add(inbox_id)
    await a.leases.tick()
    assert a.running == set() and a.leases.held == set()
    await b.leases.tick()
    async with runtime.db.read() as session:
        assert await leases.live(session, leases.INBOX) == {f"inbox:{inbox_id}": "node-b"}


async def test_a_dead_nodes_inboxes_are_taken_after_expiry(runtime: Runtime) -> None:
    """Node A's leases expire (it stopped renewing: as if killed); B takes them at its
    next look, and A's heartbeat no longer counts toward the shares."""
    ids = await _inboxes(runtime, 3)
    a = Node(runtime, "node-a", ttl=30)
    await a.leases.tick()
    b = Node(runtime, "node-b")
    await b.leases.tick()
    assert b.running == set()
    async with runtime.db.transaction() as session:  # A's renewals stop; time passes
        await leases.renew(session, "node-a", -1)
    await b.leases.tick()
    assert b.running == set(ids)


async def test_a_node_that_cannot_renew_stops_before_its_leases_expire(
        runtime: Runtime) -> None:
    """Renewals failing (the database down) or hanging: a node keeps its workers only
    until ttl/3 before its last renewal could expire, then stops them all."""
    ids = await _inboxes(runtime, 2)
    a = Node(runtime, "node-a", ttl=3)
    await a.leases.tick()
    assert a.running == set(ids)

    async def down() -> set[str]:
        raise StorageUnavailable("database unavailable: OSError")

    async def hangs() -> set[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    a.leases._renew = down  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        await a.leases.tick()
    await a.leases._stop_all_if_unsure()
    assert a.running == set(ids)  # renewed a moment ago: still surely its own
    a.leases._renew = hangs  # type: ignore[method-assign]
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await a.leases.tick()
    assert time.monotonic() - began < 2  # given up after ttl/3
    a.leases.holding.renewed(a.leases.holding.renewed_at - 1.5)  # 2.5 s since: < 1/3 left
    await a.leases._stop_all_if_unsure()
    assert a.running == set() and a.leases.held == set()
