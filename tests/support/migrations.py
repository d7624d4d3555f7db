"""Tests of one migration: bring an empty database up to a given revision."""

from __future__ import annotations

from typing import Any

from core.storage.db import Database, _alembic_config


async def upgrade_to(db: Database, revision: str) -> None:
    """Run the Alembic migrations of ``db`` up to ``revision`` (and no further)."""
    from alembic import command

    def upgrade(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), revision)

    async with db.write_engine.begin() as conn:
        await conn.run_sync(upgrade)
