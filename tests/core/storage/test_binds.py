"""core.storage._binds and _Compiled.args bind what SQLAlchemy's own processors bind
(the way core.storage.statements did before them): the same value and type, or the
same error, for many values of every column type on SQLite and PostgreSQL, and for
every parameter of every statement of every sample under tests/emails."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import JSON, Boolean, bindparam
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, pipeline
from core._logged_rows import _INSERT, _NEW_ID
from core.storage import statements
from core.storage._binds import bind_processor
from core.storage.blobs import LocalBlobStore
from core.storage.db import Database, migrate
from core.storage.models import Base, Portal
from core.storage.models.base import UTCDateTime
from core.storage.statements import _padded
from core.types import Envelope, IngestOutcome, Source

SAMPLES = sorted((Path(__file__).parents[2] / "emails").rglob("*.eml"))
DIALECTS = [pysqlite.dialect(), asyncpg.dialect()]  # type: ignore[no-untyped-call]


class _Later(datetime):
    """A datetime subclass (as a frozen clock's): SQLAlchemy's path, not the short one."""


def _datetimes() -> Iterator[Any]:
    yield from (datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC),
                datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC),  # microsecond 0
                datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
                datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
                datetime(2026, 11, 1, 1, 30, fold=0, tzinfo=ZoneInfo("America/New_York")),
                datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
                datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),  # past 9999
                _Later(2026, 1, 1, tzinfo=UTC),
                datetime(2026, 12, 2, 1, 2, 3),  # naive: refused
                date(2026, 12, 2), "2026-12-02", 5)
    chance = random.Random(17)
    for _ in range(300):
        offset = timezone(timedelta(minutes=chance.randrange(-1439, 1440)))
        yield datetime(chance.randrange(1, 10000), chance.randrange(1, 13),
                       chance.randrange(1, 29), chance.randrange(24), chance.randrange(60),
                       chance.randrange(60), chance.choice((0, chance.randrange(10**6))),
                       tzinfo=offset)


def _json_values() -> Iterator[Any]:
    circular: list[Any] = []
    circular.append(circular)
    yield from ([], {}, [{"email": "ann@acme.example", "name": "Ann Ünlü 😀"}],
                {"spf": "pass", "n": 1, "f": 1.5, "big": 10**30, "tiny": 1e-300,
                 "inf": float("inf"), "nan": float("nan"), "neg": -0.0, "none": None,
                 "t": True, "nested": {"a": [1, [2, {"b": "\u2028\x00\"\\/"}]]}},
                ["a note", "forward not parsed: \U0001f600"], {1: "int key", None: "x"},
                [0.1, 1 / 3, 2.5e17], {"set": {1}}, circular, ("a", "tuple"), "text", 3,
                JSON.NULL)


def _booleans() -> Iterator[Any]:
    yield from (True, False, 1, 0, 1.0, 2, "yes")


def _outcome(process: Callable[[Any], Any] | None, value: Any) -> tuple[Any, ...]:
    try:
        bound = value if process is None else process(value)
    except Exception as exc:
        return "error", type(exc), str(exc)
    zone = bound.utcoffset() if isinstance(bound, datetime) else None
    return "value", type(bound), bound, zone, getattr(bound, "tzinfo", None)


def _pairs() -> Iterator[tuple[str, Any]]:
    for table in Base.metadata.sorted_tables:
        for column in table.c:
            yield f"{table.name}.{column.key}", column.type


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.driver)
def test_every_column_binds_what_sqlalchemy_binds(dialect: Dialect) -> None:
    checked: dict[type, int] = {}
    for name, type_ in _pairs():
        ours = bind_processor(type_, dialect)
        theirs = type_.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(type_, UTCDateTime):
            values: list[Any] = list(_datetimes())
        elif isinstance(type_, JSON):
            values = list(_json_values())
        elif isinstance(type_, Boolean):
            values = list(_booleans())
        else:
            assert (ours is None) == (theirs is None), name
            continue
        assert ours is not None and theirs is not None, name
        for value in values:
            # Twice: the short path keeps the last datetime's text.
            for _ in range(2):
                assert _outcome(ours, value) == _outcome(theirs, value), (name, value)
            if isinstance(value, datetime):  # an equal datetime, another object
                same = value.replace(microsecond=value.microsecond)
                assert _outcome(ours, same) == _outcome(theirs, same), (name, value)
        checked[type(type_)] = checked.get(type(type_), 0) + 1
    assert set(checked) >= {UTCDateTime, JSON, Boolean}


def _reference_args(compiled: statements._Compiled, statement: Any, dialect: Dialect,
                    keys: list[str] | None, values: Mapping[str, Any]) -> list[Any]:
    """The parameters as core.storage.statements built them before core.storage._binds
    (SQLAlchemy's processors, None unprocessed); a callable default's as ``_CALLED``."""
    names, fixed, defaults, processors = _reference(compiled.sql, statement, dialect, keys)
    values = {**defaults, **values}
    out = []
    for name, process in zip(names, processors, strict=True):
        value = values[name] if name in values else fixed[name]
        skip = process is None or value is None or value is _CALLED
        out.append(value if skip else process(value))
    return out


_REFERENCES: dict[tuple[str, Dialect, str], Any] = {}


def _reference(sql: str, statement: Any, dialect: Dialect, keys: list[str] | None) -> Any:
    """``statement``'s parameter names, values it holds, Python-side defaults and
    SQLAlchemy's bind processors, as compiled by SQLAlchemy (once per SQL)."""
    found = _REFERENCES.get((sql, dialect, str(keys)))
    if found is None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert compiled.string == sql
        names = tuple(compiled.positiontup or ())
        defaults = {c.key: _CALLED if c.default.is_callable else c.default.arg
                    for c in getattr(compiled, "insert_prefetch", ()) if c.default is not None}
        found = _REFERENCES[(sql, dialect, str(keys))] = (
            names, {n: compiled.binds[n].value for n in names if not compiled.binds[n].required},
            defaults, [compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect)
                       for n in names])
    return found


_CALLED = object()


def _same_args(compiled: statements._Compiled, ours: tuple[Any, ...],
               reference: list[Any]) -> None:
    assert len(ours) == len(reference), compiled.sql
    for mine, theirs in zip(ours, reference, strict=True):
        if theirs is _CALLED:  # utcnow: checked above as any datetime's processor
            continue
        assert (type(mine), mine) == (type(theirs), theirs), compiled.sql


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.driver)
def test_insert_args_are_sqlalchemys_parameters(dialect: Dialect) -> None:
    now = datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)
    rows: dict[str, list[dict[str, Any]]] = {
        "threads": [{"portal_id": 1, "subject": "Re: x"}, {"portal_id": 1}],
        "emails": [{"portal_id": 1, "message_id": "<a@x>", "synthetic_message_id": True,
                    "thread_id": 3, "thread_reason": "new", "direction": "incoming",
                    "user_id": None, "to": [{"email": "é@x", "name": "É"}], "cc": [],
                    "sent_at": datetime(999, 1, 1, tzinfo=timezone(timedelta(hours=3))),
                    "parse_notes": ["n"], "auth": None, "created_at": now}],
        "events": [{"email_id": 1, "portal_id": 1, "user_id": 2, "type": "logged",
                    "at": now, "detail": {"source": "bcc", "subject": "ü"}},
                   {"email_id": 1, "portal_id": 1, "user_id": None, "type": "reply",
                    "at": now, "machine": True, "detail": {}}],
        "attachments": [{"email_id": 1, "filename": "a", "content_type": "b", "size": 1,
                         "sha256": "0", "blob_sha256": None, "inline": True,
                         "content_id": None}],
    }
    inserts = [*_NEW_ID.values(), *_INSERT.values()]
    seen = set()
    for insert in inserts:
        table = insert._table
        for row in rows.get(table.name, []):
            for returning in (True, False):
                keys = tuple(row)
                compiled = insert.prepare(dialect, keys, returning=returning)
                statement = table.insert()
                if returning and insert._returning is not None:
                    statement = statement.returning(table.c[insert._returning])
                _same_args(compiled, compiled.args(row),
                           _reference_args(compiled, statement, dialect, list(keys), row))
                seen.add(table.name)
    assert seen == set(rows)


async def _portal(database: Database) -> int:
    async with database.transaction() as session:
        created = await accounts.create_portal(session, "Samples")
        await accounts.add_user(session, created.portal.id, "rep@ourco.example")
        return created.portal.id


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'samples.db'}")
    await migrate(db)
    yield db
    await db.dispose()


async def test_every_sample_binds_what_sqlalchemy_binds(
        sqlite_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement of logging each sample under tests/emails (as the user's own
    email, so each is logged), its parameters beside SQLAlchemy's. On SQLite only, where
    the short paths do the most (the datetime text, JSON, booleans as 0/1): PostgreSQL's
    are a timezone conversion, JSON and booleans, each checked against SQLAlchemy's
    above for both dialects; all 940 samples once more there cost the suite 35 s."""
    database = sqlite_database
    assert len(SAMPLES) >= 900
    checked: dict[str, int] = {}
    args = statements._Compiled.args

    def both(compiled: statements._Compiled, values: Mapping[str, Any]) -> tuple[Any, ...]:
        ours = args(compiled, values)
        source = _SOURCES.get(compiled.sql)
        if source is not None:
            statement, keys, dialect = source
            _same_args(compiled, ours, _reference_args(
                compiled, statement, dialect, keys, values))
            checked[compiled.sql] = checked.get(compiled.sql, 0) + 1
        return ours

    _SOURCES: dict[str, tuple[Any, list[str] | None, Dialect]] = {}
    prepare = statements.Insert.prepare

    def kept(insert: statements.Insert, dialect: Dialect, keys: tuple[str, ...], *,
             returning: bool = True) -> statements._Compiled:
        compiled = prepare(insert, dialect, keys, returning=returning)
        statement = insert._table.insert()
        if returning and insert._returning is not None:
            statement = statement.returning(insert._table.c[insert._returning])
        _SOURCES[compiled.sql] = (statement, list(keys), dialect)
        return compiled

    read = statements.Statement.prepare

    def built(statement: statements.Statement, dialect: Dialect, values: Mapping[str, Any]
              ) -> tuple[statements._Compiled, Mapping[str, Any]]:
        compiled, named = read(statement, dialect, values)
        if compiled.sql not in _SOURCES:
            _SOURCES[compiled.sql] = (statement._build(**{
                name: [bindparam(f"{name}_{i}") for i in range(_padded(len(values[name])))]
                for name in statement._lists}), None, dialect)
        return compiled, named

    monkeypatch.setattr(statements._Compiled, "args", both)
    monkeypatch.setattr(statements.Insert, "prepare", kept)
    monkeypatch.setattr(statements.Statement, "prepare", built)
    portal_id = await _portal(database)
    blobs = LocalBlobStore(tmp_path / "blobs")
    outcomes: dict[IngestOutcome, int] = {}
    for path in SAMPLES:
        prepared = await pipeline.prepare(path.read_bytes())

        async def work(session: AsyncSession, prepared: Any = prepared) -> Any:
            portal = await session.get(Portal, portal_id)
            assert portal is not None
            return await pipeline.ingest(
                session, portal=portal, prepared=prepared, blobs=blobs, bcc_domain="bcc.test",
                envelope=Envelope(source_hint=Source.EXTENSION, on_behalf_of="rep@ourco.example"))

        result = await database.run(work)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    logged = outcomes.get(IngestOutcome.LOGGED, 0)
    assert logged >= 0.9 * len(SAMPLES), outcomes
    assert sum(checked.values()) >= logged, checked
