"""A throw-away PostgreSQL database per test run, on the server `make test` started."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.server import Server

ROOT = Path(__file__).resolve().parents[2]


def admin_url() -> str:
    """The SQLAlchemy URL of the test superuser; starts PostgreSQL when not given."""
    url = os.environ.get("INBOXLOG_TEST_PG_URL")
    if url:
        return url
    result = subprocess.run(
        [str(ROOT / "scripts" / "postgres-for-tests.sh")],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not start PostgreSQL for the tests:\n{result.stderr}")
    url = result.stdout.strip()
    os.environ["INBOXLOG_TEST_PG_URL"] = url
    return url


def _dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


def url_for(database: str) -> str:
    return admin_url().rsplit("/", 1)[0] + "/" + database


async def create_database() -> str:
    """Create a fresh database and return its SQLAlchemy URL."""
    name = "inboxlog_test_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url_for(name)


@contextmanager
def database_for(backend: str) -> Iterator[str]:
    """For a test run on each backend: a fresh PostgreSQL database's URL when ``backend``
    is "postgres" (dropped afterwards), else "" (the server's own SQLite)."""
    url = asyncio.run(create_database()) if backend == "postgres" else ""
    try:
        yield url
    finally:
        if url:
            asyncio.run(drop_database(url))


@contextmanager
def inboxlog_server(folder: Path, extra_args: tuple[str, ...] = (),
                    **options: Any) -> Iterator[Server]:
    """`inboxlog serve` (tests.support.server.Server, ``options`` its own) in ``folder``,
    on a fresh PostgreSQL database of its own; stopped and dropped afterwards."""
    with database_for("postgres") as url:
        running = Server(folder, url, extra_args, **options).start()
        try:
            yield running
        finally:
            running.stop()


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def set_available(url: str, available: bool) -> None:
    """Cut a database off (existing sessions killed, new ones refused) or restore it."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if available else "false"}'
        )
        if not available:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", name,
            )
    finally:
        await conn.close()
