"""The team-inbox migration (0016) keeps what existed: CRM tickets and every email's link
to its ticket (a rebuilt tickets table on SQLite would have cascaded them away), on
both backends, and back down and up again."""

from __future__ import annotations

from sqlalchemy import text

from core.storage.db import Database, migrate
from tests.support.migrations import downgrade_to, upgrade_to

_NOW = "'2026-11-30 10:00:00'"


async def _links(db: Database) -> list[tuple[int, int]]:
    async with db.write_engine.begin() as conn:
        rows = await conn.execute(text("SELECT email_id, ticket_id FROM email_tickets"))
        return [(a, b) for a, b in rows]


async def test_existing_tickets_and_their_emails_survive(unmigrated: Database) -> None:
    await upgrade_to(unmigrated, "0015")
    async with unmigrated.write_engine.begin() as conn:
        for sql in (
            "INSERT INTO portals (id, name, bcc_token, log_attachments, auto_create_contacts,"
            f" never_log, created_at, sender_auth) VALUES (1, 'P', 'tok', true, true, '[]',"
            f" {_NOW}, 'monitor')",
            f"INSERT INTO threads (id, portal_id, subject, created_at) VALUES (1, 1, 's', {_NOW})",
            "INSERT INTO emails (id, portal_id, message_id, synthetic_message_id, thread_id,"
            " thread_reason, direction, from_email, from_name, \"to\", cc, subject, sent_at,"
            " text, html, size, parse_notes, created_at) VALUES (1, 1, 'm@x.example', false,"
            f" 1, 'new', 'incoming', 'a@x.example', '', '[]', '[]', 's', {_NOW}, 't', '', 1,"
            f" '[]', {_NOW})",
            f"INSERT INTO tickets (id, portal_id, subject, created_at) VALUES (7, 1, 'Broken',"
            f" {_NOW})",
            "INSERT INTO email_tickets (email_id, ticket_id) VALUES (1, 7)",
        ):
            await conn.execute(text(sql))
    await migrate(unmigrated)
    assert await _links(unmigrated) == [(1, 7)]
    async with unmigrated.write_engine.begin() as conn:
        row = (await conn.execute(text(
            "SELECT subject, status, pipeline, priority, team_inbox_id FROM tickets"))).one()
    assert tuple(row) == ("Broken", "open", "support", "normal", None)
    await downgrade_to(unmigrated, "0015")
    assert await _links(unmigrated) == [(1, 7)]
    await migrate(unmigrated)
    assert await _links(unmigrated) == [(1, 7)]
