"""A team inbox's hours change through the HTTP port: the PATCH only marks its figures
stale; the server's background walk (core.tickets.refigure) recomputes them in many
small transactions while SMTP ingest goes on, ends with exactly what a full recompute
gives, starts over on a second change, finishes after a restart mid-walk, and never
touches another portal's inbox. Reports say ``recomputing`` meanwhile. On SQLite and
PostgreSQL.

Tickets are written straight into the database (tests.support.ticket_rows); the server
walks them BATCH at a time with a pause between batches, so the walk is still under way
when the test looks (the pause stands for a busy server, not for timing: every check
waits for the state it asserts).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core import accounts
from core.storage.db import Database, sqlite_url
from core.storage.models import FigureWalk, Ticket, TicketFigures, TicketFigureValue
from core.tickets import figures
from tests.support import postgres
from tests.support.mail import deliver, message
from tests.support.server import PortalAccount, Server, run_coroutine, stop_process
from tests.support.ticket_rows import Step, team_inbox, ticket

TICKETS = 120
BATCH = 10
ENV = {"INBOXLOG_REFIGURE_BATCH": str(BATCH), "INBOXLOG_REFIGURE_PAUSE": "0.25",
       "INBOXLOG_LEASE_SECONDS": "2"}
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
EARLY = {day: [["07:00", "15:00"]] for day in ("mon", "tue", "wed", "thu")}
LATE = {day: [["11:00", "19:30"]] for day in ("tue", "wed", "thu", "fri", "sat")}
END = datetime(2026, 11, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Desk:
    account: PortalAccount
    inbox: int
    other: PortalAccount
    other_inbox: int


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp("refigure"), db_url=url,
                         extra_env=ENV).start()
        yield running
        running.stop()


def _db(server: Server) -> Database:
    return Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))


async def _load(server: Server) -> Desk:
    account = await server._new_portal("lead@refigure.example", (), "Refigure")
    other = await server._new_portal("lead@bystander.example", (), "Bystander")
    rng = random.Random(24)
    db = _db(server)
    try:
        async with db.transaction() as session:
            agent = (await accounts.add_user(session, account.portal_id,
                                             "agent@refigure.example")).user.id
            inbox = await team_inbox(session, account.portal_id, "support",
                                     time_zone="Europe/Berlin", hours=OFFICE, users=[agent])
            other_inbox = await team_inbox(session, other.portal_id, "support",
                                           time_zone="Europe/Berlin", hours=OFFICE)
            for portal_id, box, count in ((account.portal_id, inbox, TICKETS),
                                          (other.portal_id, other_inbox, 5)):
                for _ in range(count):
                    at = END - timedelta(hours=rng.uniform(0, 24 * 20))
                    replied = at + timedelta(hours=rng.uniform(0.5, 40))
                    await ticket(session, portal_id, box, at, [
                        Step("assigned", at, f"user:{agent}"),
                        Step("agent_reply", replied),
                        Step("customer_message", replied + timedelta(hours=2)),
                        Step("agent_reply", replied + timedelta(hours=rng.uniform(3, 30))),
                        Step("status", replied + timedelta(hours=31), "closed")],
                        status="closed", assignee=agent,
                        closed_at=replied + timedelta(hours=31))
        return Desk(account, inbox, other, other_inbox)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def desk(server: Server) -> Desk:
    return run_coroutine(lambda: _load(server))


async def _stored(server: Server, portal_id: int, *, recompute: bool = False
                  ) -> list[tuple[Any, ...]]:
    """The portal's figures as stored, to the microsecond (``recompute``: as a full
    ``figures.refresh`` of all its tickets gives them, in a transaction rolled back)."""
    db = _db(server)
    try:
        async with db.write_engine.connect() as connection:
            transaction = await connection.begin()
            if recompute:
                ids = list(await connection.scalars(
                    select(Ticket.id).where(Ticket.portal_id == portal_id)))
                await connection.run_sync(lambda sync: figures.refresh(sync, ids))
            rows = [_micros(row) for row in await connection.execute(
                select(TicketFigures.ticket_id, TicketFigures.hours_key,
                       TicketFigures.first_response, TicketFigures.first_resolution,
                       TicketFigures.next_responses, TicketFigures.reopen_first_responses)
                .where(TicketFigures.portal_id == portal_id)
                .order_by(TicketFigures.ticket_id))]
            rows += [tuple(row) for row in await connection.execute(
                select(TicketFigureValue.ticket_id, TicketFigureValue.metric,
                       TicketFigureValue.position, TicketFigureValue.micros)
                .where(TicketFigureValue.portal_id == portal_id)
                .order_by(TicketFigureValue.ticket_id, TicketFigureValue.metric,
                          TicketFigureValue.position))]
            await transaction.rollback()
        return rows
    finally:
        await db.dispose()


def _micros(row: Any) -> tuple[Any, ...]:
    """A figures row with its seconds to the microsecond, as reports read them: below
    that, core.sla's sums differ with the tickets computed before in the same call."""
    ticket_id, key, first, resolution, nexts, reopens = row

    def exact(seconds: float | None) -> int | None:
        return None if seconds is None else figures.micros(seconds)

    def listed(text: str) -> tuple[int | None, ...]:
        return tuple(exact(float(s)) for s in text.split(",") if s)

    return ticket_id, key, exact(first), exact(resolution), listed(nexts), listed(reopens)


async def _walks(server: Server) -> dict[int, int]:
    """Stale inboxes: team inbox id -> the last ticket its walk redid."""
    db = _db(server)
    try:
        async with db.read() as session:
            return {row.team_inbox_id: row.after_ticket_id
                    for row in await session.scalars(select(FigureWalk))}
    finally:
        await db.dispose()


def walks(server: Server) -> dict[int, int]:
    return run_coroutine(lambda: _walks(server))


def stored(server: Server, portal_id: int, *, recompute: bool = False) -> list[Any]:
    return run_coroutine(lambda: _stored(server, portal_id, recompute=recompute))


def wait_for(what: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def recomputing(server: Server, token: str, **params: Any) -> bool:
    with server.api(token) as api:
        answer = api.get("/api/v1/reports/first-response",
                         params={"from": "2026-11-01", "to": "2026-11-30", **params})
    assert answer.status_code == 200, answer.text
    value = answer.json()["recomputing"]
    assert isinstance(value, bool)
    return value


def write_commits(server: Server) -> int:
    with server.api(None) as api:
        text = api.get("/metrics").text
    return sum(int(float(n)) for n in re.findall(
        r'^inboxlog_db_commits_total\{engine="(?:write|main)"\} (\S+)$', text, re.M))


def patch_hours(server: Server, desk: Desk, hours: dict[str, Any],
                time_zone: str | None = None) -> None:
    body: dict[str, Any] = {"business_hours": hours}
    if time_zone:
        body["time_zone"] = time_zone
    with server.api(desk.account.admin_token) as api:
        answer = api.patch(f"/api/v1/team-inboxes/{desk.inbox}", json=body)
    assert answer.status_code == 200, answer.text


def test_the_walk_redoes_every_ticket_in_small_transactions(server: Server,
                                                           desk: Desk) -> None:
    """The PATCH leaves the inbox marked, its walk at the start; SMTP mail is logged
    while the walk is under way; the walk commits many times; the end state is what a
    full recompute gives; another portal's figures and reports are untouched."""
    bystander = stored(server, desk.other.portal_id)
    old = stored(server, desk.account.portal_id)
    commits = write_commits(server)
    patch_hours(server, desk, EARLY, "America/New_York")
    # The PATCH recomputed nothing: the walk starts from the first ticket.
    assert walks(server).get(desk.inbox) in (0, BATCH), walks(server)
    assert recomputing(server, desk.account.admin_token)
    assert recomputing(server, desk.account.admin_token, team_inbox_id=desk.inbox)
    assert not recomputing(server, desk.other.admin_token)
    # Ingest during the walk: the 250 comes while tickets are still left to redo.
    wait_for(lambda: walks(server).get(desk.inbox, 0) > 0)
    code, text = deliver(server, message(sender=desk.account.user_email,
                                         to="someone@customer.example", subject="During"),
                         desk.account.bcc_address, mail_from=desk.account.user_email)
    assert code == 250, text
    progress = walks(server)
    assert desk.inbox in progress, "the walk ended before the mail was logged"
    wait_for(lambda: not recomputing(server, desk.account.admin_token))
    assert walks(server) == {}
    assert write_commits(server) - commits >= TICKETS // BATCH
    new = stored(server, desk.account.portal_id)
    assert new != old
    assert new == stored(server, desk.account.portal_id, recompute=True)
    assert stored(server, desk.other.portal_id) == bystander


def test_a_second_change_starts_the_walk_over(server: Server, desk: Desk) -> None:
    """A change of the hours while a walk is under way sets it back to the first
    ticket; it ends with the second hours' figures."""
    patch_hours(server, desk, OFFICE, "Europe/Berlin")
    wait_for(lambda: walks(server).get(desk.inbox, 0) >= 3 * BATCH)
    patch_hours(server, desk, LATE, "Asia/Tokyo")
    assert walks(server).get(desk.inbox) in (0, BATCH)
    wait_for(lambda: not recomputing(server, desk.account.admin_token))
    late_key = figures.hours_key("Asia/Tokyo", LATE)
    rows = stored(server, desk.account.portal_id)
    assert {row[1] for row in rows if len(row) == 6} == {late_key}
    assert rows == stored(server, desk.account.portal_id, recompute=True)


def test_a_restart_mid_walk_finishes_it(server: Server, desk: Desk) -> None:
    """Killed (SIGKILL) mid-walk, the server started again goes on from the mark and
    ends with what a full recompute gives."""
    patch_hours(server, desk, EARLY, "UTC")
    wait_for(lambda: walks(server).get(desk.inbox, 0) >= 2 * BATCH)
    assert server.process is not None
    server.process.kill()
    stop_process(server.process)
    left = walks(server)
    assert 0 < left[desk.inbox] < max(t for t, *_ in stored(server, desk.account.portal_id))
    server.start()
    wait_for(lambda: not recomputing(server, desk.account.admin_token))
    rows = stored(server, desk.account.portal_id)
    assert {row[1] for row in rows if len(row) == 6} == {figures.hours_key("UTC", EARLY)}
    assert rows == stored(server, desk.account.portal_id, recompute=True)


def test_no_one_else_marks_the_inbox(server: Server, desk: Desk) -> None:
    """Another portal's admin (404) and a user of the portal who is not its admin (403)
    cannot change the inbox's hours, and so mark nothing."""
    with server.api(desk.other.admin_token) as api:
        answer = api.patch(f"/api/v1/team-inboxes/{desk.inbox}",
                           json={"business_hours": LATE})
    assert answer.status_code == 404, answer.text
    assert walks(server) == {}
    with server.api(desk.account.user_token) as api:
        answer = api.patch(f"/api/v1/team-inboxes/{desk.inbox}",
                           json={"business_hours": LATE})
    assert answer.status_code in (403, 404), answer.text
    assert walks(server) == {}
