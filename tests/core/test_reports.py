"""core.reports on both backends (the HTTP tests run on SQLite): the same small fixture
gives the same figures on PostgreSQL, whose GROUP BY and CASE rules are stricter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core import accounts, reports
from core.storage.db import Database
from core.storage.models import (
    TeamInbox,
    Ticket,
    TicketActivity,
    TicketFigures,
    TicketFigureValue,
)
from core.tickets import figures, refigure
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


async def test_figures_follow_changes_on_write(database: Database) -> None:
    """A ticket's figures are stored in the transaction that logs its activity, and
    after its inbox's hours change by the walk; a report only reads them."""
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        inbox = await team_inbox(session, portal, "support", time_zone="Europe/Berlin",
                                 hours={"mon": [["09:00", "17:00"]]})
        ticket_id = await ticket(session, portal, inbox, at(23, 9))
    scope = reports.Scope.days(portal, None, date(2026, 11, 23), date(2026, 11, 29), BERLIN)

    async def first_response() -> float | None:
        async with database.read() as session:
            return (await reports.response_times(session, scope)).first_response.p50

    async def stored() -> list[tuple[int, int]]:
        async with database.read() as session:
            return [(row.metric, row.micros) for row in await session.scalars(
                select(TicketFigureValue).where(TicketFigureValue.ticket_id == ticket_id))]

    assert await first_response() is None and await stored() == []
    async with database.transaction() as session:
        session.add(TicketActivity(portal_id=portal, ticket_id=ticket_id, at=at(23, 11),
                                   kind="agent_reply"))
    assert await stored() == [(figures.Metric.FIRST_RESPONSE, 7200 * 10**6)]
    assert await first_response() == 7200
    async with database.transaction() as session:
        row = await session.get(TeamInbox, inbox)
        assert row is not None
        row.business_hours = {"mon": [["10:00", "17:00"]]}
    # The change only marked the inbox stale; the walk (core.tickets.refigure) redoes it.
    assert await stored() == [(figures.Metric.FIRST_RESPONSE, 7200 * 10**6)]
    async with database.read() as session:
        assert await refigure.recomputing(session, portal, [inbox])
    while await refigure.step(database, "test", 30) is not refigure.Step.DONE:
        pass
    async with database.read() as session:
        assert not await refigure.recomputing(session, portal, None)
    assert await stored() == [(figures.Metric.FIRST_RESPONSE, 3600 * 10**6)]
    assert await first_response() == 3600
    with pytest.raises(RuntimeError):  # rolled back: nothing noted is kept
        async with database.transaction() as session:
            session.add(TicketActivity(portal_id=portal, ticket_id=ticket_id, at=at(23, 12),
                                       kind="status", to_value="closed"))
            await session.flush()
            raise RuntimeError("rolled back")
    assert await stored() == [(figures.Metric.FIRST_RESPONSE, 3600 * 10**6)]


async def test_kept_rows_follow_the_ticket(database: Database) -> None:
    """The stored copy follows the ticket's status, assignee and merge (a merged ticket
    has no rows: reports never count it); a plain CRM ticket never has any."""
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "P")).portal.id
        agent = (await accounts.add_user(session, portal, "ana@p.example")).user.id
        inbox = await team_inbox(session, portal, "support", users=[agent])
        first = await ticket(session, portal, inbox, at(23, 9),
                             [Step("agent_reply", at(23, 10))])
        second = await ticket(session, portal, inbox, at(23, 9))
        plain = Ticket(portal_id=portal, subject="CRM", created_at=at(23, 9))
        session.add(plain)
    scope = reports.Scope.days(portal, None, date(2026, 11, 23), date(2026, 11, 29), BERLIN)

    async def kept() -> dict[int, tuple[str | None, int | None]]:
        async with database.read() as session:
            return {row.ticket_id: (row.status, row.assignee_user_id)
                    for row in await session.scalars(select(TicketFigures))}

    assert await kept() == {first: ("open", None), second: ("open", None)}
    async with database.transaction() as session:
        row = await session.get(Ticket, second)
        assert row is not None
        row.status, row.assignee_user_id = "pending", agent
    assert await kept() == {first: ("open", None), second: ("pending", agent)}
    async with database.read() as session:
        load = await reports.workload(session, scope)
    assert [(a.user_id, a.open, a.pending) for a in load.agents] == [(agent, 0, 1)]
    async with database.transaction() as session:
        row = await session.get(Ticket, second)
        assert row is not None
        row.merged_into_id, row.status = first, "closed"
    assert await kept() == {first: ("open", None)}
    async with database.read() as session:
        times = await reports.response_times(session, scope)
        values = (await session.execute(select(func.count()).select_from(TicketFigureValue)
                                        .where(TicketFigureValue.ticket_id == second))).scalar()
    assert (times.tickets, times.unanswered, values) == (1, 0, 0)
