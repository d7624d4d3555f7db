"""What agents write from a ticket besides the reply itself (docs/ticket-replies.md):
a team inbox's canned responses, and who is viewing or replying to a ticket right now
(collision detection). Internal notes are ticket activity (kind ``note``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class CannedResponse(Base):
    """A reply a team inbox's agents insert with one click; ``body`` may hold
    placeholders (``{{contact.first_name}}``...), filled in as plain text when used."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("team_inbox_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    team_inbox_id: Mapped[int] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketPresence(Base):
    """An agent viewing (``viewing``) or writing a reply to (``replying``) a ticket,
    until ``expires_at`` unless renewed. ``seen_activity_id`` is the ticket's last
    activity when the agent loaded it: another agent's reply after it is a collision."""

    __tablename__ = "ticket_presence"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10))
    seen_activity_id: Mapped[int] = mapped_column(BigInteger, default=0)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
