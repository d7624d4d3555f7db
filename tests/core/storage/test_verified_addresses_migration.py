"""The verified-addresses migration: every address that existed (the operator's aliases,
`admin add-user --alias`) stays the user's, confirmed; on both backends."""

from __future__ import annotations

from sqlalchemy import text

from core import accounts
from core.storage.db import Database, migrate
from tests.support.migrations import upgrade_to


async def test_existing_aliases_are_confirmed(unmigrated: Database) -> None:
    await upgrade_to(unmigrated, "0010")
    async with unmigrated.write_engine.begin() as conn:
        # Rows as revision 0010 had them: the models (and accounts.create_portal, which
        # writes an admin token) describe the newest revision.
        portal_id = (await conn.execute(text(
            "INSERT INTO portals (name, bcc_token, log_attachments, auto_create_contacts,"
            " never_log, created_at, sender_auth) VALUES ('Old', 'old-bcc', true, true, '[]',"
            " CURRENT_TIMESTAMP, 'off') RETURNING id"))).scalar_one()
        await conn.execute(text(
            "INSERT INTO users (portal_id, email, name, created_at) VALUES "
            f"({portal_id}, 'rita@old.example', 'Rita', CURRENT_TIMESTAMP)"))
        user_id = (await conn.execute(text("SELECT id FROM users"))).scalar_one()
        for address in ("rita@old.example", "rita@alias.example"):
            await conn.execute(text(
                "INSERT INTO user_addresses (portal_id, user_id, address) VALUES "
                f"({portal_id}, {user_id}, '{address}')"))
    await migrate(unmigrated)
    async with unmigrated.read() as session:
        users = await accounts.users_by_address(session, portal_id)
    assert sorted(users) == ["rita@alias.example", "rita@old.example"]
