"""Node leases: work that one inboxlog process at a time may do, among all the nodes (and
``--workers`` processes) sharing a database.

A lease is a row of ``node_leases``: a name (``inbox:42``, ``purge``), the node holding
it and when it expires. Times are the database's clock, never a node's: nodes' clocks
may differ, the database's is the one they share. A holder renews its leases well
before they expire and stops the work as soon as it cannot prove it still holds them
(``Holding.still_valid``); a node that dies (SIGKILL, power loss) simply stops
renewing, and another takes the work over once the lease has expired, within
``ttl`` plus its own renewal period.

Rows rather than PostgreSQL advisory locks: the same code runs on SQLite, a lease
outlives a dropped database connection by its TTL instead of vanishing with it (a blip
of the node's connection does not stop every IMAP connection at once), the expiry
bounds how long a node cut off from the database may go on, and who holds what is
readable with a SELECT.

Two kinds of use:

- **holding** (``acquire`` / ``renew`` / ``release``): an inbox's IMAP connection, for
  as long as the node keeps renewing;
- **turns** (``take_turn``): a periodic job (the retention purge) that must run once per
  interval among all nodes: the first node to ask after the interval gets the turn.

Functions take a session and never commit (the caller's transaction decides).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Double, case, delete, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.db import Database
from core.storage.models.lease import NodeLease

# How long a lease lasts without renewal. A dead node's inboxes are taken over within
# about this long plus a renewal period (a third of it). Tests shorten it.
DEFAULT_TTL = 30.0
TTL_ENV = "INBOXLOG_LEASE_SECONDS"
INBOX = "inbox:"
NODE = "node:"  # a node's own heartbeat: how many nodes share the inboxes
PURGE = "purge"

_node: tuple[int, str] | None = None


def this_node() -> str:
    """This process's holder id: host, pid and a random part (a restarted process, or a
    forked worker, is a new node; its predecessor's leases expire or are released)."""
    global _node
    pid = os.getpid()
    if _node is None or _node[0] != pid:
        host = socket.gethostname()[:60]
        _node = (pid, f"{host}-{pid}-{secrets.token_hex(4)}")
    return _node[1]


def ttl_from_env(default: float = DEFAULT_TTL) -> float:
    """The lease TTL in seconds: ``INBOXLOG_LEASE_SECONDS`` when set (at least 1), else
    ``default``. ValueError for a value that is not a number."""
    text = os.environ.get(TTL_ENV, "").strip()
    return max(1.0, float(text)) if text else default


def inbox_lease(inbox_id: int) -> str:
    return f"{INBOX}{inbox_id}"


def inbox_of(name: str) -> int | None:
    """The inbox id of an ``inbox:<id>`` lease name, else None."""
    rest = name.removeprefix(INBOX)
    return int(rest) if rest != name and rest.isdigit() else None


def db_now(session: AsyncSession) -> ColumnElement[float]:
    """The database's clock in seconds since the epoch, as a SQL expression."""
    if session.get_bind().dialect.name == "postgresql":
        return literal_column("extract(epoch from clock_timestamp())::double precision",
                              Double())
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Double())


async def clock(session: AsyncSession) -> float:
    """The database's clock now (seconds since the epoch)."""
    return float(await session.scalar(select(db_now(session))) or 0.0)


async def _take(session: AsyncSession, name: str, holder: str, seconds: float, *,
                keep_own: bool) -> bool:
    """Insert the lease, or take it over when it has expired (or, ``keep_own``, is
    already ``holder``'s: then it is extended). True when ``holder`` has it now, until
    ``seconds`` from now. One statement: of two nodes asking at once, exactly one wins."""
    now = db_now(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(NodeLease).values(name=name, holder=holder, expires_at=now + seconds,
                                    acquired_at=now)
    free = NodeLease.expires_at <= now
    if keep_own:
        free = free | (NodeLease.holder == holder)
    upsert = stmt.on_conflict_do_update(
        index_elements=[NodeLease.name],
        set_={"holder": holder, "expires_at": now + seconds,
              # a renewal by the holder keeps when it first got the lease
              "acquired_at": case((NodeLease.holder == holder, NodeLease.acquired_at),
                                  else_=now)},
        where=free,
    ).returning(NodeLease.name)
    return (await session.scalar(upsert)) is not None


async def acquire(session: AsyncSession, name: str, holder: str, ttl: float) -> bool:
    """Take the lease ``name`` for ``ttl`` seconds when it is free (never held, expired,
    released) or already ``holder``'s. True when ``holder`` holds it."""
    return await _take(session, name, holder, ttl, keep_own=True)


async def take_turn(session: AsyncSession, name: str, holder: str, every: float) -> bool:
    """Whether ``holder`` takes this turn of the periodic job ``name``: True at most
    once per ``every`` seconds among all nodes (whoever asks first once the last turn
    is ``every`` seconds old). The turn is spent when taken, whether the job then
    succeeds or not."""
    return await _take(session, name, holder, every, keep_own=False)


async def take_over(session: AsyncSession, name: str, holder: str, ttl: float) -> None:
    """Make ``holder`` hold ``name`` whoever held it: for a user's action (new
    credentials for an inbox) on the node they asked. The former holder sees it lost at
    its next renewal and stops."""
    now = db_now(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(NodeLease).values(
        name=name, holder=holder, expires_at=now + ttl, acquired_at=now,
    ).on_conflict_do_update(index_elements=[NodeLease.name], set_={
        "holder": holder, "expires_at": now + ttl, "acquired_at": now}))


async def renew(session: AsyncSession, holder: str, ttl: float,
                prefixes: Iterable[str] = (INBOX, NODE)) -> set[str]:
    """Extend every lease ``holder`` still holds whose name starts with one of
    ``prefixes`` to ``ttl`` seconds from now (one statement); the names so renewed.
    A lease another node took over is not among them: its work must stop here."""
    now = db_now(session)
    matches = [NodeLease.name.startswith(prefix, autoescape=True) for prefix in prefixes]
    condition = matches[0]
    for match in matches[1:]:
        condition = condition | match
    rows = await session.scalars(
        update(NodeLease).where(NodeLease.holder == holder, condition)
        .values(expires_at=now + ttl).returning(NodeLease.name))
    return set(rows)


async def release(session: AsyncSession, holder: str, names: Iterable[str] | None = None
                  ) -> None:
    """Give up ``names`` (all of ``holder``'s leases when None), if ``holder`` holds
    them: another node may take them at once."""
    stmt = delete(NodeLease).where(NodeLease.holder == holder)
    if names is not None:
        wanted = list(names)
        if not wanted:
            return
        stmt = stmt.where(NodeLease.name.in_(wanted))
    await session.execute(stmt)


async def sweep(session: AsyncSession, prefix: str, after: float) -> None:
    """Delete the leases under ``prefix`` expired more than ``after`` seconds ago (the
    heartbeats of nodes long gone: every process start is a new node)."""
    await session.execute(delete(NodeLease).where(
        NodeLease.name.startswith(prefix, autoescape=True),
        NodeLease.expires_at < db_now(session) - after))


async def live(session: AsyncSession, prefix: str) -> dict[str, str]:
    """The unexpired leases whose name starts with ``prefix``: name -> holder."""
    rows = await session.execute(select(NodeLease.name, NodeLease.holder).where(
        NodeLease.name.startswith(prefix, autoescape=True),
        NodeLease.expires_at > db_now(session)))
    return {name: holder for name, holder in rows}


def turn_checks(every: float) -> float:
    """How often a node asks for the turn of a job run every ``every`` seconds: a tenth
    of it (at least 0.2 s), so turns follow each other at most 10% late."""
    return max(0.2, every / 10)


async def my_turn(db: Database, name: str, every: float) -> bool:
    """``take_turn`` for this node, in a transaction of its own."""
    async with db.transaction() as session:
        return await take_turn(session, name, this_node(), every)


@dataclass
class Holding:
    """A holder's view of how long its renewed leases are surely still its own, by the
    local monotonic clock: a renewal that began at ``t`` made them valid until at least
    ``t + ttl`` (the database stamped them after ``t``)."""

    ttl: float
    margin: float  # stop this long before the leases could expire
    renewed_at: float = field(default=float("-inf"))

    def renewing(self) -> float:
        """Call just before a renewal; pass the result to ``renewed``."""
        return time.monotonic()

    def renewed(self, began: float) -> None:
        self.renewed_at = began

    def still_valid(self) -> bool:
        return time.monotonic() < self.renewed_at + self.ttl - self.margin
