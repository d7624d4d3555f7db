"""Ticket reports (core.reports): volume, response times, workload, status.

Query parameters, all optional: ``from`` and ``to`` (dates, both included; default the
30 days to today, at most 366), ``time_zone`` (IANA, default UTC: where days begin),
``team_inbox_id`` (one inbox; 404 unless the caller sees it), and for ``/status``
``stale_hours`` (default 48). A user sees the team inboxes they are a member of; the
admin every one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from core import reports
from core.storage.models import TeamInbox
from core.tickets import access, refigure
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import respond
from extension_api.schemas.reports import (
    Range,
    response_times_of,
    status_of,
    volume_of,
    workload_of,
)

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_STALE_HOURS = 48
# Days a report may name: nothing was logged before, and far ones overflow in UTC.
EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)
_MAX_ID = 2**63 - 1


def _bad(message: str) -> ApiError:
    return ApiError(400, ApiErrorCode.BAD_REQUEST, message)


def _day(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(f"{name} must be a date, YYYY-MM-DD") from None


def _zone(request: Request) -> ZoneInfo:
    name = request.query_params.get("time_zone", "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"time_zone: unknown time zone {name[:60]!r}") from None


async def _scope(request: Request, principal: Principal, session: AsyncSession
                 ) -> tuple[reports.Scope, Range]:
    zone = _zone(request)
    last = _day(request, "to") or datetime.now(zone).date()
    if not EARLIEST <= last <= LATEST:
        raise _bad(f"to must be from {EARLIEST} to {LATEST}")
    first = _day(request, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if not EARLIEST <= first <= LATEST:
        raise _bad(f"from must be from {EARLIEST} to {LATEST}")
    if first > last:
        raise _bad("from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise _bad(f"a report covers at most {MAX_DAYS} days")
    visible = await access.member_inboxes(session, principal.portal_id, principal.user_id)
    inbox_id: int | None = None
    inboxes = None if visible is None else frozenset(visible)
    if "team_inbox_id" in request.query_params:
        inbox_id = query_int(request, "team_inbox_id", 0, low=1, high=_MAX_ID)
        inbox = await session.get(TeamInbox, inbox_id)
        if inbox is None or inbox.portal_id != principal.portal_id or (
                inboxes is not None and inbox_id not in inboxes):
            raise ApiError(404, ApiErrorCode.NOT_FOUND, f"no team inbox {inbox_id}")
        inboxes = frozenset({inbox_id})
    scope = reports.Scope.days(principal.portal_id, inboxes, first, last, zone)
    return scope, Range(from_=first, to=last, time_zone=zone.key, team_inbox_id=inbox_id)


def _report(build: Callable[[Request, AsyncSession, reports.Scope, Range], Awaitable[Any]]
            ) -> Callable[[Request], Awaitable[Response]]:
    @authenticated
    async def endpoint(request: Request, principal: Principal) -> Response:
        async with runtime_of(request).db.read() as session:
            scope, span = await _scope(request, principal, session)
            report = await build(request, session, scope, span)
            report.recomputing = await refigure.recomputing(session, scope.portal_id,
                                                            scope.inboxes)
            return respond(report)

    endpoint.__doc__ = build.__doc__
    return endpoint


async def _volume(request: Request, session: AsyncSession, scope: reports.Scope,
                  span: Range) -> Any:
    """Tickets created per day and channel."""
    return volume_of(span, await reports.volume(session, scope))


async def _response_times(request: Request, session: AsyncSession, scope: reports.Scope,
                          span: Range) -> Any:
    """First-response (and next-response, first-resolution) percentiles."""
    # A read: the figures are kept where the tickets' activity is written.
    return response_times_of(span, await reports.response_times(session, scope))


async def _workload(request: Request, session: AsyncSession, scope: reports.Scope,
                    span: Range) -> Any:
    """Per agent: open, pending, assigned, share, closed."""
    return workload_of(span, await reports.workload(session, scope))


async def _status(request: Request, session: AsyncSession, scope: reports.Scope,
                  span: Range) -> Any:
    """Open vs closed, unassigned, stale."""
    hours = query_int(request, "stale_hours", DEFAULT_STALE_HOURS, low=1, high=24 * 366)
    found = await reports.status(session, scope, timedelta(hours=hours))
    return status_of(span, found, hours)


volume = _report(_volume)
first_response = _report(_response_times)
workload = _report(_workload)
status = _report(_status)
