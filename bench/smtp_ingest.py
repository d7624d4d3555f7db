"""SMTP ingest throughput: 5,000 messages of ~4 KB over 20 parallel sessions.

Baseline: a bare aiosmtpd that accepts and discards, in a subprocess on this machine.
Measured: `inboxlog serve` on SQLite and on PostgreSQL (when available), each a fresh
server with one portal; every message is a BCC'd outgoing email to one of 200 contacts.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.common import (
    Row,
    Server,
    bare_smtpd,
    drop_pg_database,
    new_pg_database,
    percentile,
    pg_available,
    running,
)
from bench.load import LoadResult, load, make_messages

MESSAGES = 5000
SESSIONS = 20
PER_SESSION = 25
WARMUP = 100
USER = "rep@ourco.example"


def _contact(n: int) -> str:
    return f"buyer{n % 200}@acme{n % 20}.example"


def _measure(port: int, rcpt: str) -> LoadResult:
    async def both() -> LoadResult:
        await load(port, USER, rcpt, make_messages(WARMUP, USER, _contact),
                   sessions=SESSIONS, per_session=PER_SESSION)
        return await load(port, USER, rcpt, make_messages(MESSAGES, USER, _contact),
                          sessions=SESSIONS, per_session=PER_SESSION)
    return asyncio.run(both())


def _inboxlog(data_dir: Path, db_url: str = "") -> LoadResult:
    with running(Server(data_dir, db_url=db_url)) as server:
        account = server.new_portal(USER)
        return _measure(server.smtp_port, account.bcc_address)


def _rows(name: str, result: LoadResult, bare: LoadResult, *, goal: bool) -> list[Row]:
    failed = sum(v for k, v in result.codes.items() if k != 250)
    assert not failed, f"{name}: replies other than 250: {result.codes}"
    ratio = result.rate / bare.rate
    return [
        Row("smtp ingest", f"{name}: messages/s", result.rate, bare.rate, "msg/s", "bare aiosmtpd",
            "ratio >= 0.5" if goal else "", (ratio >= 0.5) if goal else None),
        Row("smtp ingest", f"{name}: DATA p50", percentile(result.latencies, 50) * 1000,
            percentile(bare.latencies, 50) * 1000, "ms", "bare aiosmtpd"),
        Row("smtp ingest", f"{name}: DATA p99", percentile(result.latencies, 99) * 1000,
            percentile(bare.latencies, 99) * 1000, "ms", "bare aiosmtpd"),
    ]


def run() -> list[Row]:
    with bare_smtpd() as (port, _):
        bare = _measure(port, "anyone@bare.test")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        rows = _rows("sqlite", _inboxlog(Path(tmp) / "sqlite"), bare, goal=True)
        if pg_available():
            url = new_pg_database()
            try:
                rows += _rows("postgresql", _inboxlog(Path(tmp) / "pg", url), bare, goal=False)
            finally:
                drop_pg_database(url)
    return rows
