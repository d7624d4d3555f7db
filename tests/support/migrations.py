"""Tests of one migration: bring an empty database up to a given revision, down to
one, and read its rows as they are (no model in between)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.storage.db import Database, _alembic_config


async def upgrade_to(db: Database, revision: str) -> None:
    """Run the Alembic migrations of ``db`` up to ``revision`` (and no further)."""
    from alembic import command

    def upgrade(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), revision)

    async with db.write_engine.begin() as conn:
        await conn.run_sync(upgrade)


async def downgrade_to(db: Database, revision: str) -> None:
    """Run the Alembic migrations of ``db`` down to ``revision`` (which stays applied)."""
    from alembic import command

    def downgrade(sync_conn: Any) -> None:
        command.downgrade(_alembic_config(sync_conn), revision)

    async with db.write_engine.begin() as conn:
        await conn.run_sync(downgrade)


async def rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` reads, as tuples."""
    async with db.write_engine.begin() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]
