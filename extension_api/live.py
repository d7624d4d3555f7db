"""Live parts of the HTTP adapter: the batching hit recorder and the event wake-up bus
(woken across processes on PostgreSQL).

The pixel and click endpoints must answer fast and never lose a hit: they hand hits
to ``HitRecorder``, which writes them in batches (one transaction per batch, classified
in core) and flushes what is left when the server stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from core import tracked_sends
from core.errors import StorageUnavailable
from core.metrics import TRACKING_HITS_DROPPED
from core.storage.db import Database
from core.storage.listen import EVENTS_CHANNEL, Listener
from core.storage.models import Event
from core.tracking import Hit
from extension_api.schemas import to_json
from extension_api.schemas.tracking import event_of

log = logging.getLogger(__name__)

MAX_SET_ASIDE = 10_000
# Hits waiting to be recorded: in all (every sender's), and while the database is away
# per tracked send (one URL replayed in a loop says nothing more after this many; with
# the database there, every hit is recorded, however many arrive between two flushes).
MAX_PENDING_PER_SEND = 1_000
MAX_PENDING = 200_000


async def event_stream(read: Callable[[int], Awaitable[Sequence[Event]]], bus: EventBus,
                       after: int, *, poll: float,
                       portal_id: int) -> AsyncIterator[dict[str, str]]:
    """Server-sent events of ``read(after)`` (the events past an id, in order), each
    once, then more as they are committed: between reads that found nothing it waits on
    ``bus`` for ``portal_id``'s events, at most ``poll`` seconds. A database that is
    down reads as no events: the stream stays open and tries again."""
    while True:
        try:
            items = await read(after)
        except StorageUnavailable:
            items = []
        for event in items:
            after = event.id
            yield {"id": str(event.id), "event": event.type,
                   "data": json.dumps(to_json(event_of(event)))}
        if not items:
            await bus.wait(poll, portal_id=portal_id)
        else:
            await asyncio.sleep(0)  # a long backlog must not starve the loop


class EventBus:
    """Wakes event streams when new events were committed: in this process (``notify``),
    and on PostgreSQL in any process sharing the database, through one LISTEN
    connection (``listen``: migration 0014's trigger notifies each commit of events
    with the portals they belong to).

    A stream that says its portal (``wait(..., portal_id=)``) is woken only by its
    portal's events (or a wake-up for all); one that does not, by any. While the LISTEN
    connection is up, a stream's poll (its ``wait`` time-out) stretches to
    ``listening_poll``: every insert wakes it anyway, the poll only backs that up. A
    stream woken while it was not waiting (reading what the previous wake-up announced)
    returns from its next ``wait`` at once instead of sleeping on.
    """

    def __init__(self, *, listening_poll: float = 5.0, coalesce: float = 0.05) -> None:
        self._any = asyncio.Event()  # set by every notification
        self._any_generation = 0
        self._all_generation = 0  # notifications for every portal
        self._portal_generation: dict[int, int] = {}
        self._by_portal: dict[int, asyncio.Event] = {}  # portals someone waits for
        # What each waiting task (a stream is one task) last returned at.
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[Any], tuple[object, ...]] = (
            weakref.WeakKeyDictionary())
        self.listening_poll = listening_poll
        self.coalesce = coalesce  # notifications this close together wake streams once
        self.listener: Listener | None = None
        self._soon: asyncio.TimerHandle | None = None
        self._soon_all = False
        self._soon_portals: set[int] = set()

    @property
    def listening(self) -> bool:
        return self.listener is not None and self.listener.connected

    def notify(self, portals: Iterable[int] | None = None) -> None:
        """Wake the streams of ``portals`` (None: every stream)."""
        self._any_generation += 1
        self._any.set()
        self._any = asyncio.Event()
        if portals is None:
            self._all_generation += 1
            targets: Iterable[int] = list(self._by_portal)
        else:
            targets = set(portals)
            for portal_id in targets:
                self._portal_generation[portal_id] = (
                    self._portal_generation.get(portal_id, 0) + 1)
        for portal_id in targets:
            waiting = self._by_portal.pop(portal_id, None)
            if waiting is not None:
                waiting.set()

    def _notified(self, payload: str) -> None:
        """A notification from the database (the portals of the events committed, comma
        separated; empty: maybe any): wake their streams once per burst."""
        portals = [int(p) for p in payload.split(",") if p.strip().isdigit()]
        if portals:
            self._soon_portals.update(portals)
        else:
            self._soon_all = True
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_later(self.coalesce, self._fire)

    def _fire(self) -> None:
        every, portals = self._soon_all, self._soon_portals
        self._soon, self._soon_all, self._soon_portals = None, False, set()
        self.notify(None if every else portals)

    def _mark(self, portal_id: int | None) -> tuple[object, ...]:
        if portal_id is None:
            return (None, self._any_generation)
        return (portal_id, self._all_generation, self._portal_generation.get(portal_id, 0))

    async def wait(self, timeout: float, *, portal_id: int | None = None) -> None:
        """Return when notified (for ``portal_id``, or for any portal when None), or
        after ``timeout`` (``listening_poll`` while the LISTEN connection is up):
        streams poll too, as a back-up."""
        task = asyncio.current_task()
        seen = self._seen.get(task) if task is not None else None
        if seen is None or seen[0] != portal_id or seen == self._mark(portal_id):
            changed = (self._any if portal_id is None
                       else self._by_portal.setdefault(portal_id, asyncio.Event()))
            if self.listening:
                timeout = max(timeout, self.listening_poll)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        if task is not None:
            self._seen[task] = self._mark(portal_id)

    def listen(self, db: Database) -> asyncio.Task[None] | None:
        """On PostgreSQL, start listening for events committed by any process (the
        caller cancels the task when it stops); on SQLite None: its one process wakes
        its own streams."""
        if db.is_sqlite or self.listener is not None:
            return None
        self.listener = Listener(db.url, EVENTS_CHANNEL, self._notified)
        return asyncio.create_task(self.listener.run_forever(), name="events-listener")


class HitRecorder:
    def __init__(self, db: Database, *, interval: float = 0.2, batch: int = 2000,
                 on_recorded: Callable[[], None] | None = None,
                 link_days: int | None = None) -> None:
        self._db = db
        self._link_days = link_days
        self._interval = interval
        self._batch = batch
        self._pending: list[tuple[str, Hit]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_recorded = on_recorded
        self._stopping = False
        self.recorded = 0
        # Hits that failed to record on their own, kept (bounded) for a look, never retried.
        self.set_aside: list[tuple[str, Hit]] = []
        self._pending_by_send: Counter[str] = Counter()
        self.dropped = 0  # hits over the pending caps: answered, never recorded
        self.backlogged = False  # the last flush found the database away

    def add(self, send_token: str, hit: Hit) -> None:
        """Queue a hit; one over ``MAX_PENDING`` in all, or while the database is away
        over ``MAX_PENDING_PER_SEND`` of its send (a URL replayed in a loop), is
        dropped and counted instead: memory stays bounded, and one send's flood never
        crowds out the other sends' hits."""
        if len(self._pending) >= MAX_PENDING or (
                self.backlogged and self._pending_by_send[send_token] >= MAX_PENDING_PER_SEND):
            self.dropped += 1
            TRACKING_HITS_DROPPED.labels(hit.kind.value).inc()
            return
        self._pending.append((send_token, hit))
        self._pending_by_send[send_token] += 1
        if len(self._pending) >= self._batch:
            self._wake.set()

    def _done(self, hits: list[tuple[str, Hit]]) -> None:
        """``hits`` are no longer pending (recorded, or set aside)."""
        for send_token, _ in hits:
            left = self._pending_by_send[send_token] - 1
            if left > 0:
                self._pending_by_send[send_token] = left
            else:
                del self._pending_by_send[send_token]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hit-recorder")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the recorder task die: hits would pile up
                log.exception("the tracking-hit recorder failed; it goes on")

    async def flush(self) -> bool:
        """Write what is pending; on a database failure keep it for the next try.

        A batch that fails for any other reason (a bug, a hit the database will not
        take) is retried one tracked send at a time: the sends that still fail are set
        aside in :attr:`set_aside` and logged, and the others are recorded. Nothing
        but a cancellation ever stops the recorder.
        """
        while self._pending:
            batch, self._pending = self._pending[: self._batch], self._pending[self._batch:]
            try:
                await self._record(batch)
            except StorageUnavailable:
                self._pending[:0] = batch
                self.backlogged = True
                log.warning("could not record %d tracking hits yet", len(batch))
                return False
            except Exception:
                log.exception("a batch of %d tracking hits failed; recording it send by send",
                              len(batch))
                if not await self._record_apart(batch):
                    return False
            except BaseException:
                self._pending[:0] = batch  # cancelled mid-write: nothing was committed
                raise
        self.backlogged = False
        return True

    async def _record(self, batch: list[tuple[str, Hit]]) -> None:
        async with self._db.transaction() as session:
            await tracked_sends.record_hits(session, batch, link_days=self._link_days)
        self._done(batch)
        self.recorded += len(batch)
        if self._on_recorded is not None:
            self._on_recorded()

    async def _record_apart(self, batch: list[tuple[str, Hit]]) -> bool:
        """Record a failed batch one send at a time, setting aside the sends that fail."""
        by_send: dict[str, list[tuple[str, Hit]]] = {}
        for item in batch:
            by_send.setdefault(item[0], []).append(item)
        groups = list(by_send.values())
        for index, group in enumerate(groups):
            try:
                await self._record(group)
            except StorageUnavailable:
                # The database went away meanwhile: the rest is retried as usual.
                self._pending[:0] = [item for rest in groups[index:] for item in rest]
                return False
            except Exception:
                log.exception("setting aside %d tracking hits of one send that cannot be "
                              "recorded", len(group))
                self._done(group)
                self.set_aside.extend(group)
                del self.set_aside[: max(0, len(self.set_aside) - MAX_SET_ASIDE)]
            except BaseException:
                self._pending[:0] = [item for rest in groups[index:] for item in rest]
                raise
        return True

    async def stop(self, attempts: int = 20) -> None:
        """Stop the loop and flush everything left, retrying a while if the database is
        down: a clean shutdown loses no hit that got its response."""
        # Never cancel a flush in the middle: let the loop finish its batch and exit.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _ in range(attempts):
            if await self.flush():
                return
            await asyncio.sleep(0.5)
        log.error("shutting down with %d tracking hits unrecorded", len(self._pending))
