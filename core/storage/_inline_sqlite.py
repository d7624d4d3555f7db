"""An aiosqlite stand-in that runs SQLite statements on the event loop thread.

aiosqlite runs every call (open a cursor, execute, fetch, close) in its own thread and
hands the result back through the event loop: three or four thread round trips per
statement. For an ingest of twenty short statements that is most of its cost — on this
project's benchmark machine 18 ms of system time per message, against well under a
millisecond of actual SQLite work. An indexed statement on a WAL database in the page
cache takes microseconds, far less than a round trip, so for short write transactions
it is cheaper to run them where they are issued.

What may take long stays off the loop: ``BEGIN IMMEDIATE`` (it can wait for another
process's write lock) and ``COMMIT`` (it waits for the disk) run in a worker thread. Use this
only for an engine whose transactions are short and indexed, like the ingest path in
``core.storage.db``; bulk deletes and long reads belong on the ordinary aiosqlite engines.

It implements the part of aiosqlite's interface that SQLAlchemy's ``aiosqlite``
dialect uses (``sqlalchemy.dialects.sqlite.aiosqlite``), and is passed to
``create_async_engine`` as ``async_creator``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from core.storage.worker_threads import to_thread_to_the_end

# Statements that can wait on something outside this process: run them in a thread.
# (A deferred BEGIN takes no lock, and in WAL mode readers wait for nobody.)
_WAITING = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "COMMIT", "END")


def _waits(sql: str) -> bool:
    return sql.lstrip()[:16].upper().startswith(_WAITING)


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        if _waits(sql):
            # To the end: a rollback on the loop thread must not meet a COMMIT in the
            # worker on the same connection.
            await to_thread_to_the_end(self._cursor.execute, sql, parameters)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Immediate:
    """What SQLAlchemy's isolation-level setter puts work on (aiosqlite's queue)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    """The aiosqlite ``Connection`` surface over a plain ``sqlite3`` connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        # SQLAlchemy's dialect reads these three private names of aiosqlite's class
        # (tests/test_dependency_internals.py fails when it reads others).
        self._conn = self._connection = connection
        self._tx = _Immediate()

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The connection itself, for statements run without SQLAlchemy
        (``core.storage.statements``)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def commit(self) -> None:
        await to_thread_to_the_end(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def connector(path: str) -> Callable[[], Any]:
    """The ``async_creator`` for a database file at ``path``."""

    async def connect() -> InlineConnection:
        connection = await asyncio.to_thread(sqlite3.connect, path, check_same_thread=False)
        return InlineConnection(connection)

    return connect
