"""Signed webhooks: endpoints, the outbox of deliveries, signatures and retries.

Durability: events are never written twice. The dispatcher (``dispatch``) reads the
events table past one cursor (``WebhookCursor``) and, in the transaction that moves the
cursor, writes a delivery per matching endpoint with the exact body to send; the
sender claims due deliveries (``claim``), sends them and records each attempt
(``record``). A crash at any point loses nothing: an event committed is delivered at
least once (its id is the ``webhook-id`` header, for the receiver's dedupe).

Several nodes: dispatch runs only while its transaction holds the cursor row (on
PostgreSQL ``FOR UPDATE SKIP LOCKED``: another node skips the round; SQLite has one
writer). A claim locks the due rows the same way and moves their ``next_attempt_at``
past the attempt's time-out: a node that dies mid-send loses its claim when that time
passes, and another node sends again.

PostgreSQL hands out event ids before commit, so a lower id can become visible after a
higher one: the dispatcher stops at a gap in the ids until it has seen it for
``GAP_GRACE_SECONDS`` (an id lost to a rolled-back transaction stays missing for good).

Signatures follow Standard Webhooks (standardwebhooks.com, as Svix and others send):
``webhook-id``, ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed by
the secret ``whsec_<base64>`` shown once at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.credentials import CredentialBox
from core.errors import InvalidInput, NotFound
from core.storage.models import (
    Event,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from core.types import EventType

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
ALL_EVENTS = "*"
MAX_URL_LENGTH = 2000
MAX_ENDPOINTS_PER_PORTAL = 20
GAP_GRACE_SECONDS = 10.0
SECRET_PURPOSE = b"webhook secrets v1"


class DeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: a permanent refusal, or out of attempts


class EndpointState:
    ACTIVE = "active"
    DISABLED = "disabled"


def secret_box(server_secret: str) -> CredentialBox:
    """The key that encrypts endpoints' signing secrets at rest."""
    return CredentialBox(server_secret, purpose=SECRET_PURPOSE)


# --- signatures (pure) ---------------------------------------------------------------

def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64 (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{message_id}.{timestamp}.{body}``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, body: bytes,
                   timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (signed at its time)."""
    at = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": message_id, "webhook-timestamp": str(at),
            "webhook-signature": signature(secret, message_id, at, body)}


def message_id(event_id: int) -> str:
    """The ``webhook-id`` of an event: the same on every attempt and every endpoint."""
    return f"evt_{event_id}"


# --- what an endpoint is (pure) ------------------------------------------------------

def checked_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL a webhook may be sent to; InvalidInput
    naming what is wrong. Where it points is decided when sending, on the resolved
    address (the sender's destination policy)."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url: longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidInput("url: spaces and control characters are not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("url: not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url: must start with https:// or http://")
    if not parts.hostname:
        raise InvalidInput("url: has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url: must not carry a user name or password")
    if parts.fragment or url.endswith("#"):
        raise InvalidInput("url: must not have a #fragment")
    if port == 0:
        raise InvalidInput("url: port 0 is not a port")
    return url


def checked_event_types(types: Sequence[str]) -> list[str]:
    """The event types an endpoint subscribes to: ``["*"]`` for all, else known types
    (``core.types.EventType``), each once, in the given order."""
    if not types:
        raise InvalidInput("events: name at least one event type, or \"*\" for all")
    known = {t.value for t in EventType}
    chosen: list[str] = []
    for index, name in enumerate(types):
        if name == ALL_EVENTS:
            return [ALL_EVENTS]
        if name not in known:
            raise InvalidInput(f"events[{index}]: unknown event type {name!r} (one of "
                               f"{', '.join(sorted(known))}, or \"*\")")
        if name not in chosen:
            chosen.append(name)
    return chosen


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return ALL_EVENTS in endpoint.event_types or event_type in endpoint.event_types


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


# --- endpoints -----------------------------------------------------------------------

async def create_endpoint(session: AsyncSession, box: CredentialBox, portal_id: int, *,
                          url: str, event_types: Sequence[str], description: str = ""
                          ) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint of the portal and its signing secret (shown once). It gets
    the events that follow it, not those before."""
    url, types = checked_url(url), checked_event_types(event_types)
    count = await session.scalar(select(func.count()).select_from(WebhookEndpoint)
                                 .where(WebhookEndpoint.portal_id == portal_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_PORTAL:
        raise InvalidInput(f"a portal has at most {MAX_ENDPOINTS_PER_PORTAL} webhooks")
    secret = new_secret()
    last = await session.scalar(select(func.max(Event.id)))
    endpoint = WebhookEndpoint(portal_id=portal_id, url=url, event_types=types,
                               description=description, secret=box.encrypt(secret),
                               state=EndpointState.ACTIVE, state_reason="",
                               consecutive_failures=0, start_after=last or 0)
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def endpoint_of(session: AsyncSession, portal_id: int, endpoint_id: int
                      ) -> WebhookEndpoint:
    """The portal's endpoint; NotFound for another portal's (never say which)."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.portal_id != portal_id:
        raise NotFound(f"no webhook {endpoint_id}")
    return endpoint


async def endpoints_of(session: AsyncSession, portal_id: int) -> Sequence[WebhookEndpoint]:
    return (await session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.portal_id == portal_id).order_by(WebhookEndpoint.id))).all()


@dataclass(frozen=True)
class EndpointChange:
    """What an admin changes of an endpoint; None leaves it as it is."""

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


async def change_endpoint(session: AsyncSession, portal_id: int, endpoint_id: int,
                          change: EndpointChange) -> WebhookEndpoint:
    """Change an endpoint; enabling a disabled one resumes its pending deliveries."""
    endpoint = await endpoint_of(session, portal_id, endpoint_id)
    if change.url is not None:
        endpoint.url = checked_url(change.url)
    if change.event_types is not None:
        endpoint.event_types = checked_event_types(change.event_types)
    if change.description is not None:
        endpoint.description = change.description
    if change.enabled is True and endpoint.state != EndpointState.ACTIVE:
        endpoint.state, endpoint.state_reason = EndpointState.ACTIVE, ""
        endpoint.consecutive_failures, endpoint.disabled_at = 0, None
        # Events while it was off were not queued: it resumes from now.
        endpoint.start_after = max(endpoint.start_after,
                                   await session.scalar(select(func.max(Event.id))) or 0)
    elif change.enabled is False and endpoint.state == EndpointState.ACTIVE:
        endpoint.state, endpoint.state_reason = EndpointState.DISABLED, "disabled by the admin"
        endpoint.disabled_at = utcnow()
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, portal_id: int, endpoint_id: int) -> None:
    """Delete an endpoint and its delivery log; nothing more is sent to it."""
    endpoint = await endpoint_of(session, portal_id, endpoint_id)
    await session.execute(delete(WebhookDelivery)
                          .where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.delete(endpoint)


async def deliveries_of(session: AsyncSession, portal_id: int, endpoint_id: int, *,
                        before: int | None = None, status: str | None = None,
                        limit: int = 50) -> Sequence[WebhookDelivery]:
    """An endpoint's deliveries, newest first, ids below ``before``."""
    endpoint = await endpoint_of(session, portal_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return (await session.scalars(query.order_by(WebhookDelivery.id.desc())
                                  .limit(limit))).all()


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


async def dispatch(session: AsyncSession, payload_of: Callable[[Event], str], *,
                   gaps: GapClock | None = None, limit: int = 500) -> int:
    """Turn the events past the cursor into deliveries of the endpoints that want them;
    the number of deliveries written. 0 at once when another node holds the cursor.
    ``gaps``: wait for gaps in the ids (PostgreSQL); None where ids commit in order."""
    cursor = await session.scalar(select(WebhookCursor).where(WebhookCursor.id == 1)
                                  .with_for_update(skip_locked=True))
    if cursor is None:
        return 0
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
    if not taken:
        return 0
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
    return written


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


async def prune(session: AsyncSession, older_than: timedelta) -> int:
    """Delete settled deliveries (delivered or failed) created before ``older_than``
    ago; how many went."""
    result = await session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.status != DeliveryStatus.PENDING,
        WebhookDelivery.created_at < utcnow() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
