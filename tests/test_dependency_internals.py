"""The private parts of aiosmtpd and SQLAlchemy that inboxlog relies on still exist with
the shapes it assumes. pyproject.toml bounds both below their next minor release; a
release past the bound is admitted when this file passes against it.

- ``smtp_ingest.server.InboxlogSMTP.smtp_DATA`` replaces aiosmtpd's DATA and calls its
  private ``_call_handler_hook`` and ``_set_post_data_state``, reads ``_reader`` and
  ``_writer``, and rewrites one of aiosmtpd's reply texts.
- ``core.storage._inline_sqlite.InlineConnection`` stands in for an aiosqlite
  connection under SQLAlchemy's aiosqlite dialect, which reads aiosqlite's private
  ``_conn``, ``_connection`` and ``_tx``.
"""

from __future__ import annotations

import ast
import inspect
import re
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import aiosqlite as sqlalchemy_aiosqlite
from sqlalchemy.engine.interfaces import BindTyping

from core.storage import _inline_sqlite
from core.storage.db import _make_engine
from smtp_ingest import server


def _tree(thing: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(thing)))


def _self_attributes_assigned(cls: type) -> set[str]:
    """Every ``self.X`` that a method of ``cls`` assigns."""
    names = set()
    for node in ast.walk(_tree(cls)):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign)
                   else [])
        for target in targets:
            if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self"):
                names.add(target.attr)
    return names


def _read_through(cls: type, holder: str) -> set[str]:
    """Every name read as ``self.<holder>.X`` in ``cls`` and the SQLAlchemy classes it
    derives from."""
    names = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("sqlalchemy."):
            continue
        for node in ast.walk(_tree(klass)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == holder and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"):
                names.add(node.attr)
    return names


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


# --- aiosmtpd --------------------------------------------------------------------------

def test_aiosmtpd_keeps_the_private_methods_our_data_command_calls() -> None:
    """``_call_handler_hook(command, *args)`` is awaited, ``_set_post_data_state()`` not."""
    hook = SMTP._call_handler_hook
    assert inspect.iscoroutinefunction(hook)
    assert _parameters(hook) == ["self", "command", "args"]
    assert inspect.signature(hook).parameters["args"].kind is inspect.Parameter.VAR_POSITIONAL
    reset = SMTP._set_post_data_state
    assert not inspect.iscoroutinefunction(reset)
    assert _parameters(reset) == ["self"]


def test_aiosmtpd_keeps_the_public_methods_our_data_command_calls() -> None:
    """The checks before DATA and ``push`` are still coroutines with these parameters."""
    for name, parameters in [("check_helo_needed", ["self", "helo"]),
                             ("check_auth_needed", ["self", "caller_method"]),
                             ("push", ["self", "status"])]:
        method = getattr(SMTP, name)
        assert inspect.iscoroutinefunction(method), name
        assert _parameters(method) == parameters, name
    assert callable(aiosmtpd_smtp.syntax)
    assert aiosmtpd_smtp.MISSING is not None


def test_aiosmtpd_sets_the_attributes_our_data_command_reads() -> None:
    """The stream reader and writer, the envelope, the handler and the size limit."""
    assigned = _self_attributes_assigned(SMTP)
    for name in ["_reader", "_writer", "envelope", "event_handler", "transport",
                 "data_size_limit"]:
        assert name in assigned, name
    assert isinstance(SMTP.line_length_limit, int)  # a class attribute we override
    envelope = Envelope()
    for name in ["content", "original_content", "rcpt_tos", "mail_from"]:
        assert hasattr(envelope, name), name


def test_the_data_command_we_replace_still_does_what_ours_copies() -> None:
    """aiosmtpd's own DATA gives the replies ours gives and ends the way ours ends."""
    assert getattr(SMTP.smtp_DATA, "__smtp_syntax__", None) == "DATA"
    assert getattr(server.InboxlogSMTP.smtp_DATA, "__smtp_syntax__", None) == "DATA"
    source = inspect.getsource(SMTP.smtp_DATA)
    for reply in ["503 Error: need RCPT command", "501 Syntax: DATA",
                  "354 End data with <CR><LF>.<CR><LF>", "250 OK"]:
        assert reply in source, reply
    assert re.search(r"""self\._call_handler_hook\(['"]DATA['"]\)""", source)
    assert "self._set_post_data_state()" in source
    assert "self.envelope.content = " in source
    assert "self.envelope.original_content = " in source
    assert "self._reader.readuntil(" in source


def test_the_reply_texts_we_rewrite_are_aiosmtpds_own() -> None:
    """A reworded aiosmtpd reply would slip past the rewrite to enhanced status codes."""
    strings = {node.value for node in ast.walk(_tree(aiosmtpd_smtp))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    for reply in server._REWRITES:
        assert reply in strings, reply


def test_the_server_is_built_with_arguments_aiosmtpd_accepts() -> None:
    """Every keyword ``start_smtp_server`` passes is a parameter of aiosmtpd's SMTP."""
    calls = [node for node in ast.walk(_tree(server.start_smtp_server))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == "InboxlogSMTP"]
    assert len(calls) == 1
    passed = {keyword.arg for keyword in calls[0].keywords}
    assert passed
    assert passed <= set(_parameters(SMTP.__init__))


# --- SQLAlchemy and aiosqlite ----------------------------------------------------------

@pytest.fixture
def inline_connection() -> Iterator[_inline_sqlite.InlineConnection]:
    connection = sqlite3.connect(":memory:")
    try:
        yield _inline_sqlite.InlineConnection(connection)
    finally:
        connection.close()


def test_the_dialect_reads_only_what_the_inline_connection_has(
    inline_connection: _inline_sqlite.InlineConnection,
) -> None:
    """Each name SQLAlchemy's aiosqlite adapter reads on the driver connection exists."""
    read = _read_through(sqlalchemy_aiosqlite.AsyncAdapt_aiosqlite_connection, "_connection")
    assert {"_conn", "_connection", "_tx"} <= read  # the private names it imitates
    assert {name for name in read if not hasattr(inline_connection, name)} == set()
    source = inspect.getsource(sqlalchemy_aiosqlite.AsyncAdapt_aiosqlite_connection)
    assert "self._connection._tx.put_nowait((future, function))" in source


# Cursor methods the engine never reaches on SQLite, so the stand-in leaves them out.
_NEVER_CALLED = {
    "nextset": "only a caller of the raw DBAPI cursor asks for another result set",
    "setinputsizes": "the SQLite dialects bind no input sizes (BindTyping.NONE)",
}


def test_the_dialect_reads_only_what_the_inline_cursor_has(
    inline_connection: _inline_sqlite.InlineConnection,
) -> None:
    """Each cursor name SQLAlchemy's adapter reads exists, or is one it never reaches."""
    assert sqlalchemy_aiosqlite.SQLiteDialect_aiosqlite.bind_typing is BindTyping.NONE
    read = _read_through(sqlalchemy_aiosqlite.AsyncAdapt_aiosqlite_cursor, "_cursor")
    cursor = inline_connection.cursor()
    assert {name for name in read if not hasattr(cursor, name)} <= set(_NEVER_CALLED)
    assert hasattr(cursor, "__aenter__")  # the adapter enters each new cursor


def test_the_names_we_imitate_are_aiosqlites() -> None:
    """aiosqlite's Connection still has ``_conn``, ``_connection`` and a ``_tx`` queue
    taking (future, function) pairs, the shape ``InlineConnection._tx`` takes."""
    assert isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn"), property)
    assigned = _self_attributes_assigned(aiosqlite.Connection)
    assert {"_connection", "_tx"} <= assigned
    assert "self._tx.put_nowait((future, function))" in inspect.getsource(aiosqlite.Connection)


async def test_an_inline_engine_runs_transactions_through_the_dialect(tmp_path: Path) -> None:
    """Connect (the isolation level set through ``_tx``), commit, roll back, read."""
    engine = _make_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}",
                          immediate=True, inline=True)
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, _inline_sqlite.InlineConnection)
            assert raw.driver_connection.isolation_level is None
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
                raise RuntimeError("roll back")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT v FROM t"))).all()
        assert [tuple(row) for row in rows] == [(1,)]
    finally:
        await engine.dispose()
