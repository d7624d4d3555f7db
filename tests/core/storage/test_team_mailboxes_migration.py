"""The team-mailbox migration (0021) keeps every connected inbox and its sync
checkpoints (SQLite's rebuild of inboxes would have cascaded them away), lets a team
inbox own a mailbox instead of a user (exactly one of the two), on both backends, and
goes back down (dropping only team mailboxes) and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.storage.db import Database, migrate
from tests.support.migrations import downgrade_to, rows, upgrade_to

_NOW = "'2026-12-01 10:00:00'"
_INBOX = ("INSERT INTO inboxes (id, portal_id, user_id, {extra}address, imap_host, imap_port,"
          " imap_security, smtp_host, smtp_port, smtp_security, username, secret, auth,"
          " oauth_provider, first_sync_days, status, status_reason, status_code, created_at)"
          " VALUES ({id}, 1, {user}, {extra_value}'{address}', 'imap.x', 993, 'ssl', 'smtp.x',"
          " 465, 'ssl', 'u', 's', 'password', '', 30, 'connected', '', '', " + _NOW + ")")


async def test_inboxes_and_checkpoints_survive_and_team_inboxes_own_mailboxes(
        unmigrated: Database) -> None:
    await upgrade_to(unmigrated, "0020")
    async with unmigrated.write_engine.begin() as conn:
        for sql in (
            "INSERT INTO portals (id, name, bcc_token, log_attachments, auto_create_contacts,"
            f" never_log, created_at, sender_auth) VALUES (1, 'P', 'tok', true, true, '[]',"
            f" {_NOW}, 'monitor')",
            f"INSERT INTO users (id, portal_id, email, name, created_at) VALUES (1, 1,"
            f" 'rita@x.example', 'Rita', {_NOW})",
            _INBOX.format(id=5, user=1, extra="", extra_value="", address="rita@x.example"),
            "INSERT INTO inbox_folders (id, inbox_id, role, name, uidvalidity, last_uid,"
            " error) VALUES (9, 5, 'inbox', 'INBOX', 77, 1234, '')",
            "INSERT INTO team_inboxes (id, portal_id, name, address, token, time_zone,"
            " business_hours, auto_acknowledge, ack_text, signature, sender_hourly_limit,"
            " default_pipeline, default_stage, created_at) VALUES (3, 1, 'Support', '',"
            f" 'tt', 'UTC', '{{}}', false, '', '', 30, 'support', 'new', {_NOW})",
        ):
            await conn.execute(text(sql))
    await migrate(unmigrated)
    assert await rows(unmigrated, "SELECT id, user_id, team_inbox_id FROM inboxes") == [
        (5, 1, None)]
    assert await rows(unmigrated, "SELECT id, inbox_id, last_uid FROM inbox_folders") == [
        (9, 5, 1234)]
    async with unmigrated.write_engine.begin() as conn:
        await conn.execute(text(_INBOX.format(
            id=6, user="NULL", extra="team_inbox_id, ", extra_value="3, ",
            address="support@x.example")))
    for user, team in (("NULL", "NULL"), ("1", "3")):  # neither, or both: refused
        with pytest.raises(IntegrityError):
            async with unmigrated.write_engine.begin() as conn:
                await conn.execute(text(_INBOX.format(
                    id=7, user=user, extra="team_inbox_id, ", extra_value=f"{team}, ",
                    address="other@x.example")))
    async with unmigrated.write_engine.begin() as conn:
        await conn.execute(text("DELETE FROM team_inboxes WHERE id = 3"))
    assert await rows(unmigrated, "SELECT id FROM inboxes") == [(5,)]  # gone with it
    await downgrade_to(unmigrated, "0020")
    assert await rows(unmigrated, "SELECT id, inbox_id, last_uid FROM inbox_folders") == [
        (9, 5, 1234)]
    await migrate(unmigrated)
    assert await rows(unmigrated, "SELECT id, inbox_id, last_uid FROM inbox_folders") == [
        (9, 5, 1234)]
