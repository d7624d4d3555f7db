"""`serve --db-connections N`: a node's PostgreSQL connections stay within N, split over
its workers, whatever the load; a budget the server cannot take is refused at start;
SQLite ignores it. Observed in the real server's pg_stat_activity while mail and API
calls arrive through the ports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from core.storage.connections import LISTENERS, room
from core.storage.listen import asyncpg_dsn
from tests.support import postgres
from tests.support.mail import deliver, message
from tests.support.pg_activity import ConnectionPeaks
from tests.support.server import PortalAccount, Server

BUDGET = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(tmp_path_factory.mktemp("db-connections"), (
            "--workers", "2", "--db-connections", str(BUDGET),
            "--api-rate-limit", "")) as running:
        yield running


def _burst(server: Server, account: PortalAccount) -> tuple[Counter[int], Counter[int]]:
    """20 SMTP sessions of 3 messages each and 20 API callers of 6 requests each, all
    at once; the SMTP DATA replies' and the API answers' codes."""

    def session(n: int) -> list[int]:
        with server.smtp() as conn:
            conn.ehlo("client.test")
            return [deliver(server, message(
                sender=account.user_email, to=f"buyer{n}-{i}@acme.example",
                message_id=f"<{uuid.uuid4().hex}@ourco.example>"),
                account.bcc_address, smtp=conn)[0] for i in range(3)]

    def caller(_: int) -> list[int]:
        with server.api(account.user_token) as client:
            return [client.get(path).status_code
                    for _ in range(3) for path in ("/api/v1/me", "/api/v1/events")]

    with ThreadPoolExecutor(40) as pool:
        sessions = [pool.submit(session, n) for n in range(20)]
        callers = [pool.submit(caller, n) for n in range(20)]
        return (Counter(code for job in sessions for code in job.result()),
                Counter(code for job in callers for code in job.result()))


def test_two_workers_never_hold_more_than_the_budget(server: Server) -> None:
    """Under 20 SMTP sessions and 20 API callers at once, `--workers 2 --db-connections
    16` holds at most 16 connections to its database, every message is logged (250) and
    every call answered (200): past its share a worker waits for a connection of its
    pools rather than opening one. Each worker's LISTEN connections are counted."""
    account = server.new_portal()
    with ConnectionPeaks(server.db_url) as sampler:
        smtp, api = _burst(server, account)
    assert smtp == {250: 60}, server.log()
    assert api == {200: 120}, server.log()
    assert sampler.samples > 10
    assert 2 * LISTENERS < sampler.peak <= BUDGET, sampler.by_name
    for worker in (0, 1):
        assert sampler.by_name[f"inboxlog serve worker {worker} listen"] == LISTENERS
        held = sum(n for name, n in sampler.by_name.items()
                   if name.startswith(f"inboxlog serve worker {worker} "))
        assert held <= BUDGET // 2, sampler.by_name


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INBOXLOG_")}
    return subprocess.run([sys.executable, "-m", "inboxlog.cli", "serve", "--no-demo", *args],
                          env={**clean, **env}, capture_output=True, text=True,
                          check=False, timeout=60)


def test_a_budget_the_server_cannot_take_is_refused_at_start(tmp_path: Path) -> None:
    """A budget above what PostgreSQL takes (max_connections less the superusers' and
    other clients' connections), or too small to give each worker its pools, is a usage
    error naming the numbers (exit 2), before anything is created: no table, no data
    directory. Also from INBOXLOG_DB_CONNECTIONS."""
    with postgres.database_for("postgres") as url:
        data = tmp_path / "data"
        env = {"INBOXLOG_DB": url, "INBOXLOG_DATA_DIR": str(data)}
        # Workers of at most 36 each (20 + 10 engine, 4 rate limits, 2 LISTEN), more
        # than the server takes in all (4 on a stock server: 144 of 97).
        workers = asyncio.run(room(url)).limit // 36 + 1
        result = _serve("--workers", str(workers), "--db-connections", "1000", env=env)
        assert result.returncode == 2, result.stderr
        assert (f"this node ({workers} worker(s)) may hold up to {36 * workers} "
                "connections") in result.stderr
        assert "max_connections" in result.stderr
        assert "superuser_reserved_connections" in result.stderr
        assert "Traceback" not in result.stderr
        result = _serve("--workers", "4", env={**env, "INBOXLOG_DB_CONNECTIONS": "20"})
        assert result.returncode == 2, result.stderr
        assert "--db-connections" in result.stderr
        assert "leave 5 each; a worker needs at least 7" in result.stderr
        assert not data.exists()

        async def tables() -> int:
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                return int(await conn.fetchval(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
            finally:
                await conn.close()

        assert asyncio.run(tables()) == 0


def test_sqlite_ignores_the_budget(tmp_path: Path) -> None:
    """On SQLite (no server to share; its engines are files of this process) the budget
    is ignored: a budget PostgreSQL would refuse still serves and logs mail."""
    running = Server(tmp_path / "sqlite", extra_args=("--db-connections", "1")).start()
    try:
        account = running.new_portal()
        code, text = deliver(running, message(sender=account.user_email,
                                              to="dana@acme.example"), account.bcc_address)
        assert code == 250 and "logged" in text
    finally:
        running.stop()
