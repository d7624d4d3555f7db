"""Webhooks: the endpoints a portal's admin registers, the dispatch cursor over the
events table, and the deliveries (the outbox) with their attempt log.

An event reaches an endpoint in two durable steps (``core.webhooks``): the dispatcher
reads the events table past ``WebhookCursor.last_event_id`` and, in one transaction,
writes a ``WebhookDelivery`` for every matching endpoint and moves the cursor; the
sender then claims due deliveries and records each attempt. A crash between the steps
loses nothing: both are rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class WebhookEndpoint(Base):
    """A URL that receives a portal's events of ``event_types`` (``["*"]``: all).

    ``secret`` is the signing secret (``whsec_...``) encrypted with the server key
    (core.credentials); it is shown once, at creation. ``state`` is ``active`` or
    ``disabled`` (``state_reason`` says why: too many consecutive failures, or the
    admin). Events with ids up to ``start_after`` predate the endpoint and are not sent.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="active")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    start_after: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookCursor(Base):
    """One row (id 1): the last event the dispatcher has turned into deliveries. A node
    dispatches only while it holds this row's lock (PostgreSQL ``FOR UPDATE SKIP
    LOCKED``; SQLite has one writer)."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: ``payload`` is the exact body signed and sent on every
    attempt. ``status``: ``pending`` (due at ``next_attempt_at``; while an attempt is in
    flight that is the claim's expiry), ``delivered`` or ``failed`` (given up). ``log``
    lists the attempts: ``{"attempt", "at", "duration_ms", "response_code", "error",
    "next_attempt_at"}``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)  # not a key: events are purged
    event_type: Mapped[str] = mapped_column(String(30))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_response_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
