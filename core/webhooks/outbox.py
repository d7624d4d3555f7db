"""The outbox of webhook deliveries: events past the cursor become deliveries of the
endpoints that want them (``dispatch``), in the transaction that moves the cursor;
settled ones are pruned. See the package's docstring for durability, several nodes
and the gaps in PostgreSQL's event ids. Never commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import Event, WebhookCursor, WebhookDelivery, WebhookEndpoint, utcnow
from core.webhooks.endpoints import EndpointState, wants

log = logging.getLogger(__name__)

GAP_GRACE_SECONDS = 10.0


class DeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: a permanent refusal, or out of attempts


# --- dispatch: events -> deliveries --------------------------------------------------

@dataclass
class GapClock:
    """When this process first saw each gap in the event ids (PostgreSQL only)."""

    grace: float = GAP_GRACE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _first_seen: dict[int, float] = field(default_factory=dict)

    def settled(self, missing_from: int) -> bool:
        now = self.clock()
        seen = self._first_seen.setdefault(missing_from, now)
        return now - seen >= self.grace

    def forget_below(self, event_id: int) -> None:
        for key in [k for k in self._first_seen if k <= event_id]:
            del self._first_seen[key]


@dataclass(frozen=True)
class Dispatched:
    """What one ``dispatch_batch`` did."""

    deliveries: int  # written
    full: bool = False  # it took a whole batch of events: more may wait right behind
    held: bool = False  # it stopped at a gap in the ids not yet settled (PostgreSQL)


async def dispatch(session: AsyncSession, payload_of: Callable[[Event], str], *,
                   gaps: GapClock | None = None, limit: int = 500) -> int:
    """Turn the events past the cursor into deliveries of the endpoints that want them;
    the number of deliveries written. 0 at once when another node holds the cursor.
    ``gaps``: wait for gaps in the ids (PostgreSQL); None where ids commit in order."""
    return (await dispatch_batch(session, payload_of, gaps=gaps, limit=limit)).deliveries


async def dispatch_batch(session: AsyncSession, payload_of: Callable[[Event], str], *,
                         gaps: GapClock | None = None, limit: int = 500) -> Dispatched:
    """``dispatch``, saying also whether events may be left past the cursor: a whole
    batch was taken, or a gap holds the rest back."""
    cursor = await session.scalar(select(WebhookCursor).where(WebhookCursor.id == 1)
                                  .with_for_update(skip_locked=True))
    if cursor is None:
        return Dispatched(0)
    rows = (await session.execute(
        select(Event.id, Event.portal_id, Event.type).where(Event.id > cursor.last_event_id)
        .order_by(Event.id).limit(limit))).all()
    taken = []
    expected = cursor.last_event_id + 1
    for row in rows:
        if row.id != expected and gaps is not None and not gaps.settled(expected):
            break
        taken.append(row)
        expected = row.id + 1
    held = len(taken) < len(rows)
    if not taken:
        return Dispatched(0, held=held)
    portals = {row.portal_id for row in taken}
    endpoints = (await session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.portal_id.in_(portals),
        WebhookEndpoint.state == EndpointState.ACTIVE))).all()
    wanted = [(row, [e for e in endpoints if e.portal_id == row.portal_id
                     and row.id > e.start_after and wants(e, row.type)]) for row in taken]
    wanted = [(row, targets) for row, targets in wanted if targets]
    written = 0
    if wanted:
        events = {e.id: e for e in (await session.scalars(
            select(Event).where(Event.id.in_([row.id for row, _ in wanted])))).all()}
        now = utcnow()
        for row, targets in wanted:
            event = events.get(row.id)
            if event is None:  # deleted since (an erasure): nothing to send
                continue
            try:
                payload = payload_of(event)
            except ValueError:  # a type this version cannot write: never block the rest
                log.exception("webhooks: event %d (%s) cannot be sent", event.id, event.type)
                continue
            for endpoint in targets:
                session.add(WebhookDelivery(
                    endpoint_id=endpoint.id, portal_id=event.portal_id, event_id=event.id,
                    event_type=event.type, payload=payload, status=DeliveryStatus.PENDING,
                    attempts=0, next_attempt_at=now, last_error="", log=[]))
                written += 1
    cursor.last_event_id = taken[-1].id
    cursor.updated_at = utcnow()
    if gaps is not None:
        gaps.forget_below(cursor.last_event_id)
    await session.flush()
    return Dispatched(written, full=len(rows) == limit and not held, held=held)


async def work_waiting(session: AsyncSession) -> tuple[bool, bool]:
    """Whether there are events past the cursor, and deliveries due: two indexed reads,
    so an idle sender never takes the write lock (SQLite has one writer)."""
    cursor = await session.scalar(select(WebhookCursor.last_event_id)
                                  .where(WebhookCursor.id == 1))
    events = cursor is not None and await session.scalar(
        select(Event.id).where(Event.id > cursor).limit(1)) is not None
    due = await session.scalar(
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING,
               WebhookDelivery.next_attempt_at <= utcnow(),
               WebhookEndpoint.state == EndpointState.ACTIVE).limit(1)) is not None
    return events, due


async def active_portals(session: AsyncSession) -> set[int]:
    """The portals with an active endpoint: only their events make deliveries."""
    return set((await session.scalars(
        select(WebhookEndpoint.portal_id).where(WebhookEndpoint.state == EndpointState.ACTIVE)
        .distinct())).all())


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending delivery of an active endpoint is due (a retry's time,
    or a claim's end), None when none is pending: the sender sleeps until then."""
    return await session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at))
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING,
               WebhookEndpoint.state == EndpointState.ACTIVE))


async def prune(session: AsyncSession, older_than: timedelta) -> int:
    """Delete settled deliveries (delivered or failed) created before ``older_than``
    ago; how many went."""
    result = await session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.status != DeliveryStatus.PENDING,
        WebhookDelivery.created_at < utcnow() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
