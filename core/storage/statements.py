"""The ingest path's statements, run on the database driver's own connection.

SQLAlchemy's execution machinery costs more than the statements it runs on this path:
per ``await session.execute`` a greenlet switch, a cache key of the statement, a compiled
lookup, an execution context and a result object; on SQLite about 50 µs of it around
an indexed statement of a few µs (bench/NOTES.md, "Ingest CPU per message"). Here the
SQL still comes from Core constructs, compiled once per dialect at first use (a schema
change in the models flows through), with the types' bind processors (SQLAlchemy's, or
for the common types a cheaper one of the same values: ``core.storage._binds``) and
result processors, and is run by the driver itself: on SQLite by the inline ``sqlite3``
connection on the loop thread (``core.storage._inline_sqlite``), a plain synchronous
call; on PostgreSQL by asyncpg (its prepared statements, ``executemany`` for several
rows). Any other connection (aiosqlite's thread) runs the same SQL through
SQLAlchemy's ``exec_driver_sql``.

Errors come out as SQLAlchemy's (``IntegrityError`` for a unique-key race, a
``DBAPIError`` carrying the driver's error otherwise), so ``core.storage.db`` maps them
as before: a dead database is ``StorageUnavailable``. Each statement counts in
``inboxlog_db_statements`` like those SQLAlchemy runs.
"""

from __future__ import annotations

import asyncio
import functools
import math
import operator
import os
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter
from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from core.errors import StorageUnavailable
from core.storage._binds import Processor, bind_processor
from core.storage._inline_sqlite import InlineConnection

# Statements sent to the database, by engine (``make bench`` reads it from /metrics to
# report statements per message; one counter increment per statement).
STATEMENTS = Counter("inboxlog_db_statements", "SQL statements executed, by engine",
                     ["engine"])

Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Compiled:
    """A statement's SQL for one dialect and how to turn named values into its
    positional parameters, and its rows into Python values."""

    sql: str
    # How named values become its positional parameters: those without a default
    # read in one go (``needed``, in order), those with one (a Python-side column
    # default, or a value the statement itself holds, a LIMIT) put in at their place,
    # then each value not None that has a bind processor (core.storage._binds)
    # processed. (A loop over every parameter was most of an INSERT's Python time.)
    needed: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    defaulted: tuple[tuple[int, str, Callable[[], Any]], ...]
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    results: tuple[Processor, ...]
    plain_rows: bool  # no result processors: its rows are as the driver gives them

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = list(self.needed(values))
        for index, name, default in self.defaulted:
            out.insert(index, values[name] if name in values else default())
        for index, process in self.processed:
            value = out[index]
            if value is not None:
                out[index] = process(value)
        return tuple(out)

    def row(self, row: Sequence[Any]) -> Row:
        if self.plain_rows:
            return tuple(row)
        return tuple(v if p is None or v is None else p(v)
                     for p, v in zip(self.results, row, strict=True))


def _dialect_key(dialect: Dialect) -> tuple[Any, ...]:
    return dialect.name, dialect.driver, getattr(dialect, "server_version_info", None)


def _compile(statement: ClauseElement, dialect: Dialect,
             column_keys: list[str] | None = None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    defaults: dict[str, Callable[[], Any]] = {
        n: functools.partial(_same, compiled.binds[n].value)
        for n in names if not compiled.binds[n].required}
    for column in getattr(compiled, "insert_prefetch", ()):
        default = column.default
        if default is None:
            continue
        if default.is_callable:
            defaults[column.key] = functools.partial(default.arg, None)
        elif default.is_scalar:
            defaults[column.key] = functools.partial(_same, default.arg)
    processors = [bind_processor(compiled.binds[n].type, dialect) for n in names]
    columns = list(getattr(statement, "selected_columns", ()))
    if not columns and getattr(statement, "_returning", None):
        columns = list(statement._returning)  # type: ignore[attr-defined]
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                    for c in columns)
    return _Compiled(
        compiled.string, _getter([n for n in names if n not in defaults]),
        tuple((i, n, defaults[n]) for i, n in enumerate(names) if n in defaults),
        tuple((i, p) for i, p in enumerate(processors) if p is not None),
        results, not any(results))


def _getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """What reads ``names``' values, a tuple of them (a KeyError for one not given)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    return lambda values: tuple(values[n] for n in names)


def _same(value: Any) -> Any:
    return value


class Statement:
    """A Core statement compiled once per dialect, and once per length of each list
    parameter (``lists``: ``build`` gets, for each, that many bind parameters, for an
    ``IN``; lengths are rounded up to a power of two, the list padded with its last
    value, so a few compiled forms serve all)."""

    def __init__(self, build: Callable[..., ClauseElement], *, lists: tuple[str, ...] = ()
                 ) -> None:
        self._build = build
        self._lists = lists
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}

    def prepare(self, dialect: Dialect, values: Mapping[str, Any]
                ) -> tuple[_Compiled, Mapping[str, Any]]:
        sizes = tuple(_padded(len(values[name])) for name in self._lists)
        key = (_dialect_key(dialect), sizes)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self._build(**{
                name: [bindparam(f"{name}_{i}") for i in range(size)]
                for name, size in zip(self._lists, sizes, strict=True)}), dialect)
        if self._lists:
            values = dict(values)
            for name, size in zip(self._lists, sizes, strict=True):
                items = list(values.pop(name))
                items += items[-1:] * (size - len(items))
                values.update((f"{name}_{i}", item) for i, item in enumerate(items))
        return compiled, values


def _padded(length: int) -> int:
    if length < 1:
        raise ValueError("an IN list needs at least one value")
    return 1 << (length - 1).bit_length()


class Insert:
    """``INSERT INTO table`` of the columns given, compiled once per dialect and set of
    columns (the Python-side defaults of the others are filled in)."""

    def __init__(self, table: Any, *, returning: str | None = None) -> None:
        self._table: Table = table
        self._returning = returning
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}
        # On SQLite the new id of a table whose one primary key is INTEGER is the rowid,
        # which the connection keeps after each INSERT: no RETURNING row to build.
        self.returns_rowid = returning is not None and _is_rowid(table, returning)

    def prepare(self, dialect: Dialect, keys: tuple[str, ...], *, returning: bool = True
                ) -> _Compiled:
        key = (_dialect_key(dialect), keys, returning)
        compiled = self._compiled.get(key)
        if compiled is None:
            statement = insert(self._table)
            if returning and self._returning is not None:
                statement = statement.returning(self._table.c[self._returning])
            compiled = self._compiled[key] = _compile(statement, dialect, list(keys))
        return compiled


def _is_rowid(table: Table, column: str) -> bool:
    """Whether ``column`` of ``table`` is SQLite's rowid: its one primary key, INTEGER."""
    from sqlalchemy.dialects import sqlite

    [*key] = table.primary_key.columns
    return (len(key) == 1 and key[0].key == column
            and key[0].type.compile(sqlite.dialect()).upper() == "INTEGER")


def _sqlalchemy_error(exc: Exception, sql: str, args: Any) -> StatementError:
    """The driver's error as SQLAlchemy would have raised it."""
    if isinstance(exc, sqlite3.Error):
        return DBAPIError.instance(sql, args, exc, sqlite3.Error)
    import asyncpg

    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, args, exc)
    if isinstance(exc, asyncpg.DataError):  # a value asyncpg could not send
        return DataError(sql, args, exc)
    # A server's error says by its SQLSTATE whether it may pass (core.storage.db); any
    # other (the connection closed or broken, a socket error) is a lost connection.
    return DBAPIError(sql, args, exc, connection_invalidated=not isinstance(
        exc, asyncpg.PostgresError))


def _driver_errors() -> tuple[type[Exception], ...]:
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
            OSError, TimeoutError)


class Runner:
    """Runs ``Statement``s and ``Insert``s on one connection, in whatever transaction it
    is in (a session's, or none: autocommit)."""

    def __init__(self, dialect: Dialect, counter: Any) -> None:
        self.dialect = dialect
        self._counter = counter

    async def rows(self, statement: Statement, **values: Any) -> list[Row]:
        compiled, named = statement.prepare(self.dialect, values)
        return [compiled.row(r) for r in await self._fetch(compiled, named)]

    async def first(self, statement: Statement, **values: Any) -> Row | None:
        found = await self.rows(statement, **values)
        return found[0] if found else None

    async def insert(self, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (all with the same columns): one statement, several rows."""
        if not rows:
            return
        compiled = statement.prepare(self.dialect, tuple(rows[0]))
        if len(rows) == 1:
            await self._fetch(compiled, rows[0])
        else:
            await self._many(compiled, [compiled.args(r) for r in rows])

    async def insert_id(self, statement: Insert, row: Mapping[str, Any]) -> int:
        """Insert one row; its ``returning`` column (the new id)."""
        compiled = statement.prepare(self.dialect, tuple(row))
        [(new_id, *_)] = await self._fetch(compiled, row)
        return int(new_id)

    async def _fetch(self, compiled: _Compiled, values: Mapping[str, Any]
                     ) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    async def _many(self, compiled: _Compiled, args: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError


class SqliteRunner(Runner):
    """On the inline ``sqlite3`` connection: synchronous, on the loop thread (short,
    indexed statements of a transaction that ``BEGIN IMMEDIATE`` started)."""

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect, counter: Any
                 ) -> None:
        super().__init__(dialect, counter)
        self._connection = connection

    async def _fetch(self, compiled: _Compiled, values: Mapping[str, Any]
                     ) -> Sequence[Sequence[Any]]:
        args = compiled.args(values)
        self._counter.inc()
        try:
            return self._connection.execute(compiled.sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _sqlalchemy_error(exc, compiled.sql, args) from exc

    async def insert_id(self, statement: Insert, row: Mapping[str, Any]) -> int:
        if not statement.returns_rowid:
            return await super().insert_id(statement, row)
        compiled = statement.prepare(self.dialect, tuple(row), returning=False)
        args = compiled.args(row)
        self._counter.inc()
        try:
            new_id = self._connection.execute(compiled.sql, args).lastrowid
        except sqlite3.Error as exc:
            raise _sqlalchemy_error(exc, compiled.sql, args) from exc
        assert new_id is not None  # every INSERT sets it
        return new_id

    async def _many(self, compiled: _Compiled, args: list[tuple[Any, ...]]) -> None:
        self._counter.inc()
        try:
            self._connection.executemany(compiled.sql, args)
        except sqlite3.Error as exc:
            raise _sqlalchemy_error(exc, compiled.sql, args) from exc


class AsyncpgRunner(Runner):
    """On asyncpg's connection: its prepared statements (cached by SQL text), and
    ``executemany`` for several rows (one round trip)."""

    def __init__(self, connection: Any, dialect: Dialect, counter: Any) -> None:
        super().__init__(dialect, counter)
        self._connection = connection

    async def _fetch(self, compiled: _Compiled, values: Mapping[str, Any]
                     ) -> Sequence[Sequence[Any]]:
        args = compiled.args(values)
        self._counter.inc()
        try:
            rows: Sequence[Sequence[Any]] = await self._connection.fetch(compiled.sql, *args)
            return rows
        except _driver_errors() as exc:
            raise _sqlalchemy_error(exc, compiled.sql, args) from exc

    async def _many(self, compiled: _Compiled, args: list[tuple[Any, ...]]) -> None:
        self._counter.inc()
        try:
            await self._connection.executemany(compiled.sql, args)
        except _driver_errors() as exc:
            raise _sqlalchemy_error(exc, compiled.sql, args) from exc


class DriverSqlRunner(Runner):
    """Any other connection: the same SQL through SQLAlchemy's ``exec_driver_sql``
    (aiosqlite's thread; counted by the engine's own statement listener)."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection.dialect, None)
        self._connection = connection

    async def _fetch(self, compiled: _Compiled, values: Mapping[str, Any]
                     ) -> Sequence[Sequence[Any]]:
        result = await self._connection.exec_driver_sql(compiled.sql, compiled.args(values))
        return list(result.fetchall()) if result.returns_rows else []

    async def _many(self, compiled: _Compiled, args: list[tuple[Any, ...]]) -> None:
        await self._connection.exec_driver_sql(compiled.sql, args)


async def for_connection(connection: AsyncConnection, counter: Any) -> Runner:
    """The runner for ``connection``'s driver connection (``counter``: its engine's
    statement count)."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # a connection checked out is open
    if isinstance(driver, InlineConnection):
        return SqliteRunner(driver.sqlite3_connection, connection.dialect, counter)
    if connection.dialect.driver == "asyncpg":
        if connection.in_transaction() and not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends its BEGIN with the first statement it
            # runs: without one, this runner's statements would each commit alone.
            await connection.exec_driver_sql("SELECT 1")
        return AsyncpgRunner(driver, connection.dialect, counter)
    return DriverSqlRunner(connection)


_KEY = "core.storage.statements.runner"
# Each engine's statement count, by its pool (an engine with other execution options
# shares its parent's).
_COUNTERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def count_as(engine: AsyncEngine, name: str) -> None:
    """Count the statements run on ``engine``'s connections as ``name``'s."""
    _COUNTERS[engine.sync_engine.pool] = STATEMENTS.labels(name)


def counter(connection: AsyncConnection) -> Any:
    """The statement count of ``connection``'s engine."""
    found = _COUNTERS.get(connection.sync_engine.pool)
    return found if found is not None else STATEMENTS.labels("main")


async def of_session(session: AsyncSession) -> Runner:
    """A runner in ``session``'s transaction (begun if it was not), after a flush of
    what the ORM holds (as its autoflush would before a query). Kept for the rest of
    that transaction."""
    sync = session.sync_session
    if sync.new or sync.dirty or sync.deleted:
        await session.flush()
    transaction = sync.get_transaction()
    kept = session.info.get(_KEY)
    if kept is not None and transaction is not None and kept[0] is transaction:
        runner: Runner = kept[1]
        return runner
    connection = await session.connection()
    runner = await for_connection(connection, counter(connection))
    session.info[_KEY] = (sync.get_transaction(), runner)
    return runner


class Reader(Protocol):
    """What runs a read: a ``Runner`` in a transaction, or a ``KeptConnection``."""

    async def rows(self, statement: Statement, **values: Any) -> list[Row]: ...

    async def first(self, statement: Statement, **values: Any) -> Row | None: ...


LOOKUP_TIMEOUT = 5.0  # seconds a kept connection's read may take, its turn included


def lookup_timeout() -> float:
    """``INBOXLOG_LOOKUP_TIMEOUT`` (seconds, above 0), else ``LOOKUP_TIMEOUT``."""
    given = os.environ.get("INBOXLOG_LOOKUP_TIMEOUT", "").strip()
    try:
        seconds = float(given) if given else LOOKUP_TIMEOUT
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < math.inf:
        raise ValueError(f"INBOXLOG_LOOKUP_TIMEOUT must be seconds above 0, not {given!r}")
    return seconds


class KeptConnection:
    """One connection of ``engine`` kept open for short reads outside any transaction
    (RCPT's look-ups: SQLite's autocommit, PostgreSQL's AUTOCOMMIT), instead of a session
    and a pool checkout (and PostgreSQL's ping) per read. Every read still goes to the
    database: nothing is cached. Reads take turns on it (on SQLite they run without a
    pause, so they never wait). A connection found broken (``is_lost``) is dropped and
    the read tried once on a new one; the next read opens one when none is kept.

    Since every look-up of the process takes its turn here, one stalled query (a table
    lock held elsewhere, a database that stopped answering) would hold every SMTP
    session's RCPT: a read, its turn included, gets ``timeout`` seconds (default
    ``lookup_timeout()``), then raises StorageUnavailable (RCPT answers 451 4.3.0), and
    a connection interrupted mid-read is dropped, so the next read gets a new one. On
    PostgreSQL the connection also carries a ``statement_timeout`` a little longer, so
    the server gives up the abandoned statement too. (SQLite's reads run inline on the
    loop: nothing to interrupt.)"""

    def __init__(self, engine: AsyncEngine, is_lost: Callable[[BaseException], bool],
                 *, timeout: float | None = None) -> None:
        self._engine = engine
        self._is_lost = is_lost
        self.timeout = lookup_timeout() if timeout is None else timeout
        self._connection: AsyncConnection | None = None
        self._runner: Runner | None = None
        self._lock = asyncio.Lock()

    async def rows(self, statement: Statement, **values: Any) -> list[Row]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._rows(statement, values)
        except TimeoutError as exc:
            raise StorageUnavailable(
                f"database look-up took over {self.timeout:g} s") from exc

    async def _rows(self, statement: Statement, values: dict[str, Any]) -> list[Row]:
        async with self._lock:
            for kept in (True, False):
                fresh = self._runner is None
                try:
                    runner = self._runner or await self._connect()
                    return await runner.rows(statement, **values)
                except asyncio.CancelledError:
                    # Timed out (or the session went) mid-read: the connection may still
                    # be busy with it, so it is not the next read's.
                    await self._drop()
                    raise
                except Exception as exc:
                    if not self._is_lost(exc):
                        raise
                    await self._drop()
                    if fresh or not kept:
                        raise
        raise AssertionError("unreachable")

    async def first(self, statement: Statement, **values: Any) -> Row | None:
        found = await self.rows(statement, **values)
        return found[0] if found else None

    async def _connect(self) -> Runner:
        connection = await self._engine.connect()
        try:
            self._runner = await for_connection(connection, counter(connection))
            await _set_statement_timeout(
                connection, f"{math.ceil(self.timeout * 1000) + 500}")  # undone in close()
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        return self._runner

    async def _drop(self) -> None:
        connection, self._connection, self._runner = self._connection, None, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception:  # it is broken already: nothing left to tidy
                pass

    async def close(self) -> None:
        connection, self._connection, self._runner = self._connection, None, None
        if connection is not None:
            try:
                await _set_statement_timeout(connection, "DEFAULT")  # as the pool gave it
            except Exception:  # broken: not back to the pool at all
                await connection.invalidate()
            await connection.close()


async def _set_statement_timeout(connection: AsyncConnection, value: str) -> None:
    """``SET statement_timeout`` on an asyncpg connection, on the driver itself (outside
    SQLAlchemy's transaction and the statement counts); nothing elsewhere."""
    if connection.dialect.driver != "asyncpg":
        return
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # a connection checked out is open
    await driver.execute(f"SET statement_timeout = {value}")
