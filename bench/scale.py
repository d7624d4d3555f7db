"""Reply-ingest latency with 1,000,000 emails already stored vs an empty database.

Both cases run the same workload through SMTP, one message at a time: 50 outgoing
BCC'd emails, then 50 replies to them arriving through a user's forwarding rule (the
privacy rule makes each one look up its thread by In-Reply-To). The figure is the
median DATA latency of the replies. The million rows are loaded with bulk SQL, with
their threads, thread references, sources and contacts, before the server starts.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from bench.common import (
    Row,
    Server,
    drop_pg_database,
    median,
    new_pg_database,
    pg_available,
    running,
)
from bench.load import small_message
from bench.smtpclient import Session

USER = "rep@ourco.example"
EMAILS = 1_000_000
REPLIES = 50
CONTACTS = 50_000  # emails per contact: 20
COMPANIES = 5_000

# One statement per table; {n} emails, {c} contacts, {k} companies, offsets in {..._base}.
# SQLite reads the sequence from a temporary table, PostgreSQL from generate_series.
_SQLITE = [
    "INSERT INTO companies (id, portal_id, domain, name, created_at) "
    "SELECT {company_base} + i, {portal}, printf('co%d.example', i), printf('Company %d', i), "
    "'2025-01-01 00:00:00.000000' FROM seq WHERE i < {k}",
    "INSERT INTO contacts (id, portal_id, email, name, company_id, created_at) "
    "SELECT {contact_base} + i, {portal}, printf('c%d@co%d.example', i, i % {k}), "
    "printf('Contact %d', i), {company_base} + i % {k}, '2025-01-01 00:00:00.000000' "
    "FROM seq WHERE i < {c}",
    "INSERT INTO threads (id, portal_id, subject, created_at) "
    "SELECT {thread_base} + i, {portal}, printf('Deal talk %d', i), "
    "'2025-01-01 00:00:00.000000' FROM seq WHERE i < {n} / 2",
    "INSERT INTO emails (id, portal_id, message_id, synthetic_message_id, thread_id, "
    "thread_reason, direction, user_id, from_email, from_name, \"to\", cc, subject, sent_at, "
    "text, html, size, parse_notes, created_at, deleted_at) "
    "SELECT {email_base} + i, {portal}, printf('bulk-%d@bench.example', i), 0, "
    "{thread_base} + i / 2, CASE i % 2 WHEN 0 THEN 'new' ELSE 'in_reply_to' END, "
    "CASE i % 2 WHEN 0 THEN 'outgoing' ELSE 'incoming' END, {user}, "
    "'rep@ourco.example', 'Rita Rep', "
    "printf('[{{\"email\": \"c%d@co%d.example\", \"name\": \"\"}}]', i % {c}, i % {c} % {k}), "
    "'[]', printf('Deal talk %d', i / 2), "
    "strftime('%Y-%m-%d %H:%M:%S.000000', 1700000000 + i * 60, 'unixepoch'), "
    "'Hello, here are the figures we discussed. Best, Rita', '', 4096, '[]', "
    "'2025-01-01 00:00:00.000000', NULL FROM seq WHERE i < {n}",
    "INSERT INTO email_sources (email_id, source, created_at) "
    "SELECT {email_base} + i, 'bcc', '2025-01-01 00:00:00.000000' FROM seq WHERE i < {n}",
    "INSERT INTO email_contacts (email_id, contact_id) "
    "SELECT {email_base} + i, {contact_base} + i % {c} FROM seq WHERE i < {n}",
    "INSERT INTO thread_refs (id, portal_id, message_id, thread_id) "
    "SELECT {ref_base} + i, {portal}, printf('bulk-%d@bench.example', i), {thread_base} + i / 2 "
    "FROM seq WHERE i < {n}",
]

_PG = [
    "INSERT INTO companies (id, portal_id, domain, name, created_at) "
    "SELECT {company_base} + i, {portal}, 'co' || i || '.example', 'Company ' || i, now() "
    "FROM generate_series(0, {k} - 1) i",
    "INSERT INTO contacts (id, portal_id, email, name, company_id, created_at) "
    "SELECT {contact_base} + i, {portal}, 'c' || i || '@co' || i % {k} || '.example', "
    "'Contact ' || i, {company_base} + i % {k}, now() FROM generate_series(0, {c} - 1) i",
    "INSERT INTO threads (id, portal_id, subject, created_at) "
    "SELECT {thread_base} + i, {portal}, 'Deal talk ' || i, now() "
    "FROM generate_series(0, {n} / 2 - 1) i",
    "INSERT INTO emails (id, portal_id, message_id, synthetic_message_id, thread_id, "
    "thread_reason, direction, user_id, from_email, from_name, \"to\", cc, subject, sent_at, "
    "text, html, size, parse_notes, created_at, deleted_at) "
    "SELECT {email_base} + i, {portal}, 'bulk-' || i || '@bench.example', false, "
    "{thread_base} + i / 2, CASE i % 2 WHEN 0 THEN 'new' ELSE 'in_reply_to' END, "
    "CASE i % 2 WHEN 0 THEN 'outgoing' ELSE 'incoming' END, {user}, "
    "'rep@ourco.example', 'Rita Rep', json_build_array(json_build_object("
    "'email', 'c' || i % {c} || '@co' || i % {c} % {k} || '.example', 'name', '')), "
    "'[]'::json, 'Deal talk ' || i / 2, to_timestamp(1700000000 + i * 60), "
    "'Hello, here are the figures we discussed. Best, Rita', '', 4096, '[]'::json, now(), NULL "
    "FROM generate_series(0, {n} - 1) i",
    "INSERT INTO email_sources (email_id, source, created_at) "
    "SELECT {email_base} + i, 'bcc', now() FROM generate_series(0, {n} - 1) i",
    "INSERT INTO email_contacts (email_id, contact_id) "
    "SELECT {email_base} + i, {contact_base} + i % {c} FROM generate_series(0, {n} - 1) i",
    "INSERT INTO thread_refs (id, portal_id, message_id, thread_id) "
    "SELECT {ref_base} + i, {portal}, 'bulk-' || i || '@bench.example', {thread_base} + i / 2 "
    "FROM generate_series(0, {n} - 1) i",
]
# Ids are given explicitly; move PostgreSQL's sequences past them.
_PG_SEQUENCES = ["companies", "contacts", "threads", "emails", "thread_refs"]
_BASE = 10_000_000  # far above anything the server creates before the load


def _params(portal: int, user: int, n: int) -> dict[str, int]:
    return {"portal": portal, "user": user, "n": n, "c": CONTACTS, "k": COMPANIES,
            "company_base": _BASE, "contact_base": _BASE, "thread_base": _BASE,
            "email_base": _BASE, "ref_base": _BASE}


def populate_sqlite(path: Path, portal: int, user: int, n: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.execute("CREATE TEMP TABLE seq (i INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO seq WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL "
                     "SELECT i + 1 FROM s WHERE i + 1 < ?) SELECT i FROM s",
                     (max(n, CONTACTS),))
        for statement in _SQLITE:
            conn.execute(statement.format(**_params(portal, user, n)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def populate_postgres(url: str, portal: int, user: int, n: int) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            for statement in _PG:
                await conn.execute(statement.format(**_params(portal, user, n)))
            for table in _PG_SEQUENCES:
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT max(id) FROM {table}))")
        # Autovacuum would have analyzed a table this size long before it got there.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _replies(server: Server, rcpt: str) -> list[float]:
    session = await Session.open("127.0.0.1", server.smtp_port)
    latencies = []
    try:
        originals = []
        for k in range(REPLIES):
            message_id = f"<{uuid.uuid4().hex}@bench.example>"
            data = small_message(USER, f"scale{k}@prospect.example", k, message_id=message_id)
            reply = await session.send(USER, [rcpt], data)
            assert reply.code == 250 and "logged" in reply.text, reply
            originals.append(message_id)
        for k, parent in enumerate(originals):
            data = small_message(f"scale{k}@prospect.example", USER, k, in_reply_to=parent)
            # A forwarding rule: the envelope sender is the user, From is the contact.
            reply = await session.send(USER, [rcpt], data)
            assert reply.code == 250 and " logged " in f" {reply.text} ", reply
            latencies.append(reply.seconds)
    finally:
        await session.quit()
    return latencies


def _case(data_dir: Path, n: int, db_url: str = "") -> tuple[float, float]:
    """(median reply latency in s, seconds spent loading the rows)."""
    server = Server(data_dir, db_url=db_url)
    account = server.new_portal(USER)  # migrates the database
    started = time.perf_counter()
    if n:
        if db_url:
            asyncio.run(populate_postgres(db_url, account.portal_id, account.user_id, n))
        else:
            populate_sqlite(data_dir / "inboxlog.db", account.portal_id, account.user_id, n)
    loading = time.perf_counter() - started
    with running(server):
        return median(asyncio.run(_replies(server, account.bcc_address))), loading


def _rows(backend: str, empty: float, full: float, loading: float) -> list[Row]:
    return [Row("scale", f"{backend}: reply ingest median, {EMAILS:,} emails stored "
                f"(loaded in {loading:.0f} s)", full * 1000, empty * 1000, "ms",
                "empty database", "ratio < 1.5", full / empty < 1.5)]


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        empty, _ = _case(Path(tmp) / "sqlite-empty", 0)
        full, loading = _case(Path(tmp) / "sqlite-full", EMAILS)
        rows += _rows("sqlite", empty, full, loading)
        if pg_available():
            urls = [new_pg_database(), new_pg_database()]
            try:
                empty, _ = _case(Path(tmp) / "pg-empty", 0, urls[0])
                full, loading = _case(Path(tmp) / "pg-full", EMAILS, urls[1])
                rows += _rows("postgresql", empty, full, loading)
            finally:
                for url in urls:
                    drop_pg_database(url)
    return rows
