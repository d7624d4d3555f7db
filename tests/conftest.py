"""Fixtures shared by the whole suite: servers and databases, real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.storage.db import Database, migrate
from tests.support import loopback_only, postgres
from tests.support.dns import DnsServer, running_dns
from tests.support.server import PortalAccount, Server
from tests.support.smtp_recorder import SmtpRecorder

# ``desk_server`` and ``desk`` (a team inbox on SQLite and on PostgreSQL), for the ticket
# tests; a module that defines its own ``desk`` uses that one.
pytest_plugins = ["tests.support.tickets"]


def pytest_configure(config: pytest.Config) -> None:
    """Tests reach loopback only: a connect anywhere else fails before a packet leaves."""
    del config
    loopback_only.install()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return postgres.admin_url()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `inboxlog serve` on SQLite for the session; tests isolate by portal."""
    running = Server(tmp_path_factory.mktemp("server")).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    """The test DNS server (NSD, tests/support/dns.py), once for the session."""
    with running_dns() as server:
        yield server


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpRecorder]:
    """The operator's SMTP relay (the SMTP test server, recording), one per module; a
    server sends through it with ``extra_args=relay.serve_args()``. (tests/pages has one
    for the session, for its session's server.)"""
    recorder = SmtpRecorder.relay(tmp_path_factory.mktemp("relay"))
    yield recorder
    recorder.stop()


@pytest.fixture
def account(server: Server) -> PortalAccount:
    """A fresh portal with one user on the shared server."""
    return server.new_portal()


@pytest.fixture(params=["sqlite", "postgres"])
async def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database on each backend, no schema yet (for tests of one migration)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        url = await postgres.create_database()
    db = Database(url)
    yield db
    await db.dispose()
    if request.param == "postgres":
        await postgres.drop_database(url)


@pytest.fixture
async def database(unmigrated: Database) -> Database:
    """A migrated, empty database on each backend."""
    await migrate(unmigrated)
    return unmigrated


@pytest.fixture
async def pg_database() -> AsyncIterator[Database]:
    """A migrated, empty database of its own in PostgreSQL (for writers racing there)."""
    url = await postgres.create_database()
    db = Database(url)
    await migrate(db)
    yield db
    await db.dispose()
    await postgres.drop_database(url)


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own on a database of its own in PostgreSQL."""
    with postgres.inboxlog_server(tmp_path / "pg-server") as running:
        yield running
