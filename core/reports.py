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

Reports only read: every figure and count comes from rows kept in the transactions
that write tickets (``core.tickets.figures``: ``TicketFigures``, ``TicketFigureValue``,
``TicketAssignment``), whose indexes cover each query; neither ``tickets`` nor the
activity log is read, and only a few rows a report cross to Python.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, bindparam, case, func, literal, select, text, union_all
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from core.sla import BusinessHours, percentile
from core.storage.models import (
    TeamInbox,
    Ticket,
    TicketAssignment,
    TicketFigures,
    TicketFigureValue,
    User,
    utcnow,
)
from core.storage.models.base import UTCDateTime
from core.tickets import access, figures

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

    def kept(self, table: Any) -> list[Any]:
        """Where-clauses of the stored rows (``TicketFigures``, ``TicketFigureValue``) of
        the tickets in scope, whatever their date: only counted tickets have them."""
        clauses = [table.portal_id == self.portal_id]
        if self.inboxes is not None:
            clauses.append(table.team_inbox_id.in_(sorted(self.inboxes)))
        return clauses

    def kept_created(self, table: Any) -> list[Any]:
        return [*self.kept(table), table.created_at >= self.start, table.created_at < self.end]

    def during(self, column: Any) -> list[Any]:
        return [column >= self.start, column < self.end]


# --- volume ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeRow:
    day: date
    channel: str
    conversations: int


@functools.lru_cache(maxsize=32)
def _days_table(count: int, dialect: str) -> Any:
    """``count`` days as rows (``i``, ``start``, ``end``) from bound parameters ``s<i>``,
    ``e<i>`` (one statement per number of days, built once)."""
    def bound(name: str) -> str:
        # PostgreSQL types a bare parameter in a SELECT list as text.
        return f"CAST(:{name} AS TIMESTAMP WITH TIME ZONE)" if dialect == "postgresql" \
            else f":{name}"
    rows = " UNION ALL ".join(f"SELECT {i} AS i, {bound(f's{i}')} AS start, "
                              f"{bound(f'e{i}')} AS end_" for i in range(count))
    params = [bindparam(f"{side}{i}", type_=UTCDateTime()) for i in range(count)
              for side in "se"]
    return (text(rows).bindparams(*params)
            .columns(i=Integer, start=UTCDateTime(), end_=UTCDateTime()).subquery("days"))


async def volume(session: AsyncSession, scope: Scope) -> list[VolumeRow]:
    # Days are cut where the scope's zone puts midnight (in UTC: a DST change moves
    # it): a table of the days joined to the stored rows, each day a range of their
    # index (the channel, the first message's first source, is stored with them).
    days: list[date] = []
    bounds: list[datetime] = [scope.start]
    day = scope.start.astimezone(scope.zone).date()
    while bounds[-1] < scope.end:
        days.append(day)
        day += timedelta(days=1)
        bounds.append(datetime.combine(day, datetime.min.time(), tzinfo=scope.zone))
    kept = TicketFigures
    table = _days_table(len(days), session.get_bind().dialect.name)
    params = {f"s{i}": bounds[i] for i in range(len(days))} | {
        f"e{i}": bounds[i + 1] for i in range(len(days))}
    counted = (await session.execute(
        select(table.c.i, kept.channel, func.count())
        .select_from(table).join(kept, and_(
            *scope.kept(kept), kept.created_at >= table.c.start,
            kept.created_at < table.c.end_, kept.created_at < scope.end))
        .group_by(table.c.i, kept.channel), params)).all()
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

    @classmethod
    def ranked(cls, count: int, total_micros: int, at_rank: Mapping[int, int]) -> Figures:
        """From the database: how many, their exact sum and the values (microseconds)
        at the ranks ``PERCENTILES`` needs (0-based, in order); the interpolation of
        ``core.sla.percentile``."""
        if not count:
            return cls(0, None, None, None)

        def at(q: int) -> float:
            rank = (count - 1) * q / 100
            low = int(rank)
            high = min(low + 1, count - 1)
            lower, upper = at_rank[low] / 1e6, at_rank[high] / 1e6
            return lower + (upper - lower) * (rank - low)

        return cls(count, at(50), at(90), total_micros / (count * 1_000_000))


PERCENTILES = (50, 90)


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
        hours[inbox_id] = figures.hours_key(zone, week), figures.parse_hours(zone, week)
    return hours


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
    """Kept for callers of the time figures were computed by reports: they are kept on
    write now (``core.tickets.figures``), so nothing is ever ``computed`` here and
    ``store_figures`` has nothing to store."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self.known: dict[int, Figured] = {}
        self.computed: dict[int, Figured] = {}


async def store_figures(session: AsyncSession, cache: SlaCache) -> int:
    """Nothing to store (figures are kept on write); kept for its callers. 0."""
    cache.computed.clear()
    return 0


async def response_times(session: AsyncSession, scope: Scope,
                         cache: SlaCache | None = None) -> ResponseTimes:
    """Counts, exact sums and the values at the percentiles' ranks, read from the
    stored figures in the database (an index in value order: no sort); only a few
    rows a metric cross to Python. ``cache`` is unused (kept for its callers)."""
    connection = await session.connection()
    tickets = (await connection.execute(select(func.count()).select_from(TicketFigures)
                                        .where(*scope.kept_created(TicketFigures)))).scalar()
    value = TicketFigureValue
    in_scope = scope.kept_created(value)
    if connection.dialect.name == "postgresql":
        found = await _pg_figures(connection, in_scope)
    else:
        found = await _ranked_figures(connection, scope)
    none = Figures(0, None, None, None)
    first = found.get(figures.Metric.FIRST_RESPONSE, none)
    return ResponseTimes(tickets or 0, (tickets or 0) - first.count, first,
                         found.get(figures.Metric.REOPENED_FIRST_RESPONSE, none),
                         found.get(figures.Metric.NEXT_RESPONSE, none),
                         found.get(figures.Metric.FIRST_RESOLUTION, none))


async def _pg_figures(connection: Any, in_scope: list[Any]) -> dict[int, Figures]:
    """PostgreSQL: each metric's count, exact sum and percentiles in one grouped read
    (``percentile_cont`` interpolates between the two closest ranks, as
    ``core.sla.percentile`` does); one sort of the range's values a metric, where
    reading the ranks by OFFSET walked the index up to the 90th percentile for each."""
    value = TicketFigureValue
    quantiles = [q / 100 for q in PERCENTILES]
    rows = (await connection.execute(
        select(value.metric, func.count(), func.sum(value.micros),
               func.percentile_cont(array(quantiles)).within_group(value.micros))
        .where(*in_scope).group_by(value.metric))).all()
    found: dict[int, Figures] = {}
    for metric, count, total, at in rows:
        if count:
            p50, p90 = (float(v) / 1e6 for v in at)
            found[metric] = Figures(count, p50, p90, int(total) / (count * 1_000_000))
    return found


# Below this share of the portal's span of creations, a metric's ranks are read from its
# range sorted rather than by a walk in micros order, which passes nearly every figure
# of the portal's whatever the range (about equal at a week of 90 days, at 10,000 and
# 100,000 tickets).
SORT_BELOW = 0.07


def _unindexed(column: Any) -> Any:
    """SQLite's unary ``+``: the same value, but the planner uses no index for it (its
    documented opt-out), so the index chosen is the one the other terms fit."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _share(scope: Scope, first: datetime | None, last: datetime | None) -> float:
    """The share of a metric's span of creations (the portal's first and last) that the
    scope's range covers: about the share of its figures that are in the range."""
    if first is None or last is None or last <= first:
        return 1.0
    return max((min(last, scope.end) - max(first, scope.start)) / (last - first), 0.0)


def _kept_bound(scoped: bool, during: Any) -> list[Any]:
    """``Scope.kept`` and ``Scope.during(during)`` of ``TicketFigureValue`` with bound
    parameters (``portal``, ``inboxes`` when ``scoped``, ``start``, ``end``): the
    statements below are built once for each shape (building them took ~3 ms a call)."""
    value = TicketFigureValue
    clauses = [value.portal_id == bindparam("portal"),
               during >= bindparam("start", type_=UTCDateTime()),
               during < bindparam("end", type_=UTCDateTime())]
    if scoped:
        clauses.append(value.team_inbox_id.in_(bindparam("inboxes", expanding=True)))
    return clauses


@functools.lru_cache(maxsize=4)
def _totals_statement(scoped: bool) -> Any:
    """Each metric's count, exact sum and span of creations (the portal's first and
    last, an index seek each). Each metric its own index range: a GROUP BY over an IN
    of them took 3-21 ms on 29,000 figures where these four took 2.8."""
    value = TicketFigureValue

    def span(end: Any, metric: int) -> Any:
        return (select(end(value.created_at))
                .where(value.portal_id == bindparam("portal"), value.metric == metric)
                .scalar_subquery())

    return union_all(*[
        select(literal(int(metric)), func.count(), func.sum(value.micros),
               span(func.min, metric), span(func.max, metric))
        .where(value.metric == int(metric), *_kept_bound(scoped, value.created_at))
        for metric in figures.Metric])


@functools.lru_cache(maxsize=128)
def _picks_statement(scoped: bool, parts: tuple[tuple[int, bool, bool], ...]) -> Any:
    """For each part (``metric``, walked, from the top): its index and the two values
    at ``offset<index>`` in micros order, every part's in one statement. Walked: the
    ranked index in order, the range unindexed (given statistics, SQLite sorted the
    range for each rank instead: 24 of 27 ms at 10,000 tickets). Sorted: the range of
    the created index, micros unindexed (without statistics, SQLite walked)."""
    value = TicketFigureValue
    selects = []
    for i, (metric, walk, from_top) in enumerate(parts):
        created = _unindexed(value.created_at) if walk else value.created_at
        micros = value.micros if walk else _unindexed(value.micros)
        ranked = (select(value.micros)
                  .where(value.metric == metric, *_kept_bound(scoped, created))
                  .order_by(micros.desc() if from_top else micros)
                  .limit(2).offset(bindparam(f"offset{i}", type_=Integer())).subquery())
        selects.append(select(literal(i).label("part"), ranked.c.micros))
    return union_all(*selects) if len(selects) > 1 else selects[0]


async def _ranked_figures(connection: Any, scope: Scope) -> dict[int, Figures]:
    """SQLite (no percentile function): counts and exact sums, then the two values
    around each percentile's rank (interpolation's closest ranks), read in micros
    order from the nearer end: the 90th from the top, a tenth of the way."""
    scoped = scope.inboxes is not None
    params: dict[str, Any] = {"portal": scope.portal_id, "start": scope.start,
                              "end": scope.end}
    if scoped:
        params["inboxes"] = sorted(scope.inboxes or ())
    totals: dict[int, tuple[int, int]] = {}
    parts: list[tuple[int, bool, bool]] = []
    lows: list[int] = []
    for metric, n, total, first, last in (await connection.execute(
            _totals_statement(scoped), params)).all():
        if not n:
            continue
        totals[metric] = n, int(total)
        walk = _share(scope, first, last) >= SORT_BELOW
        for low in sorted({(n - 1) * q // 100 for q in PERCENTILES}):
            from_top = n - 2 - low < low  # ranks low and low + 1 at this offset
            params[f"offset{len(parts)}"] = max(n - 2 - low, 0) if from_top else low
            parts.append((metric, walk, from_top))
            lows.append(low)
    picked: dict[int, list[int]] = defaultdict(list)
    if parts:
        for part, micros in (await connection.execute(
                _picks_statement(scoped, tuple(parts)), params)).all():
            picked[part].append(micros)
    at_rank: dict[int, dict[int, int]] = defaultdict(dict)
    for part, values in picked.items():
        at_rank[parts[part][0]].update(enumerate(sorted(values), start=lows[part]))
    return {metric: Figures.ranked(n, total, at_rank[metric])
            for metric, (n, total) in totals.items()}


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
    kept = TicketFigures
    now_open: dict[int, dict[str, int]] = defaultdict(lambda: {OPEN: 0, PENDING: 0})
    unassigned = 0
    for user_id, team_id, state, n in (await session.execute(
            select(kept.assignee_user_id, kept.assignee_team_id, kept.status, func.count())
            .where(*scope.kept(kept), kept.status.in_((OPEN, PENDING)))
            .group_by(kept.assignee_user_id, kept.assignee_team_id, kept.status))).all():
        if user_id is not None:
            now_open[user_id][str(state)] += n
        elif team_id is None:
            unassigned += n
    assignment = TicketAssignment
    assigned = {int(user_id): n for user_id, n in (await session.execute(
        select(assignment.user_id, func.count())
        .where(*scope.kept(assignment), *scope.during(assignment.at))
        .group_by(assignment.user_id))).all()}
    closed = {int(user_id): n for user_id, n in (await session.execute(
        select(kept.assignee_user_id, func.count())
        .where(*scope.kept(kept), *scope.during(kept.closed_at), kept.status == CLOSED,
               kept.assignee_user_id.is_not(None))
        .group_by(kept.assignee_user_id))).all() if user_id is not None}
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
    kept = TicketFigures
    nobody = kept.assignee_user_id.is_(None) & kept.assignee_team_id.is_(None)
    old = func.coalesce(kept.ticket_updated_at, kept.created_at) < stale_before
    rows = select(kept.status.label("status"), case((nobody, 1), else_=0).label("nobody"),
                  case((old, 1), else_=0).label("old")).where(
                      *scope.kept_created(kept)).subquery()
    counts = {OPEN: 0, PENDING: 0, CLOSED: 0}
    unassigned = stale = 0
    for state, unowned, idle, n in (await session.execute(
            select(rows.c.status, rows.c.nobody, rows.c.old, func.count())
            .group_by(rows.c.status, rows.c.nobody, rows.c.old))).all():
        if state is None:  # never: every stored row has its ticket's status
            continue
        counts[state] = counts.get(state, 0) + n
        if state in (OPEN, PENDING):
            unassigned += n if unowned else 0
            stale += n if idle else 0
    return StatusCounts(counts[OPEN], counts[PENDING], counts[CLOSED], unassigned, stale)
