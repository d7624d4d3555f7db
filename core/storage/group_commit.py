"""Group commit: concurrent writes share one transaction and one commit (and fsync).

SQLite takes one writer at a time, and with ``synchronous=FULL`` every commit waits
for the disk; on PostgreSQL every commit waits for a WAL flush. When twenty SMTP
sessions each commit their own message, each pays for a transaction of its own. Here
the first caller to find nobody writing becomes the writer for everyone queued behind
it: the pieces of work run one after the other in one transaction, then a single
COMMIT makes them durable, and only then does any caller get its result.
"Acknowledged only after the commit" holds for every one.

A piece of work that fails must roll back alone. Savepoints would give each its own,
at two statements per piece (SAVEPOINT, RELEASE) and the ORM's bookkeeping around them,
for a failure that almost never happens. So a batch first runs without them; when a
piece fails, the transaction is rolled back and the batch runs again, each piece in a
savepoint (the failing one gets its exception, the rest commit); a failure that breaks
the transaction itself (a lost connection, a full disk) then has each piece run alone.
The work is run again from scratch each time, so it must write only through the session
(and content-addressed files, which a second write leaves the same).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
T = TypeVar("T")

Work = Callable[[AsyncSession], Awaitable[T]]


@dataclass
class _Job(Generic[T]):
    work: Work[T]
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    outcome: tuple[bool, Any] | None = None  # (ok, result or exception), before the commit


class GroupCommit:
    """Runs queued work in shared transactions opened by ``transaction``.

    ``is_transient`` tells a failure that breaks the whole transaction (a lost
    connection, a full disk: every caller of the batch gets it) from one that belongs
    to a single piece of work (bad data, a refusal raised by the work itself).
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        is_transient: Callable[[BaseException], bool],
        *,
        max_batch: int = 64,
    ) -> None:
        self._transaction = transaction
        self._is_transient = is_transient
        self._max_batch = max_batch
        self._queue: deque[_Job[Any]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def run(self, work: Work[T]) -> T:
        """Run ``work`` in the next shared transaction; returns once that committed."""
        job: _Job[T] = _Job(work)
        self._queue.append(job)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        return await job.future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch: list[_Job[Any]] = []
                while self._queue and len(batch) < self._max_batch:
                    job = self._queue.popleft()
                    if not job.future.done():  # its caller has gone: nothing to write
                        batch.append(job)
                if batch:
                    await self._commit(batch)
        finally:
            # Only when the writer itself was stopped (shutdown): nobody is left waiting.
            while self._queue:
                self._queue.popleft().future.cancel()

    async def _commit(self, batch: list[_Job[Any]], *, savepoints: bool = False) -> None:
        try:
            await self._run_batch(batch, savepoints)
        except Exception as exc:
            if len(batch) > 1 and not savepoints and not self._is_transient(exc):
                # One piece of work failed: again, each in a savepoint of its own.
                await self._commit(batch, savepoints=True)
                return
            if len(batch) > 1:
                # One piece of work may have broken the transaction for all (a blob
                # file it could not write): each alone now, so only that one fails.
                log.warning("group commit of %d failed (%s); committing each alone",
                            len(batch), exc)
                for job in batch:
                    await self._commit([job])
                return
            _fail(batch, exc)
        except BaseException as exc:
            _fail(batch, exc)
            raise  # cancellation or exit: the callers were told, now stop

    async def _run_batch(self, batch: list[_Job[Any]], savepoints: bool) -> None:
        async with self._transaction() as session:
            for job in batch:
                job.outcome = (await self._run_one(session, job) if savepoints
                               else (True, await job.work(session)))
                # Statements run on the loop thread: let SMTP sessions and HTTP
                # requests in between two messages of a batch.
                await asyncio.sleep(0)
        for job in batch:
            if job.future.done():
                continue
            assert job.outcome is not None  # every job ran before the commit
            ok, value = job.outcome
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    async def _run_one(self, session: AsyncSession, job: _Job[Any]) -> tuple[bool, Any]:
        try:
            async with session.begin_nested():
                return True, await job.work(session)
        except Exception as exc:
            if self._is_transient(exc):
                raise  # the transaction is gone for everyone in the batch
            return False, exc


def _fail(batch: list[_Job[Any]], exc: BaseException) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(exc)
