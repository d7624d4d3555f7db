"""core.reports on both backends (the HTTP tests run on SQLite): the same small fixture
gives the same figures on PostgreSQL, whose GROUP BY and CASE rules are stricter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core import accounts, reports
from core.storage.db import Database
from core.storage.models import TeamInbox, Ticket, TicketActivity
from tests.support.ticket_rows import Step, team_inbox, ticket

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=BERLIN)


async def test_reports_on_both_backends(database: Database) -> None:
    """Two tickets on Monday and one on Tuesday (Berlin days; 00:30 Tuesday is Monday
    in UTC); one answered after 1 h of office hours, closed; one stale and unassigned."""
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        agent = (await accounts.add_user(session, portal, "ana@p.example")).user.id
        inbox = await team_inbox(session, portal, "support", time_zone="Europe/Berlin",
                                 hours={"mon": [["09:00", "17:00"]]}, users=[agent])
        await ticket(session, portal, inbox, at(23, 16), [
            Step("assigned", at(23, 16), f"user:{agent}"), Step("agent_reply", at(30, 9)),
            Step("status", at(30, 10), "closed")],
            status="closed", assignee=agent, closed_at=at(30, 10))
        await ticket(session, portal, inbox, at(23, 10), channel="sync",
                     updated_at=at(23, 10))
        await ticket(session, portal, inbox, at(24, 0) + timedelta(minutes=30))
    scope = reports.Scope.days(portal, None, date(2026, 11, 23), date(2026, 11, 29), BERLIN)
    async with database.read() as session:
        volume = await reports.volume(session, scope)
        times = await reports.response_times(session, scope)
        load = await reports.workload(session, scope)
        status = await reports.status(session, scope, timedelta(hours=48),
                                      now=datetime(2026, 11, 30, 12, tzinfo=UTC))
        in_utc = await reports.volume(session, reports.Scope.days(
            portal, None, date(2026, 11, 23), date(2026, 11, 23), ZoneInfo("UTC")))
    assert [(r.day.day, r.channel, r.conversations) for r in volume] == [
        (23, "sync", 1), (23, "team_inbox", 1), (24, "team_inbox", 1)]
    assert [(r.day.day, r.channel, r.conversations) for r in in_utc] == [
        (23, "sync", 1), (23, "team_inbox", 2)]
    # Mon 16-17 then next Mon from 09:00: 1 h to the 09:00 reply; closed 10:00, 2 h.
    assert (times.tickets, times.unanswered) == (3, 2)
    assert (times.first_response.p50, times.first_resolution.p50) == (3600, 7200)
    assert [(a.email, a.open, a.assigned, a.closed) for a in load.agents] == [
        ("ana@p.example", 0, 1, 0)]  # closed the next week: outside the range
    assert load.unassigned == 2
    assert (status.open, status.closed, status.unassigned, status.stale) == (2, 1, 2, 2)


async def test_sla_cache_follows_changes(database: Database) -> None:
    """Figures computed once are reused; a new activity on a ticket, or other business
    hours for its inbox, makes that ticket's figures computed again."""
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        inbox = await team_inbox(session, portal, "support", time_zone="Europe/Berlin",
                                 hours={"mon": [["09:00", "17:00"]]})
        ticket_id = await ticket(session, portal, inbox, at(23, 9))
    scope = reports.Scope.days(portal, None, date(2026, 11, 23), date(2026, 11, 29), BERLIN)
    cache = reports.SlaCache()

    async def first_response() -> float | None:
        async with database.read() as session:
            return (await reports.response_times(session, scope, cache)).first_response.p50

    assert await first_response() is None
    async with database.transaction() as session:
        session.add(TicketActivity(portal_id=portal, ticket_id=ticket_id, at=at(23, 11),
                                   kind="agent_reply"))
    assert await first_response() == 7200
    async with database.transaction() as session:
        row = await session.get(TeamInbox, inbox)
        assert row is not None
        row.business_hours = {"mon": [["10:00", "17:00"]]}
    assert await first_response() == 3600
    assert await first_response() == 3600  # from the cache now


async def test_stored_figures_serve_the_next_report(database: Database) -> None:
    """Figures stored after one report are read, not recomputed, by the next (a fresh
    process's cache); a ticket with a new activity, or whose updated_at moved (an
    activity committed out of id order), and only it, is computed again."""
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        inbox = await team_inbox(session, portal, "support", time_zone="Europe/Berlin",
                                 hours={"mon": [["09:00", "17:00"]]})
        answered = await ticket(session, portal, inbox, at(23, 9),
                                [Step("agent_reply", at(23, 10))])
        waiting = await ticket(session, portal, inbox, at(23, 9))
        other = (await accounts.create_portal(session, "Q")).portal.id
        await ticket(session, other, await team_inbox(session, other, "support"), at(23, 9))
    scope = reports.Scope.days(portal, None, date(2026, 11, 23), date(2026, 11, 29), BERLIN)

    async def report() -> tuple[list[int], float | None, float | None]:
        cache = reports.SlaCache()
        async with database.read() as session:
            times = await reports.response_times(session, scope, cache)
        computed = sorted(cache.computed)
        async with database.transaction() as session:
            await reports.store_figures(session, cache)
        return computed, times.first_response.p50, times.first_response.mean

    assert await report() == ([answered, waiting], 3600, 3600)
    assert await report() == ([], 3600, 3600)
    async with database.transaction() as session:
        session.add(TicketActivity(portal_id=portal, ticket_id=waiting, at=at(23, 11),
                                   kind="agent_reply"))
    assert await report() == ([waiting], 5400, 5400)
    async with database.transaction() as session:
        row = await session.get(Ticket, answered)
        assert row is not None
        row.updated_at = at(24, 9)
    assert await report() == ([answered], 5400, 5400)
    assert await report() == ([], 5400, 5400)
