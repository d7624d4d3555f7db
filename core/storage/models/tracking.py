"""Tracked sends from the extension, their links, and the opens and clicks they get."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class TrackedSend(Base):
    """An email the extension is about to send with tracking; ``token`` is public (it is in
    the pixel and link URLs, signed), ``email_id`` is the logged email once it arrives."""

    __tablename__ = "tracked_sends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    bcc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")  # as returned, links rewritten
    track_opens: Mapped[bool] = mapped_column(default=True)
    track_clicks: Mapped[bool] = mapped_column(default=True)
    log: Mapped[bool] = mapped_column(default=True)
    # Where the sender was when they created it: hits from there are their own opens.
    creator_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("emails.id", ondelete="SET NULL"), unique=True
    )


class TrackedLink(Base):
    __tablename__ = "tracked_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tracked_send_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_sends.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    url: Mapped[str] = mapped_column(Text)


class TrackingHit(Base):
    """One request to a pixel or a link, as recorded and classified."""

    __tablename__ = "tracking_hits"
    __table_args__ = (Index("ix_tracking_hits_send_at", "tracked_send_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tracked_send_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_sends.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(10))  # open | click
    link_id: Mapped[int | None] = mapped_column(ForeignKey("tracked_links.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(1000), default="")
    method: Mapped[str] = mapped_column(String(10), default="GET")
    machine: Mapped[bool] = mapped_column(default=False)
    # False: the sender's own open, or Gmail's proxy fetching again
    counted: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str] = mapped_column(String(100), default="")  # the verdict, in words
    client: Mapped[str] = mapped_column(String(60), default="", server_default="")
