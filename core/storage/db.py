"""Engines, transactions and migrations: one code path for SQLite and PostgreSQL.

Entry points open one transaction per inbound unit with ``Database.transaction()``, or
hand the unit to ``Database.run``, which on SQLite gives it a savepoint in a transaction
shared with the units arriving at the same moment (one commit, then every caller hears
back). Core functions take the session and never commit (STYLE habit 8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import event, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core._files import private_dir, private_file
from core.errors import StorageUnavailable
from core.storage import _inline_sqlite, connections
from core.storage import statements as statements_module
from core.storage.group_commit import GroupCommit
from core.storage.statements import STATEMENTS, KeptConnection

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_path(url: str) -> str:
    return make_url(url).database or ""


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook, not the driver, start transactions.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it returns, so a 250 survives power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# PostgreSQL SQLSTATE classes that pass: connection exceptions, insufficient resources,
# operator intervention (shutdown, restart), serialization failures and deadlocks; and
# 55000, which a database refusing connections (ALLOW_CONNECTIONS false) answers.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57", "40", "55000")


def _is_transient(exc: BaseException) -> bool:
    """Whether a storage error may go away by itself (connection refused, lost, pool
    exhausted, database restarting) rather than being a bug or bad data, which a retry
    would only repeat (a 451 that is retried for days and never logs the message)."""
    if isinstance(exc, IntegrityError | ProgrammingError | DataError):
        return False
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    return isinstance(exc, DBAPIError | PoolTimeout | OSError)


@asynccontextmanager
async def _storage_errors() -> AsyncIterator[None]:
    """Errors that may go away by itself become ``StorageUnavailable``."""
    try:
        yield
    except Exception as exc:
        if _is_transient(exc):
            raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        raise


# Transactions committed (on PostgreSQL each that wrote is a WAL flush; on SQLite an
# fsync of the WAL), by engine.
COMMITS = Counter("inboxlog_db_commits", "Transactions committed, by engine", ["engine"])


def _count_statements(engine: AsyncEngine, name: str) -> None:
    statements, commits = STATEMENTS.labels(name), COMMITS.labels(name)

    def statement(*_: Any) -> None:
        statements.inc()

    def commit(*_: Any) -> None:
        commits.inc()

    event.listen(engine.sync_engine, "before_cursor_execute", statement)
    event.listen(engine.sync_engine, "commit", commit)
    # Those run by the driver itself (core.storage.statements) count there.
    statements_module.count_as(engine, name)


def _breaks_the_transaction(exc: BaseException) -> bool:
    """For group commit: a failure that ends the shared transaction for all its work."""
    return isinstance(exc, StorageUnavailable) or _is_transient(exc)


def _make_engine(url: str, *, immediate: bool = False, inline: bool = False,
                 name: str = "main", begin: bool = True, **kwargs: Any) -> AsyncEngine:
    if not _is_sqlite(url):
        engine = create_async_engine(url, pool_pre_ping=True, **kwargs)
        _count_statements(engine, name)
        return engine
    if inline:
        kwargs["async_creator"] = _inline_sqlite.connector(_sqlite_path(url))
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)

    if begin:
        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # A deferred transaction that reads and then writes can fail at once with
            # SQLITE_BUSY when another writer got in between; IMMEDIATE waits its turn.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    _count_statements(engine, name)
    return engine


class Database:
    """The storage of one inboxlog instance: its engines and write transactions.

    On PostgreSQL there is one engine. On SQLite there are four, on one file: reads;
    writes, whose transactions start with ``BEGIN IMMEDIATE`` behind an in-process lock
    (writers queue on the event loop, not in busy-wait threads); and for the ingest
    path's short, indexed work, ``run`` (writes, sharing transactions between
    concurrent callers: ``core.storage.group_commit``) and ``lookup`` (reads), whose statements
    run on the loop thread (``core.storage._inline_sqlite``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = _is_sqlite(url)
        self._group_commit: GroupCommit | None = None
        if self.is_sqlite:
            path = _sqlite_path(url)
            on_disk = bool(path) and path != ":memory:"
            if on_disk:
                # The database and (as SQLite gives them its mode) its WAL and shared
                # memory files: the owner's only.
                private_dir(Path(path).parent)
                private_file(Path(path))
            self.read_engine = _make_engine(url, name="read")
            self.write_engine = _make_engine(url, immediate=True, name="write")
            self._ingest_engine = _make_engine(url, immediate=True, inline=on_disk,
                                               name="ingest")
            # It reads one row at a time (RCPT): each statement is a transaction of
            # its own (SQLite's autocommit), no BEGIN in front of it.
            self._lookup_engine = _make_engine(url, inline=on_disk, name="lookup",
                                               begin=False)
            ingest_sessions = async_sessionmaker(self._ingest_engine, expire_on_commit=False)
            # One writer at a time: concurrent ingests share its transactions.
            self._group_commit = GroupCommit(lambda: self._transaction(ingest_sessions),
                                             _breaks_the_transaction)
        else:
            # 20 SMTP sessions look up RCPT at once: connections opened past the pool
            # for them (TLS, authentication) and closed again cost more than the look-ups.
            # The sizes are this process's share of the node's budget (20 + 10 alone).
            share = connections.current()
            self.read_engine = self.write_engine = _make_engine(
                url, pool_size=share.engine_pool, max_overflow=share.engine_overflow,
                connect_args={"server_settings": {"application_name": share.name("engine")}})
            self._ingest_engine = self.write_engine
            # The RCPT look-ups read one row: no transaction around it (BEGIN, ROLLBACK).
            self._lookup_engine = self.write_engine.execution_options(
                isolation_level="AUTOCOMMIT")
            # PostgreSQL takes concurrent writers, but each commit waits for a WAL
            # flush: concurrent ingests share them too.
            ingest_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
            self._group_commit = GroupCommit(lambda: self._transaction(ingest_sessions),
                                             _breaks_the_transaction)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._lookup = KeptConnection(self._lookup_engine, _is_transient)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; closing it rolls back anything left open.

        Objects loaded through it stay readable after the block (nothing is expired).
        """
        async with _storage_errors(), self._read_sessions() as session:
            yield session

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[KeptConnection]:
        """For the ingest path's short, indexed reads outside a transaction (which
        portal a logging address belongs to): one connection kept for them, each read
        fresh from the database (``core.storage.statements.KeptConnection``); on SQLite
        they run on the loop thread like its writes."""
        async with _storage_errors():
            yield self._lookup

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block exits cleanly, else rolled back.

        Connection failures surface as ``StorageUnavailable``; when this returns, the
        commit is durable.
        """
        async with self._transaction(self._write_sessions) as session:
            yield session

    @asynccontextmanager
    async def _transaction(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            async with _storage_errors(), sessions() as session, session.begin():
                yield session
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
    ) -> T:
        """Run ``work`` in a transaction and return its result once that committed.

        Concurrent calls share a transaction (``core.storage.group_commit``); a failing
        one is rolled back alone. On PostgreSQL, where other processes write at the same
        time, one is run again from scratch when a concurrent writer won a unique-key
        race (two copies of one message at once).
        """
        assert self._group_commit is not None
        if self.is_sqlite:
            return await self._group_commit.run(work)
        for attempt in range(1, attempts + 1):
            try:
                return await self._group_commit.run(work)
            except IntegrityError:
                if attempt == attempts:
                    raise
                log.info("unique-key race, retrying (attempt %d)", attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        await self._lookup.close()
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
        if self._ingest_engine is not self.write_engine:
            await self._ingest_engine.dispose()
            await self._lookup_engine.dispose()


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(db: Database) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    def upgrade(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), "head")

    async with db.write_engine.begin() as conn:
        await conn.run_sync(upgrade)
