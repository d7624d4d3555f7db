"""The sender_auth migration: portals that existed keep logging (monitor), new ones
enforce; on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core import accounts
from core.db import Database, _alembic_config, migrate
from tests.support import postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def empty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (f"sqlite+aiosqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite"
           else await postgres.create_database())
    db = Database(url)
    yield db
    await db.dispose()
    if request.param == "postgres":
        await postgres.drop_database(url)


async def _upgrade_to(db: Database, revision: str) -> None:
    from alembic import command

    def upgrade(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), revision)

    async with db.write_engine.begin() as conn:
        await conn.run_sync(upgrade)


async def test_existing_portals_monitor_and_new_portals_enforce(empty: Database) -> None:
    await _upgrade_to(empty, "0007")
    async with empty.write_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO portals (name, bcc_token, log_attachments, auto_create_contacts, "
            "never_log, created_at) VALUES ('Old', 'old-token', true, true, '[]', "
            "CURRENT_TIMESTAMP)"))
    await migrate(empty)
    async with empty.transaction() as session:
        await accounts.create_portal(session, "New")
    async with empty.write_engine.connect() as conn:
        rows: dict[str, str] = dict(
            (await conn.execute(text("SELECT name, sender_auth FROM portals"))).all())
        assert rows == {"Old": "monitor", "New": "enforce"}
        assert (await conn.execute(text("SELECT auth FROM emails"))).all() == []
