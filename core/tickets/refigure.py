"""Recomputing a team inbox's figures after its hours change, in small transactions.

A change of an inbox's ``time_zone`` or ``business_hours`` changes every figure of its
tickets (``core.tickets.figures``). Recomputing thousands in the transaction of the
change held SQLite's only write lock (every tenant's SMTP ingest waited) and, on
PostgreSQL, every ticket's row, for as long as that took; an admin changing the hours
again and again could stall everyone's mail. So the change only marks the inbox stale
(a ``ticket_figure_walks`` row, committed with it: ``figures.mark_stale``) and a
``Refigurer`` in each serving process walks the inbox's tickets in id order, ``BATCH``
a transaction, yielding the write lock between them, until no inbox is stale:

- the mark is durable: a walk cut short by a crash or a restart goes on from the last
  batch committed (``after_ticket_id``), in whichever process runs next;
- one process at a time walks, among all nodes and workers sharing the database (the
  ``refigure`` lease, ``core.leases``, renewed by every batch); the others wait for it
  to expire or be released;
- a ticket written meanwhile is recomputed on its own write as before, with the new
  hours; the walk redoing it again gives the same figures;
- a new change of an inbox's hours sets its walk back to its first ticket (what was
  redone used hours that are no longer the inbox's), and to the back of the queue
  (inboxes are walked in the order they were marked: an admin changing hours again
  and again delays only their own inbox);
- while an inbox is stale its reports answer with the figures as they are (old ones
  for the tickets not yet redone) and say ``recomputing`` (``recomputing``).

The process that committed a mark wakes its ``Refigurer`` at once, which walks (or, the
lease held elsewhere, asks again every third of its TTL until it is done); each looks
once when it starts (a walk cut short). On PostgreSQL each also looks every ``IDLE``
seconds, for a walk whose node died while the others were idle; on SQLite every process
is on this machine and a dead one is restarted (``serve --workers``), so an idle server
sends the database nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import leases
from core.storage.db import Database
from core.storage.models import FigureWalk, Ticket
from core.tickets import figures

log = logging.getLogger(__name__)

LEASE = "refigure"
BATCH = 200  # tickets a transaction: ~25 ms of SQLite's write lock on this machine
IDLE = 30.0  # PostgreSQL: seconds between looks for marks no commit here woke it for
BATCH_ENV = "INBOXLOG_REFIGURE_BATCH"  # tests: a smaller batch, a pause between them
PAUSE_ENV = "INBOXLOG_REFIGURE_PAUSE"


class Step(enum.Enum):
    DONE = "done"  # no inbox is stale
    MORE = "more"  # a batch was redone (or a walk finished): look again
    ELSEWHERE = "elsewhere"  # another process holds the lease


async def step(db: Database, holder: str, ttl: float, batch: int = BATCH) -> Step:
    """Redo the next ``batch`` tickets of the inbox marked longest ago, in one
    transaction of its own, if ``holder`` holds (or takes) the lease; release it once
    no inbox is stale. When none is, one read and no write (an idle server's look)."""
    async with db.read() as session:
        if await session.scalar(select(FigureWalk.team_inbox_id).limit(1)) is None:
            return Step.DONE
    async with db.transaction() as session:
        if not await leases.acquire(session, LEASE, holder, ttl):
            return Step.ELSEWHERE
        walk = await session.scalar(
            select(FigureWalk).order_by(FigureWalk.marked_at, FigureWalk.team_inbox_id)
            .limit(1).with_for_update())
        if walk is None:
            await leases.release(session, holder, [LEASE])
            return Step.DONE
        ids = list(await session.scalars(
            select(Ticket.id).where(Ticket.team_inbox_id == walk.team_inbox_id,
                                    Ticket.id > walk.after_ticket_id)
            .order_by(Ticket.id).limit(batch)))
        if not ids:
            await session.delete(walk)
            await session.flush()
            if await session.scalar(select(FigureWalk.team_inbox_id).limit(1)) is None:
                await leases.release(session, holder, [LEASE])
                return Step.DONE
            return Step.MORE
        if session.get_bind().dialect.name == "postgresql":
            # As a write of these tickets would: their logs cannot change under us.
            await session.execute(select(Ticket.id).where(Ticket.id.in_(ids))
                                  .order_by(Ticket.id).with_for_update())
        await session.run_sync(lambda sync: figures.refresh(sync.connection(), ids))
        walk.after_ticket_id = ids[-1]
        return Step.MORE


async def recomputing(session: AsyncSession, portal_id: int,
                      inboxes: Iterable[int] | None) -> bool:
    """Whether any of these team inboxes of the portal (None: any of its) is stale."""
    query = select(FigureWalk.team_inbox_id).where(FigureWalk.portal_id == portal_id)
    if inboxes is not None:
        query = query.where(FigureWalk.team_inbox_id.in_(sorted(inboxes)))
    return (await session.scalar(query.limit(1))) is not None


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    return float(text) if text else default


class Refigurer:
    """The background walk of one serving process (``start`` / ``stop``)."""

    def __init__(self, db: Database, *, batch: int | None = None,
                 pause: float | None = None, ttl: float | None = None) -> None:
        self.db = db
        self.batch = batch or max(1, int(_env_number(BATCH_ENV, BATCH)))
        self.pause = pause if pause is not None else _env_number(PAUSE_ENV, 0.0)
        self.ttl = ttl or leases.ttl_from_env()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unregister = figures.on_marked(self._wake.set)

    def start(self) -> Refigurer:
        self._task = asyncio.create_task(self._run(), name="refigure")
        return self

    async def stop(self) -> None:
        self._unregister()
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        # Another node may go on at once (the walk's mark says where).
        with contextlib.suppress(Exception):
            async with self.db.transaction() as session:
                await leases.release(session, leases.this_node(), [LEASE])

    async def _run(self) -> None:
        idle = None if self.db.is_sqlite else IDLE
        while True:
            wait = idle
            try:
                while (done := await step(self.db, leases.this_node(), self.ttl,
                                          self.batch)) is Step.MORE:
                    # Yield: the writers queued behind this batch go first.
                    await asyncio.sleep(self.pause)
                if done is Step.ELSEWHERE:
                    wait = min(IDLE, self.ttl / 3)
            except Exception:
                log.exception("recomputing stale ticket figures failed; retrying")
                wait = 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
