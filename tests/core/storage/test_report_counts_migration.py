"""Migration 0022 computes the kept report rows of every existing ticket (figures,
values, assignments, channel) as writing them would have, drops a merged ticket's old
figures, and goes down and up again, on both backends."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text

from core import accounts
from core.storage.db import Database, migrate
from tests.support.migrations import downgrade_to, rows
from tests.support.ticket_rows import Step, team_inbox, ticket

BERLIN = ZoneInfo("Europe/Berlin")
_KEPT = {
    "ticket_figures": "SELECT ticket_id, portal_id, team_inbox_id, channel, status,"
                      " assignee_user_id, first_response, next_responses FROM ticket_figures"
                      " ORDER BY ticket_id",
    "ticket_figure_values": "SELECT ticket_id, metric, position, micros FROM"
                            " ticket_figure_values ORDER BY ticket_id, metric, position",
    "ticket_assignments": "SELECT ticket_id, position, user_id FROM ticket_assignments"
                          " ORDER BY ticket_id, position",
}


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=BERLIN)


async def test_existing_tickets_get_their_rows(unmigrated: Database) -> None:
    await migrate(unmigrated)
    async with unmigrated.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        agent = (await accounts.add_user(session, portal, "ana@p.example")).user.id
        inbox = await team_inbox(session, portal, "support", time_zone="Europe/Berlin",
                                 hours={"mon": [["09:00", "17:00"]]}, users=[agent])
        kept = await ticket(session, portal, inbox, at(23, 9), [
            Step("assigned", at(23, 9), f"user:{agent}"), Step("agent_reply", at(23, 10)),
            Step("customer_message", at(23, 11)), Step("agent_reply", at(23, 12))],
            channel="sync", assignee=agent)
        await ticket(session, portal, inbox, at(23, 9), status="closed", merged_into=kept)
    written = {table: await rows(unmigrated, sql) for table, sql in _KEPT.items()}
    assert written["ticket_figures"] == [
        (kept, portal, inbox, "sync", "open", agent, 3600.0, "3600.0")]
    assert written["ticket_figure_values"] == [(kept, 1, 0, 3600 * 10**6),
                                              (kept, 3, 0, 3600 * 10**6)]
    assert written["ticket_assignments"] == [(kept, 0, agent)]
    await downgrade_to(unmigrated, "0021")
    async with unmigrated.write_engine.begin() as conn:
        # Before 0022, only what a report had stored: one stale row, one merged ticket's.
        await conn.execute(text("DELETE FROM ticket_figures"))
        await conn.execute(text(
            "INSERT INTO ticket_figures (ticket_id, as_of_activity_id, hours_key,"
            " first_response, reopen_first_responses, next_responses) VALUES"
            f" ({kept + 1}, 0, 'old', 5.0, '', '')"))
    await migrate(unmigrated)
    assert {table: await rows(unmigrated, sql) for table, sql in _KEPT.items()} == written
