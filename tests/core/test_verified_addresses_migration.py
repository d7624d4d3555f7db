"""The verified-addresses migration: every address that existed (the operator's aliases,
`admin add-user --alias`) stays the user's, confirmed; on both backends."""

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


async def test_existing_aliases_are_confirmed(empty: Database) -> None:
    await _upgrade_to(empty, "0010")
    async with empty.transaction() as session:
        created = await accounts.create_portal(session, "Old")
        portal_id = created.portal.id
    async with empty.write_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO users (portal_id, email, name, created_at) VALUES "
            f"({portal_id}, 'rita@old.example', 'Rita', CURRENT_TIMESTAMP)"))
        user_id = (await conn.execute(text("SELECT id FROM users"))).scalar_one()
        for address in ("rita@old.example", "rita@alias.example"):
            await conn.execute(text(
                "INSERT INTO user_addresses (portal_id, user_id, address) VALUES "
                f"({portal_id}, {user_id}, '{address}')"))
    await migrate(empty)
    async with empty.read() as session:
        users = await accounts.users_by_address(session, portal_id)
    assert sorted(users) == ["rita@alias.example", "rita@old.example"]
