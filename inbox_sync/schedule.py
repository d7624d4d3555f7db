"""Which connected inboxes this node syncs, when several nodes (or ``--workers``
processes) share one database: those whose lease it holds (``core.leases``).

Every ``ttl / 3`` seconds the node renews its leases in one statement, which also
tells it which it lost (taken over by a user's action on another node, or expired
while it could not reach the database): their workers stop. It then takes free inboxes
(never held, released, or expired because their node died) up to its fair share, the
inboxes to sync divided by the live nodes (each renews a ``node:<id>`` lease too), and
gives up the ones over its share, or no longer to sync (disconnected), so that nodes
joining later get their part. A node that cannot renew stops every worker before its
leases could expire: by then another node may hold them. A clean stop releases them
all, so another node takes over at once; a killed node's are taken over once they
expire, within ``ttl`` plus a renewal period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from core import leases
from core.runtime import Runtime
from core.storage.models import Inbox
from core.types import InboxStatus

log = logging.getLogger(__name__)


class InboxLeases:
    """Keeps the leases of the inboxes this node syncs; ``start(inbox_id)`` and
    ``stop(inbox_id)`` start and stop their workers (the service's)."""

    def __init__(self, runtime: Runtime, *, ttl: float, start: Callable[[int], None],
                 stop: Callable[[int], Awaitable[None]], node: str | None = None) -> None:
        self.runtime = runtime
        self.node = node or leases.this_node()
        self.ttl = ttl
        self.every = ttl / 3
        self.holding = leases.Holding(ttl, margin=self.every)
        self.held: set[int] = set()
        self._start, self._stop = start, stop
        self._wake = asyncio.Event()
        # A claim and a tick never interleave: a tick would take the claimed inbox,
        # missing from the renewal it made just before, for lost.
        self._lock = asyncio.Lock()

    def holds(self, inbox_id: int) -> bool:
        return inbox_id in self.held and self.holding.still_valid()

    async def claim(self, inbox_id: int) -> None:
        """A user's action on this node (new credentials, a sync after a disconnect):
        this node takes the inbox, from whichever node held it."""
        async with self._lock:
            began = self.holding.renewing()
            async with self.runtime.db.transaction() as session:
                await leases.take_over(session, leases.inbox_lease(inbox_id), self.node,
                                       self.ttl)
            if not self.held:
                self.holding.renewed(began)
            self.held.add(inbox_id)

    def wake(self) -> None:
        """Look again now (an inbox was connected, disconnected)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("inbox leases: renewal failed; retrying in %.1f s", self.every,
                            exc_info=True)
                await self._stop_all_if_unsure()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every)

    async def _stop_all_if_unsure(self) -> None:
        if self.held and not self.holding.still_valid():
            log.warning("inbox leases: not renewed in time; stopping %d inbox workers",
                        len(self.held))
            for inbox_id in sorted(self.held):
                await self._stop(inbox_id)
            self.held.clear()

    async def tick(self) -> None:
        """Renew, stop what was lost, give up what is over the share, take free ones."""
        async with self._lock:
            await self._tick()

    async def _renew(self) -> set[str]:
        async with self.runtime.db.transaction() as session:
            if not await leases.acquire(session, leases.NODE + self.node, self.node, self.ttl):
                raise AssertionError("a node's own heartbeat is never held by another")
            renewed = await leases.renew(session, self.node, self.ttl)
            await leases.sweep(session, leases.NODE, after=self.ttl)
        return renewed

    async def _tick(self) -> None:
        began = self.holding.renewing()
        # A database that hangs is a renewal that failed: the workers must not go on
        # past the leases' expiry waiting for it.
        renewed = await asyncio.wait_for(self._renew(), self.every)
        self.holding.renewed(began)
        kept = {i for i in map(leases.inbox_of, renewed) if i is not None}
        for inbox_id in sorted(self.held - kept):
            log.info("inbox %d: its lease went to another node; stopping here", inbox_id)
            await self._stop(inbox_id)
        self.held = kept
        async with self.runtime.db.read() as session:
            wanted = set(await session.scalars(
                select(Inbox.id).where(Inbox.status != InboxStatus.DISCONNECTED)))
            others = {i for name, holder in (await leases.live(session, leases.INBOX)).items()
                      if holder != self.node and (i := leases.inbox_of(name)) is not None}
            nodes = len(await leases.live(session, leases.NODE))
        share = math.ceil(len(wanted) / max(1, nodes))
        unwanted = self.held - wanted
        over = sorted(self.held & wanted, reverse=True)[:max(0, len(self.held & wanted) - share)]
        if unwanted or over:
            await self._give_up(unwanted | set(over))
        free = sorted(wanted - self.held - others)
        room = share - len(self.held)
        if free and room > 0:
            await self._take(free[:room])

    async def _give_up(self, inbox_ids: set[int]) -> None:
        for inbox_id in sorted(inbox_ids):
            await self._stop(inbox_id)
        async with self.runtime.db.transaction() as session:
            await leases.release(session, self.node,
                                 [leases.inbox_lease(i) for i in inbox_ids])
        self.held -= inbox_ids
        log.info("inbox leases: gave up %s", sorted(inbox_ids))

    async def _take(self, candidates: list[int]) -> None:
        taken: list[int] = []
        async with self.runtime.db.transaction() as session:
            for inbox_id in candidates:
                if await leases.acquire(session, leases.inbox_lease(inbox_id), self.node,
                                        self.ttl):
                    taken.append(inbox_id)
        for inbox_id in taken:
            self.held.add(inbox_id)
            self._start(inbox_id)
        if taken:
            log.info("inbox leases: now syncing %s", taken)

    async def release_all(self) -> None:
        """At a clean stop (workers already stopped): another node may take every inbox
        at once. Best effort: the leases expire anyway."""
        self.held.clear()
        try:
            async with self.runtime.db.transaction() as session:
                await leases.release(session, self.node)
        except Exception:
            log.warning("inbox leases: could not release them; they expire in %.0f s",
                        self.ttl, exc_info=True)
