"""Request budgets that every process and node on one PostgreSQL database share.

``serve --workers N`` and several nodes behind a load balancer would each keep their own
in-memory budgets, multiplying every limit by the number of processes. On PostgreSQL a
budget is instead one row per (budget, caller) of an UNLOGGED table, read and moved by
one statement per request for all of a limiter's budgets at once.

A budget of ``N per T`` is kept as a GCRA (generic cell rate algorithm) bucket: the row
holds the caller's *theoretical arrival time* ``tat``. A request at ``now`` is admitted
when ``max(tat, now) - now <= T - T/N``, and then moves ``tat`` to ``max(tat, now) + T/N``:
N requests at once from rest, then one more each ``T/N``; a caller whose ``tat`` lies
in the past has a full budget, so such rows can go at any time. Admitting and moving
are one statement that locks the caller's rows, then ``INSERT ... ON CONFLICT DO UPDATE
... WHERE`` only when every budget admits: two processes never both take the last
request, and a refused request moves nothing, in none of its budgets (as the in-memory
moving window, it does not count): a burst the short budget refuses does not use up the
long one.

The table is outside the migrations (schema ``inboxlog_ephemeral``): it holds nothing
worth keeping (UNLOGGED: no WAL, emptied after a crash, which only refills budgets), it
is made at first use, under an advisory lock so that processes starting together do not
race to make it, and the models' comparison with the database never sees it. Times are
this host's clock (``time.time()``): nodes' clocks apart by a second move a budget of
``N per T`` by about ``N/T`` requests.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass

import asyncpg
from limits import RateLimitItem

from core.errors import StorageUnavailable
from core.storage import connections
from core.storage.listen import asyncpg_dsn

SCHEMA = "inboxlog_ephemeral"
TABLE = f"{SCHEMA}.rate_budgets"
_MAKE_LOCK = 0x696E626F78726174  # "inboxrat": the advisory lock of making the table
FORGET_EVERY = 600.0  # seconds between deletions of rows whose budget is full again

_MAKE = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE UNLOGGED TABLE IF NOT EXISTS {TABLE} ("
    "bucket text PRIMARY KEY, tat double precision NOT NULL)",
)
# $1 buckets, $2 their steps (T/N), $3 their slack (T - T/N), $4 now. The caller's rows
# are locked first (in bucket order: two requests of one caller never deadlock) and read
# at their newest; a request is taken from every bucket only when every bucket admits it,
# so one a short budget refuses takes nothing from the longer ones. One row out per
# bucket: whether it admits, whether it was taken, and its ``tat`` (NULL: none). The
# ``ON CONFLICT ... WHERE`` keeps checking each row under its lock: only a row that a
# concurrent first request inserts after the lock could still refuse alone.
_TAKE = f"""
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) AS w(bucket, step, slack)
), locked AS (
    SELECT b.bucket, b.tat FROM {TABLE} b WHERE b.bucket = ANY($1::text[])
    ORDER BY b.bucket FOR UPDATE
), judged AS (
    SELECT w.bucket, w.step, w.slack, l.tat,
           greatest(coalesce(l.tat, $4), $4) - $4 <= w.slack AS admits
    FROM wanted w LEFT JOIN locked l ON l.bucket = w.bucket
), taken AS (
    INSERT INTO {TABLE} AS t (bucket, tat)
    SELECT bucket, $4 + step FROM judged WHERE (SELECT bool_and(admits) FROM judged)
    ON CONFLICT (bucket) DO UPDATE SET tat = greatest(t.tat, $4) + (excluded.tat - $4)
    WHERE greatest(t.tat, $4) - $4 <= (SELECT slack FROM wanted WHERE bucket = t.bucket)
    RETURNING t.bucket
)
SELECT j.bucket, j.admits, EXISTS (SELECT 1 FROM taken WHERE taken.bucket = j.bucket)
       AS taken, j.tat
FROM judged j
"""
_FORGET = f"DELETE FROM {TABLE} WHERE tat < $1"


@dataclass(frozen=True)
class _Budget:
    bucket: str
    step: float  # seconds a request takes from the budget: T / N
    slack: float  # how far ahead of now ``tat`` may be before a request: T - T / N


class SharedBudgets:
    """The budgets of one PostgreSQL database, for this process (a connection pool made
    at first use, again after a fork)."""

    def __init__(self, url: str) -> None:
        self.dsn = asyncpg_dsn(url)
        self._pool: asyncpg.Pool | None = None
        self._pid = 0
        self._lock = asyncio.Lock()
        self._forgotten = 0.0

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        async with self._lock:
            if self._pool is None or self._pid != os.getpid():
                share = connections.current()  # this process's (made after a fork)
                pool = await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=share.budget_pool,
                    server_settings={"application_name": share.name("rate limits")})
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MAKE_LOCK)
                    for statement in _MAKE:
                        await conn.execute(statement)
                self._pool, self._pid = pool, os.getpid()
        return self._pool

    async def take(self, name: str, items: list[RateLimitItem],
                   caller: str) -> tuple[RateLimitItem, int] | None:
        """One request of ``caller`` against ``items``: None when every budget admits it,
        else the first that does not and the seconds until it would (at least 1).
        StorageUnavailable when the database cannot be reached."""
        budgets = [_budget(name, item, caller) for item in items]
        now = time.time()
        try:
            pool = await self._ready()
            async with pool.acquire() as conn:
                rows = await conn.fetch(_TAKE, [b.bucket for b in budgets],
                                        [b.step for b in budgets], [b.slack for b in budgets],
                                        now)
                if now - self._forgotten >= FORGET_EVERY:
                    self._forgotten = now
                    await conn.execute(_FORGET, now)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        found = {row["bucket"]: row for row in rows}
        if all(row["taken"] for row in rows):
            return None
        refused = [(item, budget) for item, budget in zip(items, budgets, strict=True)
                   if not found[budget.bucket]["admits"]] or [
            (item, budget) for item, budget in zip(items, budgets, strict=True)
            if not found[budget.bucket]["taken"]]  # a race with a first request
        item, budget = refused[0]
        wait = (found[budget.bucket]["tat"] or now) - now - budget.slack
        return item, max(1, math.ceil(wait))

    async def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            await self._pool.close()
        self._pool = None


def _budget(name: str, item: RateLimitItem, caller: str) -> _Budget:
    period = float(item.get_expiry())
    step = period / item.amount
    return _Budget(f"{name}/{item.amount}/{item.get_expiry()}/{caller}", step, period - step)


_BY_URL: dict[str, SharedBudgets] = {}


def for_database(url: str) -> SharedBudgets:
    """This process's budgets on the PostgreSQL database at ``url``."""
    if url not in _BY_URL:
        _BY_URL[url] = SharedBudgets(url)
    return _BY_URL[url]


async def close_all() -> None:
    """Close this process's pools (a server stopping)."""
    for budgets in _BY_URL.values():
        await budgets.close()
