"""What retention rules govern: raw copies of received mail, and the ingest audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class RawCopy(Base):
    """Raw bytes kept beside a logged email for a while: its header block, in the row
    itself (``content``), or the whole message, in the blob store (``blob_sha256``).
    ``rule`` names the retention rule that removes it."""

    __tablename__ = "raw_copies"
    __table_args__ = (Index("ix_raw_copies_rule_created_at", "rule", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestLogEntry(Base):
    """A message inboxlog received and did not log: metadata only, never a body."""

    __tablename__ = "ingest_log"
    __table_args__ = (
        Index("ix_ingest_log_portal_id_id", "portal_id", "id"),
        Index("ix_ingest_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    logging_address: Mapped[str] = mapped_column(String(320), default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    envelope_sender: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    source: Mapped[str] = mapped_column(String(20))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(default=0)
    # The team inbox whose mail this was (its members' and the admin's only); None for
    # a user's mail, and for entries older than 0023 it could not attribute.
    team_inbox_id: Mapped[int | None] = mapped_column(BigId, default=None)
