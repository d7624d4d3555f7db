"""Reports on team-inbox tickets: volume per day and channel, response-time percentiles
in business hours (``core.sla``), agents' workload, open vs closed.

Every report reads one ``Scope``: a portal, the team inboxes the caller may see (a user:
those they are a member of; the admin: all), and a time range. Plain CRM tickets (no
team inbox) and tickets merged into another are never counted.

- ``volume``: tickets created in the range, per local day (``Scope.zone``) and channel:
  the source of the ticket's first message (``team_inbox``, the inbox's forwarding
  address; ``sync``, its connected mailbox; ...).
- ``response_times``: of the tickets created in the range, the first response (the
  first cycle's: reopenings are counted apart, ``reopened_first_response``), next
  responses and first resolution, in each ticket's inbox's business hours.
- ``workload``: per agent (the scope's inboxes' members, and anyone assigned in it)
  their open and pending tickets now, tickets assigned to them in the range and their
  share of all those, and their tickets closed in the range.
- ``status``: of the tickets created in the range, how many are open, pending, closed,
  open or pending with nobody assigned, and stale (open or pending, no activity for
  ``stale_after``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.sla import Activity, BusinessHours, percentile, ticket_sla
from core.storage.models import (
    EmailSource,
    TeamInbox,
    Ticket,
    TicketActivity,
    TicketFigures,
    User,
    utcnow,
)
from core.tickets import access

OPEN, PENDING, CLOSED = "open", "pending", "closed"


@dataclass(frozen=True)
class Scope:
    """What a report counts: ``inboxes`` None is every team inbox of the portal (the
    admin's view); ``start`` inclusive, ``end`` exclusive; ``zone`` cuts days."""

    portal_id: int
    inboxes: frozenset[int] | None
    start: datetime
    end: datetime
    zone: ZoneInfo

    @classmethod
    def days(cls, portal_id: int, inboxes: frozenset[int] | None, first: date, last: date,
             zone: ZoneInfo) -> Scope:
        """From ``first`` 00:00 to the end of ``last``, local days of ``zone``."""
        start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        return cls(portal_id, inboxes, start, end, zone)

    def tickets(self) -> list[Any]:
        """Where-clauses of the tickets in scope, whatever their date."""
        clauses = [Ticket.portal_id == self.portal_id, Ticket.team_inbox_id.is_not(None),
                   Ticket.merged_into_id.is_(None)]
        if self.inboxes is not None:
            clauses.append(Ticket.team_inbox_id.in_(sorted(self.inboxes)))
        return clauses

    def created(self) -> list[Any]:
        return [*self.tickets(), Ticket.created_at >= self.start, Ticket.created_at < self.end]

    def during(self, column: Any) -> list[Any]:
        return [column >= self.start, column < self.end]


# --- volume ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeRow:
    day: date
    channel: str
    conversations: int


def _day_index(column: Any, bounds: Sequence[datetime], low: int, high: int) -> Any:
    """The first ``i`` in ``low..high`` with ``column < bounds[i]`` (else ``high``), as
    CASEs nested by halves: a row is compared about log2(days) times, not once per
    day before its own."""
    if low == high:
        return literal(low, Integer)
    middle = (low + high) // 2
    return case((column < bounds[middle], _day_index(column, bounds, low, middle)),
                else_=_day_index(column, bounds, middle + 1, high))


async def volume(session: AsyncSession, scope: Scope) -> list[VolumeRow]:
    # Days are cut where the scope's zone puts midnight (in UTC: a DST change moves
    # it), by CASEs the database evaluates; the channel is the first message's first
    # source.
    days: list[date] = []
    bounds: list[datetime] = []
    day = scope.start.astimezone(scope.zone).date()
    while not bounds or bounds[-1] < scope.end:
        days.append(day)
        day += timedelta(days=1)
        bounds.append(datetime.combine(day, datetime.min.time(), tzinfo=scope.zone))
    index = _day_index(Ticket.created_at, bounds, 0, len(bounds) - 1)
    channel = (select(EmailSource.source).where(EmailSource.email_id == TicketActivity.email_id)
               .order_by(EmailSource.created_at, EmailSource.source).limit(1)
               .scalar_subquery())
    rows = (select(index.label("day"), channel.label("channel")).select_from(Ticket)
            .outerjoin(TicketActivity, (TicketActivity.ticket_id == Ticket.id)
                       & (TicketActivity.kind == "created"))
            .where(*scope.created()).subquery())
    counted = (await session.execute(
        select(rows.c.day, rows.c.channel, func.count())
        .group_by(rows.c.day, rows.c.channel))).all()
    return sorted((VolumeRow(days[i], source or "unknown", n) for i, source, n in counted),
                  key=lambda row: (row.day, row.channel))


# --- response times -------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """Business seconds: how many, their median, 90th percentile and mean."""

    count: int
    p50: float | None
    p90: float | None
    mean: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Figures:
        # fsum: the mean is the same whatever order the tickets came in.
        return cls(len(values), percentile(values, 50), percentile(values, 90),
                   math.fsum(values) / len(values) if values else None)


@dataclass(frozen=True)
class ResponseTimes:
    tickets: int
    unanswered: int  # no first response yet
    first_response: Figures
    reopened_first_response: Figures
    next_response: Figures
    first_resolution: Figures


async def business_hours(session: AsyncSession, portal_id: int
                         ) -> dict[int, tuple[str, BusinessHours]]:
    """Each team inbox's hours, with a key that changes when its settings do. An inbox
    whose settings do not parse counts around the clock (its API refuses such
    settings; this only keeps a report from failing)."""
    hours: dict[int, tuple[str, BusinessHours]] = {}
    for inbox_id, zone, week in (await session.execute(
            select(TeamInbox.id, TeamInbox.time_zone, TeamInbox.business_hours)
            .where(TeamInbox.portal_id == portal_id))).all():
        key = f"{zone}|{json.dumps(week, sort_keys=True)}"
        try:
            hours[inbox_id] = key, BusinessHours.parse(zone, week)
        except ValueError:
            hours[inbox_id] = key, BusinessHours()
    return hours


_SLA_KINDS = ("created", "customer_message", "agent_reply", "status")


@dataclass(frozen=True)
class Figured:
    """What the report reads of a ticket's ``TicketSla``, and what was read to get it:
    its last SLA activity, its ``updated_at`` and its inbox's hours (a digest)."""

    ticket_id: int
    as_of_activity_id: int
    ticket_updated_at: datetime | None
    hours_key: str
    first_response: float | None
    first_resolution: float | None
    reopen_first_responses: tuple[float, ...]
    next_responses: tuple[float, ...]


class SlaCache:
    """Tickets' SLA figures, stored ones (``TicketFigures``) this process has read and
    ones it computed because those were missing or stale (``computed``, which
    ``store_figures`` writes): a report then reads the activity log only of tickets
    that changed since, and their figures only when this process has not read them
    yet. Bounded; the oldest entries go first. One per process."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self.known: dict[int, Figured] = {}
        self.computed: dict[int, Figured] = {}

    def put(self, figured: Figured) -> None:
        self.known.pop(figured.ticket_id, None)
        self.known[figured.ticket_id] = figured
        while len(self.known) > self.size:
            del self.known[next(iter(self.known))]


def _chunks(ids: list[int]) -> list[list[int] | None]:
    """Few ids: in chunks of 500 (the drivers' parameter limits); many: None, for the
    whole scope in one query."""
    if not ids:
        return []
    return [ids[i:i + 500] for i in range(0, len(ids), 500)] if len(ids) <= 2000 else [None]


def _seconds(text: str) -> tuple[float, ...]:
    return tuple(map(float, text.split(","))) if text else ()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def _figured(session: AsyncSession, scope: Scope, cache: SlaCache) -> list[Figured]:
    hours = {inbox_id: (_digest(key), parsed) for inbox_id, (key, parsed)
             in (await business_hours(session, scope.portal_id)).items()}
    around_the_clock = (_digest(""), BusinessHours())
    stored = TicketFigures
    # Stale: a later SLA activity than the figures were computed from, or (an activity
    # whose id was taken before theirs but committed after) another updated_at.
    later = (select(TicketActivity.id)
             .where(TicketActivity.ticket_id == Ticket.id,
                    TicketActivity.id > stored.as_of_activity_id,
                    TicketActivity.kind.in_(_SLA_KINDS)).exists())
    fresh = case((stored.ticket_id.is_not(None)
                  & stored.ticket_updated_at.is_not_distinct_from(Ticket.updated_at)
                  & ~later, 1), else_=0)
    found: list[Figured] = []
    unread: list[int] = []  # fresh in the database, not read by this process yet
    stale: dict[int, tuple[str, BusinessHours]] = {}
    # Through the Core connection: ten thousand plain rows, no ORM result machinery.
    connection = await session.connection()
    for ticket_id, inbox_id, is_fresh, as_of, key in (await connection.execute(
            select(Ticket.id, Ticket.team_inbox_id, fresh, stored.as_of_activity_id,
                   stored.hours_key)
            .outerjoin(stored, stored.ticket_id == Ticket.id)
            .where(*scope.created()))).all():
        digest, parsed = hours.get(inbox_id, around_the_clock)
        if not is_fresh or key != digest:
            stale[ticket_id] = digest, parsed
        elif (known := cache.known.get(ticket_id)) is not None and (
                known.as_of_activity_id, known.hours_key) == (as_of, key):
            found.append(known)
        else:
            unread.append(ticket_id)
    figures = (select(stored.ticket_id, stored.as_of_activity_id, stored.hours_key,
                      stored.first_response, stored.first_resolution,
                      stored.reopen_first_responses, stored.next_responses)
               .join(Ticket, Ticket.id == stored.ticket_id).where(*scope.created()))
    wanted = set(unread)
    for chunk in _chunks(unread):
        for ticket_id, as_of, key, first, resolution, reopened, following in (
                await connection.execute(figures if chunk is None else figures.where(
                    stored.ticket_id.in_(chunk)))).all():
            if ticket_id in wanted:
                figured = Figured(ticket_id, as_of, None, key, first, resolution,
                                  _seconds(reopened), _seconds(following))
                cache.put(figured)
                found.append(figured)
    # The log with the ticket's updated_at as of the same snapshot.
    query = (select(TicketActivity.ticket_id, TicketActivity.id, TicketActivity.kind,
                    TicketActivity.at, TicketActivity.to_value, Ticket.updated_at)
             .join(Ticket, Ticket.id == TicketActivity.ticket_id)
             .where(*scope.created(), TicketActivity.kind.in_(_SLA_KINDS))
             .order_by(TicketActivity.ticket_id, TicketActivity.id))
    missing = sorted(stale)
    logs: dict[int, list[Activity]] = {ticket_id: [] for ticket_id in missing}
    last: dict[int, tuple[int, datetime | None]] = {}
    for chunk in _chunks(missing):
        for ticket_id, activity_id, kind, at, to_value, updated_at in (await session.execute(
                query if chunk is None else query.where(
                    TicketActivity.ticket_id.in_(chunk)))).all():
            if ticket_id in logs:
                logs[ticket_id].append(Activity(kind, at, to_value))
                last[ticket_id] = activity_id, updated_at
    for ticket_id, log in logs.items():
        digest, parsed = stale[ticket_id]
        sla = ticket_sla(log, parsed)
        # No SLA activity at all (not even "created"): no figures, stored as of nothing.
        as_of, updated_at = last.get(ticket_id, (0, None))
        figured = Figured(ticket_id, as_of, updated_at, digest,
                          sla.first_response, sla.first_resolution,
                          sla.reopen_first_responses, sla.next_responses)
        cache.computed[ticket_id] = figured
        cache.put(figured)
        found.append(figured)
    return found


async def store_figures(session: AsyncSession, cache: SlaCache) -> int:
    """Write (or replace) the figures ``cache`` holds; how many. In the caller's
    transaction, which it commits."""
    rows = [{"ticket_id": f.ticket_id, "as_of_activity_id": f.as_of_activity_id,
             "ticket_updated_at": f.ticket_updated_at, "hours_key": f.hours_key,
             "first_response": f.first_response, "first_resolution": f.first_resolution,
             "reopen_first_responses": ",".join(map(repr, f.reopen_first_responses)),
             "next_responses": ",".join(map(repr, f.next_responses))}
            for f in cache.computed.values()]
    cache.computed.clear()  # before the first await: a concurrent report adds anew
    if not rows:
        return 0
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    for start in range(0, len(rows), 500):
        stmt = insert(TicketFigures)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[TicketFigures.ticket_id],
            set_={name: stmt.excluded[name] for name in rows[0] if name != "ticket_id"}),
            rows[start:start + 500])
    return len(rows)


async def response_times(session: AsyncSession, scope: Scope,
                         cache: SlaCache | None = None) -> ResponseTimes:
    first: list[float] = []
    reopened: list[float] = []
    following: list[float] = []
    resolved: list[float] = []
    figured = await _figured(session, scope, cache or SlaCache())
    for sla in figured:
        if sla.first_response is not None:
            first.append(sla.first_response)
        reopened.extend(sla.reopen_first_responses)
        following.extend(sla.next_responses)
        if sla.first_resolution is not None:
            resolved.append(sla.first_resolution)
    tickets = len(figured)  # every ticket in scope has its figures, maybe empty
    return ResponseTimes(tickets, tickets - len(first), Figures.of(first),
                         Figures.of(reopened), Figures.of(following), Figures.of(resolved))


# --- workload -------------------------------------------------------------------------

@dataclass(frozen=True)
class AgentLoad:
    user_id: int
    email: str
    name: str
    open: int
    pending: int
    assigned: int  # in the range
    share: float  # of everything assigned in the range, 0..1
    closed: int  # in the range


@dataclass(frozen=True)
class Workload:
    agents: list[AgentLoad]
    unassigned: int  # open or pending now, nobody assigned


async def _members(session: AsyncSession, scope: Scope) -> set[int]:
    """The members of the scope's inboxes, directly or through a team."""
    inboxes = await session.scalars(select(TeamInbox.id).where(
        TeamInbox.portal_id == scope.portal_id))
    return {user_id for inbox_id in inboxes
            if scope.inboxes is None or inbox_id in scope.inboxes
            for user_id in await access.inbox_members(session, inbox_id)}


async def workload(session: AsyncSession, scope: Scope) -> Workload:
    now_open: dict[int, dict[str, int]] = defaultdict(lambda: {OPEN: 0, PENDING: 0})
    unassigned = 0
    for user_id, team_id, status, n in (await session.execute(
            select(Ticket.assignee_user_id, Ticket.assignee_team_id, Ticket.status,
                   func.count())
            .where(*scope.tickets(), Ticket.status.in_((OPEN, PENDING)))
            .group_by(Ticket.assignee_user_id, Ticket.assignee_team_id,
                      Ticket.status))).all():
        if user_id is not None:
            now_open[user_id][status] += n
        elif team_id is None:
            unassigned += n
    assigned: dict[int, int] = defaultdict(int)
    for to_value, n in (await session.execute(
            select(TicketActivity.to_value, func.count())
            .join(Ticket, Ticket.id == TicketActivity.ticket_id)
            # The portal's assignments in the range first (its index), then their tickets.
            .where(*scope.tickets(), TicketActivity.portal_id == scope.portal_id,
                   TicketActivity.kind == "assigned", *scope.during(TicketActivity.at))
            .group_by(TicketActivity.to_value))).all():
        if to_value and to_value.startswith("user:") and to_value[5:].isdigit():
            assigned[int(to_value[5:])] += n
    closed = {int(user_id): n for user_id, n in (await session.execute(
        select(Ticket.assignee_user_id, func.count())
        .where(*scope.tickets(), Ticket.status == CLOSED, Ticket.assignee_user_id.is_not(None),
               *scope.during(Ticket.closed_at))
        .group_by(Ticket.assignee_user_id))).all() if user_id is not None}
    agents = await _members(session, scope) | set(now_open) | set(assigned) | set(closed)
    users = {u.id: u for u in await session.scalars(
        select(User).where(User.portal_id == scope.portal_id, User.id.in_(sorted(agents))))}
    total = sum(assigned.values())
    loads = [AgentLoad(user_id, users[user_id].email, users[user_id].name,
                       now_open[user_id][OPEN], now_open[user_id][PENDING],
                       assigned.get(user_id, 0),
                       assigned.get(user_id, 0) / total if total else 0.0,
                       closed.get(user_id, 0))
             for user_id in sorted(agents) if user_id in users]
    return Workload(loads, unassigned)


# --- status ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusCounts:
    open: int
    pending: int
    closed: int
    unassigned: int
    stale: int


async def status(session: AsyncSession, scope: Scope, stale_after: timedelta,
                 now: datetime | None = None) -> StatusCounts:
    stale_before = (now or utcnow()) - stale_after
    nobody = Ticket.assignee_user_id.is_(None) & Ticket.assignee_team_id.is_(None)
    old = func.coalesce(Ticket.updated_at, Ticket.created_at) < stale_before
    rows = select(Ticket.status.label("status"), case((nobody, 1), else_=0).label("nobody"),
                  case((old, 1), else_=0).label("old")).where(*scope.created()).subquery()
    counts = {OPEN: 0, PENDING: 0, CLOSED: 0}
    unassigned = stale = 0
    for state, unowned, idle, n in (await session.execute(
            select(rows.c.status, rows.c.nobody, rows.c.old, func.count())
            .group_by(rows.c.status, rows.c.nobody, rows.c.old))).all():
        counts[state] = counts.get(state, 0) + n
        if state in (OPEN, PENDING):
            unassigned += n if unowned else 0
            stale += n if idle else 0
    return StatusCounts(counts[OPEN], counts[PENDING], counts[CLOSED], unassigned, stale)
