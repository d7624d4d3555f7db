"""How many PostgreSQL connections one process may hold, and the names they carry.

A PostgreSQL server takes ``max_connections`` clients in all (a few of them kept for
superusers); past that, a new connection fails with "too many clients", which the
ingest path turns into ``451`` and the API into failed calls. ``serve --db-connections N``
is a node's budget: ``share_of`` splits it over ``--workers``, and each process sizes
its pools from its ``Share`` (``use`` sets it before the pools are made):

- the engine's pool (``core.storage.db``: reads, writes, group commits, and the one
  connection kept for the RCPT look-ups), its overflow included;
- the rate-limit budgets' asyncpg pool (``core.shared_budgets``);
- ``LISTENERS`` LISTEN connections (``core.storage.listen``: the event streams' and the
  webhook sender's), one each.

Every connection carries an ``application_name`` naming its process and pool ("inboxlog
serve worker 1 engine"), so ``pg_stat_activity`` tells which of them hold what.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The LISTEN connections of one serve process: extension_api.live's and
# inbox_sync.webhooks' Listener (core.storage.listen), each a connection of its own.
LISTENERS = 2
# One process's pools at most, whatever its budget: the sizes before budgets existed,
# which a single worker keeps (20 SMTP sessions at once, an API burst beside them).
ENGINE_POOL, ENGINE_OVERFLOW, BUDGET_POOL = 20, 10, 4
# The fewest engine connections a process works with: the kept look-up connection, a
# group commit's transaction, and reads beside them (some code holds two at once).
ENGINE_LEAST = 4
DEFAULT_BUDGET = 40  # per node (serve --db-connections)


@dataclass(frozen=True)
class Share:
    """One process's PostgreSQL connections: its pools' sizes and their names."""

    process: str = "inboxlog"  # the application_name's prefix
    engine_pool: int = ENGINE_POOL
    engine_overflow: int = ENGINE_OVERFLOW
    budget_pool: int = BUDGET_POOL

    @property
    def most(self) -> int:
        """The connections this process may hold at once."""
        return self.engine_pool + self.engine_overflow + self.budget_pool + LISTENERS

    def name(self, pool: str) -> str:
        """The application_name of ``pool``'s connections (PostgreSQL keeps 63 bytes)."""
        return f"{self.process} {pool}"[:63]


class BudgetTooSmall(ValueError):
    """A node's budget leaves a worker fewer connections than it needs."""


def least_per_process() -> int:
    return ENGINE_LEAST + 1 + LISTENERS


def share_of(budget: int, workers: int, index: int, process: str) -> Share:
    """Worker ``index``'s share of a node budget of ``budget`` connections over
    ``workers`` processes (the remainder to the first ones): LISTENERS connections, a
    rate-limit pool of one for every 10 (1 to 4), the rest the engine's pool and its
    overflow (a third of it, as 20 + 10), each at most its default size. BudgetTooSmall
    when a share is under ``least_per_process()``."""
    share = budget // workers + (1 if index < budget % workers else 0)
    if budget // workers < least_per_process():
        raise BudgetTooSmall(
            f"{budget} connections over {workers} worker(s) leave {budget // workers} "
            f"each; a worker needs at least {least_per_process()} ({LISTENERS} LISTEN, "
            f"1 for the rate limits, {ENGINE_LEAST} for its engine)")
    budget_pool = min(BUDGET_POOL, max(1, share // 10))
    engine = min(ENGINE_POOL + ENGINE_OVERFLOW, share - LISTENERS - budget_pool)
    pool = min(ENGINE_POOL, math.ceil(engine * 2 / 3))
    return Share(process, pool, engine - pool, budget_pool)


def node_most(budget: int, workers: int) -> int:
    """The connections a node of ``workers`` processes holds at most on ``budget``."""
    return sum(share_of(budget, workers, i, "").most for i in range(workers))


_current = Share()


def use(share: Share) -> None:
    """This process's share, for the pools made from now on (before its Runtime)."""
    global _current
    _current = share


def current() -> Share:
    return _current


@dataclass(frozen=True)
class Room:
    """What a PostgreSQL server has room for, now."""

    max_connections: int
    reserved: int  # superuser_reserved_connections
    others: int  # client connections of anything but inboxlog
    inboxlog: int  # client connections named inboxlog (other nodes, commands)

    @property
    def limit(self) -> int:
        """The connections ordinary roles may open in all."""
        return self.max_connections - self.reserved

    @property
    def for_inboxlog(self) -> int:
        """What other clients leave to inboxlog's nodes together."""
        return self.limit - self.others

    def numbers(self) -> str:
        return (f"PostgreSQL takes {self.limit} (max_connections {self.max_connections} "
                f"- superuser_reserved_connections {self.reserved}), {self.others} of them "
                f"held by other clients")

    def fits(self, most: int) -> bool:
        """Whether a node of ``most`` connections fits beside the other clients."""
        return most <= self.for_inboxlog

    def crowded(self, most: int) -> bool:
        """Whether it may not, beside the inboxlog processes connected now (other
        nodes): their connections now are a floor of what they may hold."""
        return most + self.inboxlog > self.for_inboxlog


_ROOM = (
    "SELECT current_setting('max_connections')::int AS max_connections,"
    " current_setting('superuser_reserved_connections')::int AS reserved,"
    " count(*) FILTER (WHERE coalesce(application_name, '') NOT LIKE 'inboxlog%') AS others,"
    " count(*) FILTER (WHERE application_name LIKE 'inboxlog%') AS inboxlog"
    " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


async def room(url: str) -> Room:
    """Read the room at the server of ``url`` (asyncpg's errors pass)."""
    import asyncpg

    from core.storage.listen import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10, server_settings={
        "application_name": "inboxlog serve start"})
    try:
        row = await conn.fetchrow(_ROOM)
    finally:
        await conn.close()
    assert row is not None
    return Room(row["max_connections"], row["reserved"], row["others"], row["inboxlog"])
