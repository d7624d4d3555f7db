"""Shapes of webhooks: an endpoint (its secret shown once), a change, a delivery and
its attempts, and the body every delivery POSTs (``payload_of``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from core import webhooks
from core.storage.models import Event as EventRow
from core.storage.models import WebhookDelivery as DeliveryRow
from core.storage.models import WebhookEndpoint as EndpointRow
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp, to_json
from extension_api.schemas.mail import Id
from extension_api.schemas.tracking import Event, event_of

_EVENTS_DOC = ('event types to receive ("open", "click", "reply", "logged", ...), or ["*"] '
               "for every type, those added later too")
Url = Annotated[str, Meta(min_length=1, max_length=webhooks.MAX_URL_LENGTH,
                          description="https:// (or http://) URL the events are POSTed to")]
EventTypes = Annotated[list[Annotated[str, Meta(max_length=40)]],
                       Meta(min_length=1, max_length=50, description=_EVENTS_DOC)]
Description = Annotated[str, Meta(max_length=200)]


class WebhookRequest(RequestShape):
    """A webhook to register: where, and which events."""

    url: Url
    events: EventTypes
    description: Description = ""


class WebhookPatch(RequestShape):
    """What to change of a webhook; ``enabled: true`` turns a disabled one back on."""

    url: Url | UnsetType = UNSET
    events: EventTypes | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET

    def change(self) -> webhooks.EndpointChange:
        return webhooks.EndpointChange(
            url=None if self.url is UNSET else self.url,
            event_types=None if self.events is UNSET else self.events,
            description=None if self.description is UNSET else self.description,
            enabled=None if self.enabled is UNSET else self.enabled)


class Webhook(ResponseShape):
    """A registered endpoint. ``state`` is ``disabled`` after too many failed attempts
    in a row (``state_reason`` says which), or when the admin turned it off."""

    id: Id
    url: str
    events: list[str]
    description: str
    state: Literal["active", "disabled"]
    state_reason: str
    consecutive_failures: int
    created_at: Timestamp
    disabled_at: Timestamp | None


class NewWebhook(Webhook):
    """A webhook just registered, with its signing secret: shown only this once."""

    secret: Annotated[str, Meta(description=(
        "whsec_<base64>: the key of the webhook-signature header (Standard Webhooks)"))]


def _fields(row: EndpointRow) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": list(row.event_types),
            "description": row.description, "state": row.state,
            "state_reason": row.state_reason,
            "consecutive_failures": row.consecutive_failures, "created_at": row.created_at,
            "disabled_at": row.disabled_at}


def webhook_of(row: EndpointRow) -> Webhook:
    return Webhook(**_fields(row))


def new_webhook_of(row: EndpointRow, secret: str) -> NewWebhook:
    return NewWebhook(**_fields(row), secret=secret)


class DeliveryAttempt(ResponseShape):
    attempt: Id
    at: Timestamp
    duration_ms: int
    response_code: int | None
    error: str
    next_attempt_at: Timestamp | None


class Delivery(ResponseShape):
    """One event for one webhook: ``pending`` (``next_attempt_at`` says when),
    ``delivered``, or ``failed`` (given up); ``log`` lists its attempts."""

    id: Id
    event_id: Id
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_response_code: int | None
    last_error: str
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    log: list[DeliveryAttempt]


def _attempt_of(entry: dict[str, Any]) -> DeliveryAttempt:
    next_at = entry.get("next_attempt_at")
    return DeliveryAttempt(
        attempt=int(entry["attempt"]), at=datetime.fromisoformat(entry["at"]),
        duration_ms=int(entry["duration_ms"]), response_code=entry.get("response_code"),
        error=str(entry.get("error") or ""),
        next_attempt_at=datetime.fromisoformat(next_at) if next_at else None)


def delivery_of(row: DeliveryRow) -> Delivery:
    return Delivery(id=row.id, event_id=row.event_id, event_type=row.event_type,
                    status=row.status,  # type: ignore[arg-type]
                    attempts=row.attempts, last_response_code=row.last_response_code,
                    last_error=row.last_error,
                    next_attempt_at=(row.next_attempt_at
                                     if row.status == webhooks.DeliveryStatus.PENDING
                                     else None),
                    created_at=row.created_at, delivered_at=row.delivered_at,
                    log=[_attempt_of(entry) for entry in row.log])


class WebhookBody(ResponseShape):
    """What a delivery POSTs: the event's type, when it happened, and the event as
    ``GET /api/v1/events`` lists it."""

    type: str
    timestamp: Timestamp
    data: Event


_ENCODER = msgspec.json.Encoder()


def payload_of(event: EventRow) -> str:
    """The JSON body of an event's deliveries (the bytes that are signed)."""
    body = WebhookBody(type=event.type, timestamp=event.at, data=event_of(event))
    return _ENCODER.encode(to_json(body)).decode()
