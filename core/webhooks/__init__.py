"""Signed webhooks: endpoints (``endpoints``), the outbox of deliveries (``outbox``),
attempts and retries (``attempts``), signatures (``signing``).

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

from core.webhooks.attempts import (
    Attempt,
    Claimed,
    RetryPolicy,
    claim,
    record,
)
from core.webhooks.endpoints import (
    ALL_EVENTS,
    MAX_ENDPOINTS_PER_PORTAL,
    MAX_URL_LENGTH,
    EndpointChange,
    EndpointState,
    change_endpoint,
    checked_event_types,
    checked_url,
    create_endpoint,
    delete_endpoint,
    deliveries_of,
    endpoint_of,
    endpoints_of,
    wants,
)
from core.webhooks.outbox import (
    GAP_GRACE_SECONDS,
    DeliveryStatus,
    Dispatched,
    GapClock,
    active_portals,
    dispatch,
    dispatch_batch,
    next_due,
    prune,
    work_waiting,
)
from core.webhooks.signing import (
    SECRET_PREFIX,
    SECRET_PURPOSE,
    message_id,
    new_secret,
    secret_box,
    signature,
    signed_headers,
)

__all__ = [
    "ALL_EVENTS",
    "GAP_GRACE_SECONDS",
    "MAX_ENDPOINTS_PER_PORTAL",
    "MAX_URL_LENGTH",
    "SECRET_PREFIX",
    "SECRET_PURPOSE",
    "Attempt",
    "Claimed",
    "DeliveryStatus",
    "Dispatched",
    "EndpointChange",
    "EndpointState",
    "GapClock",
    "RetryPolicy",
    "active_portals",
    "change_endpoint",
    "checked_event_types",
    "checked_url",
    "claim",
    "create_endpoint",
    "delete_endpoint",
    "deliveries_of",
    "dispatch",
    "dispatch_batch",
    "endpoint_of",
    "endpoints_of",
    "message_id",
    "new_secret",
    "next_due",
    "prune",
    "record",
    "secret_box",
    "signature",
    "signed_headers",
    "wants",
    "work_waiting",
]
