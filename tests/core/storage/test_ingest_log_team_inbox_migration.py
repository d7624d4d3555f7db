"""Migration 0023 gives the ingest-log entries the old patterns attribute to a team
inbox (its ``<token>@`` or ``+inbox-<id>@`` address) that inbox's id, in its portal
only; the rest stay unattributed (core.audit's old patterns); down and up again, on
both backends."""

from __future__ import annotations

from sqlalchemy import text

from core import accounts
from core.storage.db import Database, migrate
from core.tickets import inboxes
from tests.support.migrations import downgrade_to


async def test_entries_of_a_team_inbox_get_its_id(unmigrated: Database) -> None:
    await migrate(unmigrated)
    async with unmigrated.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        other = (await accounts.create_portal(session, "Q")).portal.id
        inbox = await inboxes.create_inbox(session, portal, inboxes.InboxChange(
            name="Support"))
        inbox_id, token = inbox.id, inbox.token
    await downgrade_to(unmigrated, "0022")
    rows = {  # label: (portal, logging address, source)
        "token": (portal, f"{token.upper()}@bcc.example", "team_inbox"),
        "tag": (portal, f"abc+inbox-{inbox_id}@bcc.example", "rule"),
        "synced": (portal, "support@ourco.example", "sync"),  # not recognisable
        "user": (portal, "abc@bcc.example", "bcc"),
        "elsewhere": (other, f"xyz+inbox-{inbox_id}@bcc.example", "rule"),
    }
    async with unmigrated.write_engine.begin() as conn:
        for label, (portal_id, address, source) in rows.items():
            await conn.execute(text(
                "INSERT INTO ingest_log (portal_id, at, logging_address, sender,"
                " envelope_sender, message_id, source, reason_code, reason, size) VALUES"
                " (:p, CURRENT_TIMESTAMP, :a, :s, '', NULL, :src, 'too_large', 'x', 0)"),
                {"p": portal_id, "a": address, "s": label, "src": source})
    await migrate(unmigrated)

    async def attributed() -> dict[str, int | None]:
        async with unmigrated.write_engine.begin() as conn:
            return {r[0]: r[1] for r in await conn.execute(text(
                "SELECT sender, team_inbox_id FROM ingest_log"))}

    assert await attributed() == {"token": inbox_id, "tag": inbox_id, "synced": None,
                                  "user": None, "elsewhere": None}
    await downgrade_to(unmigrated, "0022")
    await migrate(unmigrated)
    assert (await attributed())["tag"] == inbox_id
