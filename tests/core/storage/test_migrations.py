"""Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.storage.db import Database, migrate
from core.storage.models import Base
from core.storage.models.base import described_by_models


async def test_migrations_match_models(database: Database) -> None:
    """After `migrate`, autogenerate finds no difference between models and database."""

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True,
                                                          "include_name": described_by_models})
        return compare_metadata(context, Base.metadata)

    async with database.write_engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_migrate_is_idempotent(database: Database) -> None:
    """Running migrate on an up-to-date database changes nothing and does not fail."""
    await migrate(database)
    await migrate(database)
