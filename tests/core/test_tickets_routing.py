"""Round-robin on PostgreSQL, where writers run at once: one new ticket of an inbox at a
time picks its agent (core.tickets.routing), so two concurrent writers never both take
the same next agent. (SQLite has one writer at a time: nothing to race.)"""

from __future__ import annotations

from core import accounts
from core.storage.db import Database
from core.storage.models import Ticket
from core.tickets import inboxes, routing
from core.tickets.rules import Facts
from tests.support.races import Hold, second_waits_for_first


async def _inbox(db: Database) -> tuple[int, list[int]]:
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "Desk")).portal
        agents = [(await accounts.add_user(session, portal.id, f"a{n}@desk.example")).user.id
                  for n in (1, 2)]
        inbox = await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
            name="Support", members=tuple(inboxes.Member(user_id=a) for a in agents)))
        return inbox.id, agents


async def _route(db: Database, inbox_id: int, hold: Hold | None = None) -> int | None:
    async with db.transaction() as session:
        inbox = await session.get(inboxes.TeamInbox, inbox_id)
        assert inbox is not None
        ticket = Ticket(portal_id=inbox.portal_id, subject="s", team_inbox_id=inbox.id)
        session.add(ticket)
        await session.flush()
        decision = await routing.route(session, inbox, ticket, Facts())
        await routing.apply(session, ticket, decision)
        if hold is not None:
            await hold.here()
        return decision.user_id


async def test_concurrent_routing_waits_for_the_first_pick(pg_database: Database) -> None:
    """While one transaction has picked an agent and not committed, a second waits for
    it, then picks the other agent."""
    inbox_id, agents = await _inbox(pg_database)
    first, second = await second_waits_for_first(
        lambda hold: _route(pg_database, inbox_id, hold),
        lambda: _route(pg_database, inbox_id), "the second pick")
    assert sorted([await first, await second]) == agents
