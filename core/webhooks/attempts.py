"""Webhook attempts: due deliveries claimed for one attempt (``claim``, fair between
portals), what an attempt came to (``Attempt``), and its record: delivered, retried
after a backoff (``RetryPolicy``), or failed for good, the endpoint disabled after a
run of failures (``record``). Never commits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import WebhookDelivery, WebhookEndpoint, utcnow
from core.webhooks.endpoints import EndpointState
from core.webhooks.outbox import DeliveryStatus

# --- retries (pure) ------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """Attempt ``n`` failing with a temporary error is retried after
    ``first_retry * 2**(n-1)`` seconds (at most ``max_delay``), times a random factor
    in [0.5, 1] (jitter: receivers that went down together are not all hit again at
    once); after ``max_attempts`` the delivery fails. ``disable_after`` failed attempts
    in a row, whatever the deliveries, disable the endpoint."""

    first_retry: float = 30.0
    max_delay: float = 6 * 3600.0
    max_attempts: int = 12
    disable_after: int = 20
    timeout: float = 10.0  # one attempt, connect to last byte read

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.max_delay, self.first_retry * 2 ** max(0, attempt - 1))
        return float(base * (0.5 + 0.5 * rand()))


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to, as the sender saw it."""

    response_code: int | None  # None: no HTTP answer (refused, timed out, unreachable)
    duration_ms: int
    error: str = ""  # "" when delivered
    retry_after: float | None = None  # the receiver's Retry-After, in seconds

    @property
    def delivered(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300

    @property
    def retryable(self) -> bool:
        """Temporary: no answer (time-out, connection failure), a 5xx, 408 or 429. A
        refused destination, a redirect or another 4xx will not change by retrying."""
        code = self.response_code
        if code is None:
            return not self.error.startswith("destination_not_allowed")
        return code >= 500 or code in (408, 429)


# --- claims and attempts --------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with what sending it needs."""

    delivery_id: int
    endpoint_id: int
    event_id: int
    event_type: str
    attempt: int  # 1 for the first
    url: str
    secret: str  # encrypted: ``secret_box(...).decrypt``
    payload: str
    portal_id: int = 0  # whose endpoint: the sender's share of attempts per portal


async def claim(session: AsyncSession, *, lease: float, limit: int = 20,
                per_portal: int | None = None,
                busy: Mapping[int, int] | None = None) -> list[Claimed]:
    """Due deliveries of active endpoints, claimed for ``lease`` seconds: no other node
    (nor this one) claims them again before that, unless ``record`` settles them.

    ``per_portal``: at most that many attempts of one portal in flight, counting those
    ``busy`` already (portal id -> attempts in flight), and the portals taken in turn,
    each one's oldest first. So one tenant's backlog (twenty endpoints that time out,
    a burst of events) never holds every attempt slot while others' deliveries wait.
    """
    now = utcnow()
    busy = busy or {}
    due = (WebhookDelivery.status == DeliveryStatus.PENDING,
           WebhookDelivery.next_attempt_at <= now,
           WebhookEndpoint.state == EndpointState.ACTIVE)
    if per_portal is None:
        candidates = (select(WebhookDelivery.id, WebhookEndpoint.portal_id)
                      .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                      .where(*due)
                      .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id))
    else:
        full = sorted(p for p, n in busy.items() if n >= per_portal)
        turn = func.row_number().over(
            partition_by=WebhookEndpoint.portal_id,
            order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id)).label("turn")
        ranked = (select(WebhookDelivery.id, WebhookEndpoint.portal_id, turn)
                  .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                  .where(*due, WebhookEndpoint.portal_id.not_in(full))
                  .subquery("ranked"))
        candidates = (select(WebhookDelivery.id, ranked.c.portal_id)
                      .join(ranked, ranked.c.id == WebhookDelivery.id)
                      .where(ranked.c.turn <= per_portal)
                      .order_by(ranked.c.turn, WebhookDelivery.next_attempt_at,
                                WebhookDelivery.id))
    rows = (await session.execute(candidates.limit(limit).with_for_update(
        skip_locked=True, of=WebhookDelivery))).all()
    ids: list[int] = []
    taken: dict[int, int] = {}
    for delivery_id, portal_id in rows:
        if per_portal is not None and busy.get(portal_id, 0) + taken.get(portal_id, 0) \
                >= per_portal:
            continue
        taken[portal_id] = taken.get(portal_id, 0) + 1
        ids.append(delivery_id)
    if not ids:
        return []
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                          .values(next_attempt_at=now + timedelta(seconds=lease)))
    claimed = (await session.execute(
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret,
               WebhookEndpoint.portal_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id))).all()
    return [Claimed(d.id, d.endpoint_id, d.event_id, d.event_type, d.attempts + 1, url,
                    secret, d.payload, portal_id) for d, url, secret, portal_id in claimed]


def _reason(attempt: Attempt) -> str:
    return attempt.error or f"HTTP {attempt.response_code}"


async def record(session: AsyncSession, claimed: Claimed, attempt: Attempt,
                 policy: RetryPolicy, *, rand: Callable[[], float] = random.random) -> str:
    """Record one attempt: delivered, retried later (backoff), or failed for good; the
    endpoint's run of failures, and its disabling past ``policy.disable_after``. The
    delivery's status after it ("" when the delivery is gone: its endpoint deleted)."""
    delivery = await session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery.status if delivery is not None else ""
    now = utcnow()
    delivery.attempts += 1
    delivery.last_response_code = attempt.response_code
    delivery.last_error = attempt.error
    next_at: datetime | None = None
    if attempt.delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
        await session.execute(update(WebhookEndpoint)
                              .where(WebhookEndpoint.id == claimed.endpoint_id)
                              .values(consecutive_failures=0))
    else:
        if attempt.retryable and delivery.attempts < policy.max_attempts:
            wait = policy.delay(delivery.attempts, rand)
            if attempt.retry_after is not None:
                wait = max(wait, min(attempt.retry_after, policy.max_delay))
            next_at = now + timedelta(seconds=wait)
        else:
            delivery.status = DeliveryStatus.FAILED
        failures = await session.scalar(
            update(WebhookEndpoint).where(WebhookEndpoint.id == claimed.endpoint_id)
            .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
            .returning(WebhookEndpoint.consecutive_failures))
        if failures is not None and failures >= policy.disable_after:
            await session.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == claimed.endpoint_id,
                                              WebhookEndpoint.state == EndpointState.ACTIVE)
                .values(state=EndpointState.DISABLED, disabled_at=now, state_reason=(
                    f"disabled after {failures} failed attempts in a row; the last: "
                    f"{_reason(attempt)}")))
    delivery.next_attempt_at = next_at
    delivery.log = [*delivery.log, {
        "attempt": delivery.attempts, "at": now.isoformat(),
        "duration_ms": attempt.duration_ms, "response_code": attempt.response_code,
        "error": attempt.error, "next_attempt_at": next_at.isoformat() if next_at else None}]
    await session.flush()
    return delivery.status
