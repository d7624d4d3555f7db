"""The reports page: the ticket reports of ``GET /api/v1/reports/...`` (core.reports,
docs/tickets.md) as charts, each with its figures in a table: conversations per day
and channel, response-time percentiles, agents' workload, open vs closed with the
unassigned and stale. The same query as the API (``from``, ``to``, ``time_zone``,
``team_inbox_id``, ``stale_hours``) and the same scope: a user's team inboxes, an
admin's all."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import Response

from core import reports
from core.tickets import access, refigure
from core.tickets.inboxes import list_inboxes
from extension_api.endpoints.reports import (
    DEFAULT_DAYS,
    DEFAULT_STALE_HOURS,
    EARLIEST,
    LATEST,
    MAX_DAYS,
)
from extension_api.pages import _dates, charts, words
from extension_api.pages._web import PageError, Viewer, render, runtime_of, signed_in

TIMES = (("first_response", "First response"),
         ("reopened_first_response", "First response after a reopen"),
         ("next_response", "Next response"), ("first_resolution", "First resolution"))
SHORT = {"reopened_first_response": "After a reopen"}  # the chart's row labels


def _bad(message: str) -> PageError:
    return PageError(400, "Not a report", message)


def _day(value: str, name: str) -> date | None:
    return _dates.day(value, name, earliest=EARLIEST, latest=LATEST, refuse=_bad)


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"There is no time zone {value[:60]!r} (e.g. Europe/Berlin).") from None


def _whole(value: str, name: str, low: int, high: int) -> int | None:
    if not value:
        return None
    if not (value.isdigit() and low <= int(value) <= high):
        raise _bad(f"{name} is a whole number from {low} to {high}.")
    return int(value)


def _volume_chart(rows: list[reports.VolumeRow], first: date, last: date) -> charts.Chart:
    channels = sorted({row.channel for row in rows})
    counts = {(row.day, row.channel): row.conversations for row in rows}
    groups = []
    day = first
    while day <= last:
        groups.append((f"{day:%d %b}", [
            (n, counts.get((day, c), 0), f"{day}: {counts.get((day, c), 0)} by "
             f"{words.source(c)}") for n, c in enumerate(channels)]))
        day += timedelta(days=1)
    total = sum(counts.values())
    return charts.columns("volume-chart", "Conversations per day and channel",
                          f"{total} conversations from {first} to {last}.", groups,
                          [words.source(c) for c in channels])


def _times_chart(found: reports.ResponseTimes) -> charts.Chart:
    rows = []
    for name, label in TIMES:
        figures: reports.Figures = getattr(found, name)
        for series, (stat, value) in enumerate((("median", figures.p50),
                                                ("90th pct.", figures.p90))):
            rows.append((f"{SHORT.get(name, label)}, {stat}", [(series, (value or 0) / 3600,
                                               f"{label}, {stat}: {charts.duration(value)}")],
                         charts.duration(value)))
    return charts.bars("times-chart", "Response times in business hours",
                       f"Of {found.tickets} tickets, {found.unanswered} not answered yet; "
                       f"median first response {charts.duration(found.first_response.p50)}.",
                       rows, ["median", "90th percentile"], width=480)


def _workload_chart(found: reports.Workload) -> charts.Chart:
    rows = [(agent.name or agent.email,
             [(0, agent.open, f"{agent.email}: {agent.open} open now"),
              (1, agent.pending, f"{agent.email}: {agent.pending} pending now"),
              (2, agent.closed, f"{agent.email}: {agent.closed} closed in the range")],
             f"{agent.open + agent.pending} now") for agent in found.agents]
    return charts.bars("workload-chart", "Agents' workload",
                       f"{len(found.agents)} agents; {found.unassigned} open or pending "
                       "tickets with nobody assigned.", rows,
                       ["open now", "pending now", "closed in the range"], width=480)


def _status_chart(found: reports.StatusCounts, hours: int) -> charts.Chart:
    values = [("open", found.open), ("pending", found.pending), ("closed", found.closed),
              ("unassigned", found.unassigned), (f"stale ({hours} h)", found.stale)]
    rows = [(name, [(n, value, f"{name}: {value}")], str(value))
            for n, (name, value) in enumerate(values)]
    return charts.bars("status-chart", "Open vs closed",
                       f"{found.open} open, {found.pending} pending, {found.closed} closed; "
                       f"{found.unassigned} unassigned, {found.stale} stale.", rows, [],
                       width=480)


@signed_in
async def reports_page(request: Request, viewer: Viewer) -> Response:
    params = request.query_params
    given = {name: params.get(name, "").strip()[:80]
             for name in ("from", "to", "time_zone", "team_inbox_id", "stale_hours")}
    zone = _zone(given["time_zone"])
    last = _day(given["to"], "to") or datetime.now(zone).date()
    first = _day(given["from"], "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise _bad("from is not after to.")
    if (last - first).days + 1 > MAX_DAYS:
        raise _bad(f"A report covers at most {MAX_DAYS} days.")
    hours = _whole(given["stale_hours"], "stale_hours", 1, 24 * 366) or DEFAULT_STALE_HOURS
    inbox_id = _whole(given["team_inbox_id"], "team_inbox_id", 1, 2**63 - 1)
    who = None if viewer.is_admin else viewer.user_id
    async with runtime_of(request).db.read() as session:
        visible = await access.member_inboxes(session, viewer.portal_id, who)
        inboxes = list(await list_inboxes(session, viewer.portal_id, who))
        scope_inboxes = None if visible is None else frozenset(visible)
        if inbox_id is not None:
            if inbox_id not in {inbox.id for inbox in inboxes}:
                raise PageError(404, "Not found", "There is no such team inbox.")
            scope_inboxes = frozenset({inbox_id})
        scope = reports.Scope.days(viewer.portal_id, scope_inboxes, first, last, zone)
        volume = await reports.volume(session, scope)
        workload = await reports.workload(session, scope)
        status = await reports.status(session, scope, timedelta(hours=hours))
        times = await reports.response_times(session, scope)
        recomputing = await refigure.recomputing(session, viewer.portal_id, scope_inboxes)
    figures: dict[str, Any] = {name: getattr(times, name) for name, _ in TIMES}
    return render(
        request, "reports.html", given={**given, "from": str(first), "to": str(last),
                                        "time_zone": zone.key, "stale_hours": str(hours)},
        inboxes=inboxes, inbox_id=inbox_id, volume=volume, times=times, figures=figures,
        labels=dict(TIMES), workload=workload, counts=status, hours=hours,
        recomputing=recomputing,
        source=words.source, duration=charts.duration,
        drawn={"volume": _volume_chart(volume, first, last), "times": _times_chart(times),
               "workload": _workload_chart(workload), "status": _status_chart(status, hours)})
