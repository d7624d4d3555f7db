"""Shapes of the ticket reports (``core.reports``): every duration in business seconds
of the ticket's team inbox; ``from``/``to`` are the local days counted."""

from __future__ import annotations

from datetime import date

import msgspec

from core import reports
from extension_api.schemas._codec import ResponseShape


class Range(ResponseShape):
    """The days counted (both included) in ``time_zone``, and the team inbox (null:
    every inbox the caller sees)."""

    from_: date = msgspec.field(name="from")
    to: date
    time_zone: str
    team_inbox_id: int | None


class VolumeDay(ResponseShape):
    day: date
    channel: str
    conversations: int


class VolumeReport(ResponseShape):
    """Tickets created per day and channel (the source of their first message:
    team_inbox for the inbox's forwarding address, sync for its connected mailbox)."""

    range: Range
    total: int
    items: list[VolumeDay]
    # An inbox counted had its hours changed and its tickets' figures are being
    # recomputed (core.tickets.refigure): those not yet redone count their old figures.
    recomputing: bool = False


class Figures(ResponseShape):
    """Business seconds: how many, median, 90th percentile, mean (null when none)."""

    count: int
    p50: float | None
    p90: float | None
    mean: float | None


class ResponseTimesReport(ResponseShape):
    """Of the tickets created in the range: the first response (the first cycle's;
    reopened tickets' cycles apart, in reopened_first_response), next responses and
    the time to the first close, in business hours."""

    range: Range
    tickets: int
    unanswered: int
    first_response: Figures
    reopened_first_response: Figures
    next_response: Figures
    first_resolution: Figures
    # An inbox counted had its hours changed and its tickets' figures are being
    # recomputed (core.tickets.refigure): those not yet redone count their old figures.
    recomputing: bool = False


class AgentLoad(ResponseShape):
    """An agent's open and pending tickets now; assigned to them in the range (share:
    of all assigned there, 0 to 1) and closed in the range."""

    user_id: int
    email: str
    name: str
    open: int
    pending: int
    assigned: int
    share: float
    closed: int


class WorkloadReport(ResponseShape):
    range: Range
    unassigned: int
    items: list[AgentLoad]
    # An inbox counted had its hours changed and its tickets' figures are being
    # recomputed (core.tickets.refigure): those not yet redone count their old figures.
    recomputing: bool = False


class StatusReport(ResponseShape):
    """Of the tickets created in the range: open, pending, closed; open or pending with
    nobody assigned; stale (open or pending, no activity for stale_hours)."""

    range: Range
    open: int
    pending: int
    closed: int
    unassigned: int
    stale: int
    stale_hours: int
    # An inbox counted had its hours changed and its tickets' figures are being
    # recomputed (core.tickets.refigure): those not yet redone count their old figures.
    recomputing: bool = False


def _figures(figures: reports.Figures) -> Figures:
    return Figures(count=figures.count, p50=figures.p50, p90=figures.p90, mean=figures.mean)


def volume_of(span: Range, rows: list[reports.VolumeRow]) -> VolumeReport:
    return VolumeReport(range=span, total=sum(r.conversations for r in rows), items=[
        VolumeDay(day=r.day, channel=r.channel, conversations=r.conversations) for r in rows])


def response_times_of(span: Range, found: reports.ResponseTimes) -> ResponseTimesReport:
    return ResponseTimesReport(
        range=span, tickets=found.tickets, unanswered=found.unanswered,
        first_response=_figures(found.first_response),
        reopened_first_response=_figures(found.reopened_first_response),
        next_response=_figures(found.next_response),
        first_resolution=_figures(found.first_resolution))


def workload_of(span: Range, found: reports.Workload) -> WorkloadReport:
    return WorkloadReport(range=span, unassigned=found.unassigned, items=[
        AgentLoad(user_id=a.user_id, email=a.email, name=a.name, open=a.open,
                  pending=a.pending, assigned=a.assigned, share=a.share, closed=a.closed)
        for a in found.agents])


def status_of(span: Range, found: reports.StatusCounts, stale_hours: int) -> StatusReport:
    return StatusReport(range=span, open=found.open, pending=found.pending,
                        closed=found.closed, unassigned=found.unassigned, stale=found.stale,
                        stale_hours=stale_hours)
