"""Each ticket's SLA figures, kept in the transaction that changes them, so reports only
read (``core.reports``).

A ticket's figures (``core.sla.ticket_sla`` in its inbox's business hours) change when
an SLA activity is logged (``created``, ``customer_message``, ``agent_reply``,
``status``) or its inbox's hours change; with them is kept a copy of the ticket's
columns reports count by (status, assignee, ...). Whatever code writes those rows
through an ORM session, the session notes the tickets after each flush, and just
before the commit recomputes them from their whole log and stores them
(``ticket_figures`` and one ``ticket_figure_values`` row per figure, in business
microseconds): the figures are committed together with what they were computed from,
or not at all. Only rows written around the ORM (raw SQL) escape this. On
PostgreSQL the tickets' rows are locked first (``FOR UPDATE``), so two transactions
adding to one ticket's log compute it one after the other, the second seeing the
first's rows.

``refresh`` is the same computation on a plain connection (migration 0022's backfill).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, delete, event, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, UOWTransaction

from core.sla import Activity, BusinessHours, TicketSla, ticket_sla
from core.storage.models import (
    EmailSource,
    FigureWalk,
    TeamInbox,
    Ticket,
    TicketActivity,
    TicketAssignment,
    TicketFigures,
    TicketFigureValue,
)
from core.storage.models.base import utcnow

SLA_KINDS = ("created", "customer_message", "agent_reply", "status")
_KEPT_KINDS = (*SLA_KINDS, "assigned")  # assignments: workload's, in their own table
_TICKETS = "inboxlog.figures.tickets"  # session.info keys: what the commit recomputes
_INBOXES = "inboxlog.figures.inboxes"
_MARKED = "inboxlog.figures.marked"
_CHUNK = 500  # ids per IN (): the drivers' parameter limits


class Metric(enum.IntEnum):
    """What a ``ticket_figure_values`` row measures."""

    FIRST_RESPONSE = 1
    REOPENED_FIRST_RESPONSE = 2  # a later cycle's first response
    NEXT_RESPONSE = 3
    FIRST_RESOLUTION = 4


def hours_key(time_zone: str, week: Mapping[str, Any] | None) -> str:
    """A digest of an inbox's hours settings (``ticket_figures.hours_key``)."""
    text = f"{time_zone}|{json.dumps(week or {}, sort_keys=True)}"
    return hashlib.sha256(text.encode()).hexdigest()


def parse_hours(time_zone: str, week: Mapping[str, Any] | None) -> BusinessHours:
    """An inbox's hours; settings that do not parse count around the clock (its API
    refuses such settings: this only keeps figures from failing a write)."""
    try:
        return BusinessHours.parse(time_zone, week)
    except ValueError:
        return BusinessHours()


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def values(sla: TicketSla) -> Iterator[tuple[Metric, int, float]]:
    """The figures of a ticket as (metric, position, seconds)."""
    if sla.first_response is not None:
        yield Metric.FIRST_RESPONSE, 0, sla.first_response
    for position, seconds in enumerate(sla.reopen_first_responses):
        yield Metric.REOPENED_FIRST_RESPONSE, position, seconds
    for position, seconds in enumerate(sla.next_responses):
        yield Metric.NEXT_RESPONSE, position, seconds
    if sla.first_resolution is not None:
        yield Metric.FIRST_RESOLUTION, 0, sla.first_resolution


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def refresh(connection: Connection, ticket_ids: Iterable[int]) -> int:
    """Recompute and store the figures of these tickets from their logs, with a copy of
    the ticket's columns reports read; tickets reports never count (no team inbox, or
    merged) get none. How many were stored. In the caller's transaction."""
    stored = 0
    hours: dict[int, tuple[str, BusinessHours]] = {}
    for chunk in _chunks(sorted(set(ticket_ids))):
        tickets = {row.id: row for row in connection.execute(
            select(Ticket.id, Ticket.portal_id, Ticket.team_inbox_id, Ticket.created_at,
                   Ticket.updated_at, Ticket.status, Ticket.assignee_user_id,
                   Ticket.assignee_team_id, Ticket.closed_at)
            .where(Ticket.id.in_(chunk), Ticket.team_inbox_id.is_not(None),
                   Ticket.merged_into_id.is_(None)))}
        wanted = {row.team_inbox_id for row in tickets.values()} - set(hours)
        if wanted:
            for inbox_id, zone, week in connection.execute(
                    select(TeamInbox.id, TeamInbox.time_zone, TeamInbox.business_hours)
                    .where(TeamInbox.id.in_(sorted(wanted)))):
                hours[inbox_id] = hours_key(zone, week), parse_hours(zone, week)
        logs: dict[int, list[Activity]] = {ticket_id: [] for ticket_id in tickets}
        last: dict[int, int] = {}
        first_email: dict[int, int] = {}
        assignment_rows: list[dict[str, Any]] = []
        assigned: dict[int, int] = {}
        for ticket_id, activity_id, kind, at, to_value, email_id in connection.execute(
                select(TicketActivity.ticket_id, TicketActivity.id, TicketActivity.kind,
                       TicketActivity.at, TicketActivity.to_value, TicketActivity.email_id)
                .where(TicketActivity.ticket_id.in_(sorted(tickets)),
                       TicketActivity.kind.in_(_KEPT_KINDS))
                .order_by(TicketActivity.ticket_id, TicketActivity.id)):
            if kind == "assigned":
                if to_value and to_value.startswith("user:") and to_value[5:].isdigit():
                    row = tickets[ticket_id]
                    position = assigned[ticket_id] = assigned.get(ticket_id, -1) + 1
                    assignment_rows.append({
                        "ticket_id": ticket_id, "position": position,
                        "portal_id": row.portal_id, "team_inbox_id": row.team_inbox_id,
                        "at": at, "user_id": int(to_value[5:])})
                continue
            logs[ticket_id].append(Activity(kind, at, to_value))
            last[ticket_id] = activity_id
            if kind == "created" and email_id is not None:
                first_email.setdefault(ticket_id, email_id)
        channels: dict[int, str] = {}
        if first_email:
            for email_id, source in connection.execute(
                    select(EmailSource.email_id, EmailSource.source)
                    .where(EmailSource.email_id.in_(sorted(set(first_email.values()))))
                    .order_by(EmailSource.email_id, EmailSource.created_at,
                              EmailSource.source)):
                channels.setdefault(email_id, source)
        figure_rows: list[dict[str, Any]] = []
        value_rows: list[dict[str, Any]] = []
        for ticket_id, row in tickets.items():
            key, parsed = hours.get(row.team_inbox_id, (hours_key("", {}), BusinessHours()))
            sla = ticket_sla(logs[ticket_id], parsed)
            figure_rows.append(_figure_row(row, last.get(ticket_id, 0), key, sla,
                                           channels.get(first_email.get(ticket_id, 0))))
            value_rows += [{"ticket_id": ticket_id, "metric": int(metric),
                            "position": position, "micros": micros(seconds),
                            "portal_id": row.portal_id, "team_inbox_id": row.team_inbox_id,
                            "created_at": row.created_at}
                           for metric, position, seconds in values(sla)]
        connection.execute(delete(TicketFigureValue)
                           .where(TicketFigureValue.ticket_id.in_(chunk)))
        connection.execute(delete(TicketAssignment)
                           .where(TicketAssignment.ticket_id.in_(chunk)))
        connection.execute(delete(TicketFigures).where(TicketFigures.ticket_id.in_(chunk)))
        if figure_rows:
            connection.execute(insert(TicketFigures), figure_rows)
        if value_rows:
            connection.execute(insert(TicketFigureValue), value_rows)
        if assignment_rows:
            connection.execute(insert(TicketAssignment), assignment_rows)
        stored += len(figure_rows)
    return stored


def _figure_row(ticket: Any, as_of: int, key: str, sla: TicketSla,
                channel: str | None) -> dict[str, Any]:
    return {"ticket_id": ticket.id, "as_of_activity_id": as_of,
            "ticket_updated_at": ticket.updated_at, "hours_key": key,
            "first_response": sla.first_response, "first_resolution": sla.first_resolution,
            "reopen_first_responses": ",".join(map(repr, sla.reopen_first_responses)),
            "next_responses": ",".join(map(repr, sla.next_responses)),
            "portal_id": ticket.portal_id, "team_inbox_id": ticket.team_inbox_id,
            "created_at": ticket.created_at, "channel": channel, "status": ticket.status,
            "assignee_user_id": ticket.assignee_user_id,
            "assignee_team_id": ticket.assignee_team_id, "closed_at": ticket.closed_at}


# --- kept on write --------------------------------------------------------------------

_HOURS = ("time_zone", "business_hours")


@event.listens_for(Session, "after_flush")
def _note(session: Session, flush_context: UOWTransaction) -> None:
    """The tickets this flush wrote or wrote SLA activities of, and the inboxes whose
    hours it changed (after a flush: the rows have their ids; ``new`` and ``dirty``
    are still what was added and changed)."""
    for row in session.new:
        if isinstance(row, Ticket):
            session.info.setdefault(_TICKETS, set()).add(row.id)
        elif isinstance(row, TicketActivity) and row.kind in _KEPT_KINDS:
            session.info.setdefault(_TICKETS, set()).add(row.ticket_id)
    for row in session.dirty:
        if isinstance(row, Ticket) and session.is_modified(row):
            session.info.setdefault(_TICKETS, set()).add(row.id)
        elif isinstance(row, TeamInbox):
            state = inspect(row)
            if any(state.attrs[name].history.has_changes() for name in _HOURS):
                session.info.setdefault(_INBOXES, set()).add(row.id)


@event.listens_for(Session, "before_commit")
def _refresh_noted(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush them next: first, so they are noted
    if not session.info.get(_TICKETS) and not session.info.get(_INBOXES):
        return
    ticket_ids: set[int] = session.info.pop(_TICKETS, set())
    inbox_ids: set[int] = session.info.pop(_INBOXES, set())
    connection = session.connection()
    if inbox_ids:
        # Not every ticket of the inbox here: that would hold the write lock (SQLite's
        # only one) for as long as thousands take. core.tickets.refigure redoes them.
        mark_stale(connection, inbox_ids)
        session.info[_MARKED] = True
    ticket_ids = {ticket_id for ticket_id in ticket_ids if ticket_id is not None}
    if not ticket_ids:
        return
    if connection.dialect.name == "postgresql":
        for chunk in _chunks(sorted(ticket_ids)):
            connection.execute(select(Ticket.id).where(Ticket.id.in_(chunk))
                               .order_by(Ticket.id).with_for_update())
    refresh(connection, ticket_ids)


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    if session.info.pop(_MARKED, False):
        for wake in list(_on_marked):
            wake()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_TICKETS, None)
    session.info.pop(_INBOXES, None)
    session.info.pop(_MARKED, None)


# --- stale after an hours change --------------------------------------------------------

_on_marked: list[Callable[[], None]] = []  # called after a commit that marked inboxes


def on_marked(wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake`` (on the committing thread, the event loop's) after each commit in
    this process that marked inboxes stale; returns what unregisters it."""
    _on_marked.append(wake)
    return lambda: _on_marked.remove(wake)


def mark_stale(connection: Connection, inbox_ids: Iterable[int]) -> None:
    """Mark these inboxes' figures stale (``ticket_figure_walks``), their walk starting
    over from their first ticket (a walk under way was computing with hours that are
    no longer the inbox's). In the caller's transaction; on PostgreSQL the row is
    locked until it ends, so a walk's step on it waits for the change or the change
    for the step."""
    dialect = connection.dialect.name
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for inbox_id, portal_id in connection.execute(
            select(TeamInbox.id, TeamInbox.portal_id)
            .where(TeamInbox.id.in_(sorted(inbox_ids)))):
        stmt = insert_of(FigureWalk).values(team_inbox_id=inbox_id, portal_id=portal_id,
                                           after_ticket_id=0, marked_at=utcnow())
        connection.execute(stmt.on_conflict_do_update(
            index_elements=[FigureWalk.team_inbox_id],
            set_={"after_ticket_id": 0, "marked_at": stmt.excluded.marked_at}))
