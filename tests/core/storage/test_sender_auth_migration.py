"""The sender_auth migration: portals that existed keep logging (monitor), new ones
enforce; on both backends."""

from __future__ import annotations

from sqlalchemy import text

from core import accounts
from core.storage.db import Database, migrate
from tests.support.migrations import upgrade_to


async def test_existing_portals_monitor_and_new_portals_enforce(unmigrated: Database) -> None:
    await upgrade_to(unmigrated, "0007")
    async with unmigrated.write_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO portals (name, bcc_token, log_attachments, auto_create_contacts, "
            "never_log, created_at) VALUES ('Old', 'old-token', true, true, '[]', "
            "CURRENT_TIMESTAMP)"))
    await migrate(unmigrated)
    async with unmigrated.transaction() as session:
        await accounts.create_portal(session, "New")
    async with unmigrated.write_engine.connect() as conn:
        rows: dict[str, str] = dict(
            (await conn.execute(text("SELECT name, sender_auth FROM portals"))).all())
        assert rows == {"Old": "monitor", "New": "enforce"}
        assert (await conn.execute(text("SELECT auth FROM emails"))).all() == []
