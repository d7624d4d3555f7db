"""Ticket reports through the HTTP port against a hand-computed fixture: volume per day
and channel (days cut in the asked time zone), first-response percentiles in each
inbox's business hours with a reopen kept apart, workload and shares, open/closed,
unassigned and stale; a user sees only the team inboxes they are a member of, another
portal nothing of it.

The fixture (written into the server's database with chosen times; week of Monday
2026-11-23, asked in Europe/Berlin; "support" has Berlin office hours Mon-Fri 9-17,
"billing" is UTC around the clock; ana is in support, ben in support and, through the
team tier2, in billing, cara in neither):

- T1 support, Mon 09:00, team_inbox, assigned ana; reply 10:00 (first response 1 h),
  customer 11:00, reply 11:30 (next response 0.5 h), closed 12:00 (resolution 3 h).
- T2 support, Fri 16:00, team_inbox, assigned ana; reply next Mon 10:00 (Fri 16-17 +
  Mon 9-10 = 2 h); open, last activity 30 h ago.
- T3 support, Tue 10:00, sync, assigned ben; reply 14:00 (4 h), closed 15:00 (5 h);
  reopened Wed 16:00, reply Thu 09:30 (cycle 2: Wed 1 h + Thu 0.5 h = 1.5 h); pending.
- T4 billing, Wed 12:00 UTC, team_inbox, nobody assigned, no reply; open.
- T5 billing, Sun 23:30 UTC (Mon 00:30 in Berlin: outside the week there), assigned ben
  then, reply 00:15 UTC, closed 01:00 UTC Monday.
- T6 support, merged into T1; a plain CRM ticket; another portal's ticket: never counted.

First responses (admin): 3600, 7200, 14400 and T4 unanswered: p50 7200; p90 at rank
0.9 * 2 = 1.8: 7200 + 0.8 * 7200 = 12960; mean 8400. First resolutions 10800, 18000:
p50 14400, p90 10800 + 0.9 * 7200 = 17280.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import accounts
from core.sla import percentile
from core.storage.db import Database, sqlite_url
from core.storage.models import Team, TeamMember, Ticket, utcnow
from tests.support import postgres
from tests.support.server import PortalAccount, Server, run_coroutine
from tests.support.ticket_rows import Step, team_inbox, ticket

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
WEEK = {"from": "2026-11-23", "to": "2026-11-29", "time_zone": "Europe/Berlin"}


def berlin(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Fixture:
    account: PortalAccount
    ana: tuple[int, str]
    ben: tuple[int, str]
    cara: tuple[int, str]
    support: int
    billing: int
    other: PortalAccount
    other_inbox: int


async def _build(server: Server, account: PortalAccount, other: PortalAccount) -> Fixture:
    db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
    try:
        async with db.transaction() as session:
            p = account.portal_id
            users = {name: await accounts.add_user(session, p, f"{name}@ourco.example",
                                                   name=name.title())
                     for name in ("ana", "ben", "cara")}
            ana, ben = users["ana"].user.id, users["ben"].user.id
            tier2 = Team(portal_id=p, name="tier2")
            session.add(tier2)
            await session.flush()
            session.add(TeamMember(team_id=tier2.id, user_id=ben))
            support = await team_inbox(session, p, "support", time_zone="Europe/Berlin",
                                       hours=OFFICE, users=[ana, ben])
            billing = await team_inbox(session, p, "billing", teams=[tier2.id])
            t1 = await ticket(session, p, support, berlin(23, 9), [
                Step("assigned", berlin(23, 9), f"user:{ana}"),
                Step("agent_reply", berlin(23, 10)),
                Step("customer_message", berlin(23, 11)),
                Step("agent_reply", berlin(23, 11, 30)),
                Step("status", berlin(23, 12), "closed")],
                status="closed", assignee=ana, closed_at=berlin(23, 12))
            await ticket(session, p, support, berlin(27, 16), [
                Step("assigned", berlin(27, 16), f"user:{ana}"),
                Step("agent_reply", berlin(30, 10))],
                assignee=ana, updated_at=utcnow() - timedelta(hours=30))
            await ticket(session, p, support, berlin(24, 10), [
                Step("assigned", berlin(24, 10), f"user:{ben}"),
                Step("agent_reply", berlin(24, 14)),
                Step("status", berlin(24, 15), "closed"),
                Step("status", berlin(25, 16), "open", {"cycle": 2}),
                Step("customer_message", berlin(25, 16)),
                Step("agent_reply", berlin(26, 9, 30)),
                Step("status", berlin(26, 9, 30), "pending")],
                channel="sync", status="pending", assignee=ben)
            await ticket(session, p, billing, utc(25, 12))
            await ticket(session, p, billing, utc(29, 23, 30), [
                Step("assigned", utc(29, 23, 30), f"user:{ben}"),
                Step("agent_reply", utc(30, 0, 15)),
                Step("status", utc(30, 1), "closed")],
                status="closed", assignee=ben, closed_at=utc(30, 1))
            await ticket(session, p, support, berlin(23, 9, 5), status="closed",
                         merged_into=t1)
            session.add(Ticket(portal_id=p, subject="CRM only", created_at=berlin(23, 9)))
            other_inbox = await team_inbox(session, other.portal_id, "support")
            await ticket(session, other.portal_id, other_inbox, berlin(23, 9))
            return Fixture(account, (ana, users["ana"].api_token),
                           (ben, users["ben"].api_token), (users["cara"].user.id,
                                                           users["cara"].api_token),
                           support, billing, other, other_inbox)
    finally:
        await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, server: Server,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The suite's SQLite server, or one on PostgreSQL (whose reports compute their
    percentiles in the database): the same hand-computed figures on both."""
    if request.param == "sqlite":
        yield server
        return
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp("reports-pg"), db_url=url).start()
        yield running
        running.stop()


@pytest.fixture(scope="module")
def fixture(server: Server) -> Iterator[Fixture]:
    account = server.new_portal("lead@ourco.example")
    other = server.new_portal("lead@other.example")
    yield run_coroutine(lambda: _build(server, account, other))


def _get(server: Server, token: str, report: str, **params: Any) -> Any:
    with server.api(token) as api:
        answer = api.get(f"/api/v1/reports/{report}", params={**WEEK, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _figures(count: int, p50: float | None, p90: float | None,
             mean: float | None) -> dict[str, Any]:
    return {"count": count, "p50": p50, "p90": p90, "mean": mean}


def test_volume_per_day_and_channel(server: Server, fixture: Fixture) -> None:
    """Four tickets in the Berlin week; T5 falls on the Sunday in UTC."""
    admin = fixture.account.admin_token
    report = _get(server, admin, "volume")
    assert report["range"] == {"from": "2026-11-23", "to": "2026-11-29",
                               "time_zone": "Europe/Berlin", "team_inbox_id": None}
    assert report["total"] == 4
    assert [(i["day"], i["channel"], i["conversations"]) for i in report["items"]] == [
        ("2026-11-23", "team_inbox", 1), ("2026-11-24", "sync", 1),
        ("2026-11-25", "team_inbox", 1), ("2026-11-27", "team_inbox", 1)]
    in_utc = _get(server, admin, "volume", time_zone="UTC")
    assert in_utc["total"] == 5 and in_utc["items"][-1] == {
        "day": "2026-11-29", "channel": "team_inbox", "conversations": 1}
    assert _get(server, admin, "volume", team_inbox_id=fixture.billing)["total"] == 1


def test_first_response_percentiles_in_business_hours(server: Server,
                                                      fixture: Fixture) -> None:
    """Exact business-hour figures; the reopened cycle is kept out of first response."""
    report = _get(server, fixture.account.admin_token, "first-response")
    assert (report["tickets"], report["unanswered"]) == (4, 1)
    assert report["first_response"] == _figures(3, 7200, 12960, 8400)
    assert report["reopened_first_response"] == _figures(1, 5400, 5400, 5400)
    assert report["next_response"] == _figures(1, 1800, 1800, 1800)
    assert report["first_resolution"] == _figures(2, 14400, 17280, 14400)


def test_workload_and_distribution(server: Server, fixture: Fixture) -> None:
    """ana: T2 open, T1 and T2 assigned in the week, T1 closed; ben: T3 pending, T3
    assigned (T5's assignment is Monday in Berlin); T4 open with nobody."""
    report = _get(server, fixture.account.admin_token, "workload")
    assert report["unassigned"] == 1
    rows = {i["email"]: (i["open"], i["pending"], i["assigned"], round(i["share"], 4),
                         i["closed"]) for i in report["items"]}
    assert rows == {"ana@ourco.example": (1, 0, 2, 0.6667, 1),
                    "ben@ourco.example": (0, 1, 1, 0.3333, 0)}


def test_status(server: Server, fixture: Fixture) -> None:
    """Of T1-T4: open T2 and T4, pending T3, closed T1; T4 unassigned; stale (48 h)
    T3 and T4, and T2 too at 24 h."""
    admin = fixture.account.admin_token
    report = _get(server, admin, "status")
    assert {k: report[k] for k in ("open", "pending", "closed", "unassigned", "stale",
                                   "stale_hours")} == {
        "open": 2, "pending": 1, "closed": 1, "unassigned": 1, "stale": 2,
        "stale_hours": 48}
    assert _get(server, admin, "status", stale_hours=24)["stale"] == 3


def test_a_member_sees_only_their_inboxes(server: Server, fixture: Fixture) -> None:
    """ana (support only) does not count billing's T4; cara (no inbox) counts nothing
    and gets 404 asking for one; ben sees both through his team."""
    ana_token, ben_token, cara_token = fixture.ana[1], fixture.ben[1], fixture.cara[1]
    mine = _get(server, ana_token, "first-response")
    assert (mine["tickets"], mine["unanswered"]) == (3, 0)
    assert mine["first_response"] == _figures(3, 7200, 12960, 8400)
    assert _get(server, ana_token, "status")["unassigned"] == 0
    load = _get(server, ana_token, "workload")
    assert [(i["email"], i["assigned"]) for i in load["items"]] == [
        ("ana@ourco.example", 2), ("ben@ourco.example", 1)]
    assert _get(server, ben_token, "volume")["total"] == 4
    nothing = _get(server, cara_token, "first-response")
    assert nothing["tickets"] == 0 and nothing["first_response"] == _figures(0, None, None,
                                                                             None)
    assert _get(server, cara_token, "workload") == {"range": nothing["range"],
                                                    "unassigned": 0, "items": [],
                                                    "recomputing": False}
    with server.api(cara_token) as api:
        assert api.get("/api/v1/reports/volume",
                       params={"team_inbox_id": fixture.support}).status_code == 404
    with server.api(ana_token) as api:
        assert api.get("/api/v1/reports/status",
                       params={"team_inbox_id": fixture.billing}).status_code == 404


def test_another_portal_sees_nothing_of_it(server: Server, fixture: Fixture) -> None:
    """The other portal's admin counts only its own ticket, and the first portal's
    inboxes are 404 to it."""
    other = fixture.other.admin_token
    assert _get(server, other, "volume")["total"] == 1
    assert _get(server, other, "workload")["items"] == []
    for report in ("volume", "first-response", "workload", "status"):
        with server.api(other) as api:
            answer = api.get(f"/api/v1/reports/{report}",
                             params={"team_inbox_id": fixture.support})
        assert answer.status_code == 404, report
    assert _get(server, fixture.account.admin_token, "volume",
                team_inbox_id=fixture.support)["total"] == 3


@dataclass(frozen=True)
class Spread:
    token: str
    inboxes: tuple[int, int]
    # (inbox, created, first response s, first resolution s or None) of every ticket
    tickets: list[tuple[int, datetime, int, int | None]]


async def _spread(server: Server, account: PortalAccount) -> Spread:
    """51 tickets in two around-the-clock inboxes: one every 4 days from January to
    August 2026 and ten more in 1-10 March; responses in whole 5 minutes (ties), every
    other ticket closed."""
    rng = random.Random(20)
    created = [datetime(2026, 1, 5, 10, tzinfo=UTC) + timedelta(days=4 * i)
               for i in range(41)]
    created += [datetime(2026, 3, 1 + i, 15, tzinfo=UTC) for i in range(10)]
    db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
    kept = []
    try:
        async with db.transaction() as session:
            p = account.portal_id
            inboxes = (await team_inbox(session, p, "one"), await team_inbox(session, p, "two"))
            for i, at in enumerate(created):
                inbox = inboxes[i % 2]
                reply = 300 * rng.randrange(1, 40)
                closed = reply + 300 * rng.randrange(0, 40) if i % 3 else None
                steps = [Step("agent_reply", at + timedelta(seconds=reply))]
                if closed is not None:
                    steps.append(Step("status", at + timedelta(seconds=closed), "closed"))
                await ticket(session, p, inbox, at, steps,
                             status="open" if closed is None else "closed",
                             closed_at=None if closed is None else steps[-1].at)
                kept.append((inbox, at, reply, closed))
    finally:
        await db.dispose()
    return Spread(account.admin_token, inboxes, kept)


@pytest.fixture(scope="module")
def spread(server: Server) -> Spread:
    account = server.new_portal("lead@spread.example")
    return run_coroutine(lambda: _spread(server, account))


@pytest.mark.parametrize(("first", "last"), [
    ("2026-01-01", "2026-08-31"),  # the portal's whole span: read in the ranked index
    ("2026-02-01", "2026-05-31"),  # part of it, still that way
    ("2026-03-01", "2026-03-10"),  # 5 % of it: the range sorted instead
    ("2026-03-02", "2026-03-02"),  # one ticket
    ("2026-12-01", "2026-12-31"),  # none
])
@pytest.mark.parametrize("inbox", [None, 0, 1])
def test_percentiles_at_their_ranks_match_the_values(server: Server, spread: Spread,
                                                     first: str, last: str,
                                                     inbox: int | None) -> None:
    """Whatever the range's share of the portal's span and whichever end a rank is read
    from, the figures are core.sla.percentile's and the mean of the range's values."""
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
    inbox_id = None if inbox is None else spread.inboxes[inbox]
    chosen = [t for t in spread.tickets
              if start <= t[1] < end and inbox_id in (None, t[0])]

    def expected(values: list[int]) -> dict[str, Any]:
        if not values:
            return _figures(0, None, None, None)
        return _figures(len(values), pytest.approx(percentile(values, 50), abs=1e-6),
                        pytest.approx(percentile(values, 90), abs=1e-6),
                        pytest.approx(sum(values) / len(values), abs=1e-6))

    params = {"from": first, "to": last, "time_zone": "UTC"} | (
        {} if inbox_id is None else {"team_inbox_id": str(inbox_id)})
    report = _get(server, spread.token, "first-response", **params)
    assert report["tickets"] == len(chosen)
    assert report["first_response"] == expected([t[2] for t in chosen])
    assert report["first_resolution"] == expected([t[3] for t in chosen if t[3] is not None])


@pytest.mark.parametrize("params", [
    {"from": "2026-13-01"}, {"to": "yesterday"}, {"from": "2026-11-30", "to": "2026-11-01"},
    {"from": "2024-01-01", "to": "2026-01-01"}, {"time_zone": "Mars/Olympus"},
    {"team_inbox_id": "x"}, {"team_inbox_id": "0"}, {"to": "9999-12-31"},
    {"to": "0001-01-05"}, {"from": "0001-01-01", "to": "0001-01-02"},
])
def test_bad_parameters_are_400(server: Server, fixture: Fixture,
                                params: dict[str, str]) -> None:
    with server.api(fixture.account.admin_token) as api:
        answer = api.get("/api/v1/reports/volume", params=params)
    assert answer.status_code == 400, answer.text
    with server.api(fixture.account.admin_token) as api:
        assert api.get("/api/v1/reports/status", params={"stale_hours": 0}).status_code == 400
