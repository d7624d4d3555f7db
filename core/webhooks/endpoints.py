"""Webhook endpoints: what a portal's admin registers (the URL and the event types,
checked), changes, deletes, and the delivery log they read. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.credentials import CredentialBox
from core.errors import InvalidInput, NotFound
from core.storage.models import Event, WebhookDelivery, WebhookEndpoint, utcnow
from core.types import EventType
from core.webhooks.signing import new_secret

ALL_EVENTS = "*"
MAX_URL_LENGTH = 2000
MAX_ENDPOINTS_PER_PORTAL = 20


class EndpointState:
    ACTIVE = "active"
    DISABLED = "disabled"


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

