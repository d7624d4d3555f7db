"""Mail to send once the transaction that decided it has committed: a team inbox's
acknowledgements of new tickets (``core.tickets.acknowledgements``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class AcknowledgementOutbox(Base):
    """A ticket's acknowledgement, written in the ticket's own transaction: ``message``
    is the whole message (its ``message_id`` the idempotency key: one row, one send),
    sent to ``recipient`` with a null envelope sender. A sender claims it
    (``claimed_until``) before handing it to the relay; ``sent_at`` once the relay took
    it; after a failure ``next_attempt_at`` backs off; ``given_up_at`` when too old."""

    __tablename__ = "acknowledgement_outbox"
    __table_args__ = (Index("ix_acknowledgement_outbox_sent_at_next_attempt_at",
                            "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           unique=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    given_up_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
