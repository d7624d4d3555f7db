"""The notification feed: open, click, reply and logged events, polled or streamed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from core.storage.models import Event
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.live import event_stream
from extension_api.schemas import respond
from extension_api.schemas.tracking import event_of
from extension_api.throttle import SlotStream, StreamSlots

STREAM_POLL_SECONDS = 0.5
_MAX_ID = 2**63 - 1


async def _events_after(request: Request, principal: Principal, after: int,
                        limit: int) -> Sequence[Event]:
    """The caller's feed: a user sees their own events, an admin the whole portal's."""
    query = select(Event).where(Event.portal_id == principal.portal_id, Event.id > after)
    if principal.user_id is not None:
        query = query.where(Event.user_id == principal.user_id)
    async with runtime_of(request).db.read() as session:
        return (await session.scalars(query.order_by(Event.id).limit(limit))).all()


@authenticated
async def list_events(request: Request, principal: Principal) -> Response:
    after = query_int(request, "after", 0, low=0, high=2**63 - 1)
    limit = query_int(request, "limit", 100, low=1, high=500)
    items = await _events_after(request, principal, after, limit)
    return respond({"items": [event_of(e) for e in items],
                         "cursor": items[-1].id if items else after})


_EVENT_ID = re.compile(r"[0-9]{1,19}")


def _resume_from(request: Request) -> int:
    """Where a stream starts: Last-Event-ID (a reconnecting browser sends it), else
    ``?after=``; 400 for anything but an event id (a cursor the database can hold)."""
    last = request.headers.get("last-event-id")
    if last is None or not last.strip():
        return query_int(request, "after", 0, low=0, high=_MAX_ID)
    if not _EVENT_ID.fullmatch(last.strip()) or int(last) > _MAX_ID:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST,
                       f"Last-Event-ID must be an event id from 0 to {_MAX_ID}")
    return int(last)


@authenticated
async def stream(request: Request, principal: Principal) -> Response:
    """Server-Sent Events from ``?after=`` (or Last-Event-ID), then live; at most
    ``StreamSlots.per_caller`` at once per caller (429 past that)."""
    after = _resume_from(request)
    bus = request.app.state.events
    slots: StreamSlots = request.app.state.streams

    async def read(after: int) -> Sequence[Event]:
        return await _events_after(request, principal, after, 200)

    slots.acquire(principal.caller)
    return SlotStream(event_stream(read, bus, after, poll=STREAM_POLL_SECONDS,
                                   portal_id=principal.portal_id),
                      ping=15, send_timeout=30, release=lambda: slots.release(principal.caller))
