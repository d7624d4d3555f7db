"""Logged emails, their threads, sources, associations, attachments and blobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.storage.models.base import Base, BigId, utcnow


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(998), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThreadRef(Base):
    """A Message-ID a thread claims: its own emails' ids and every id they reference.

    Claiming referenced ids too (JWZ's empty containers) lets a reply that arrives
    before its parent, or whose parent was never logged, still find the thread.
    """

    __tablename__ = "thread_refs"
    __table_args__ = (UniqueConstraint("portal_id", "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(998))
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("portal_id", "message_id"),
        Index("ix_emails_portal_sent_at", "portal_id", "sent_at"),
        Index("ix_emails_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(998))
    synthetic_message_id: Mapped[bool] = mapped_column(default=False)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"), index=True)
    thread_reason: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    from_email: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text, default="")
    # The new part of a reply, without quoted history and signature, for timelines.
    reply_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    html: Mapped[str] = mapped_column(Text, default="")  # sanitized
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    parse_notes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Why it is bulk or automatic mail (auto-reply, mailing list, bounce), if it is.
    automatic: Mapped[str | None] = mapped_column(String(40), default=None)
    # Sender authentication at SMTP ingest (spf, dkim, dmarc, arc, reason, the portal's
    # policy and its decision); None when nothing was checked.
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Its language (core.mail.languages: "en", "de"), for search's stemming; None: unknown.
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # Mail that came to a team inbox: only its members (and admins) see it (docs/tickets.md).
    team_inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), index=True, default=None)

    sources: Mapped[list[EmailSource]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="EmailSource.created_at"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Attachment.id"
    )
    contact_links: Mapped[list[EmailContact]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="EmailContact.contact_id"
    )


class EmailSource(Base):
    __tablename__ = "email_sources"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailContact(Base):
    __tablename__ = "email_contacts"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EmailCompany(Base):
    __tablename__ = "email_companies"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EmailDeal(Base):
    __tablename__ = "email_deals"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EmailTicket(Base):
    __tablename__ = "email_tickets"

    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Blob(Base):
    """A file in the content-addressed store; the bytes live under the data dir."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A file of an email. ``blob_sha256`` is None when it was listed but not stored."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    inline: Mapped[bool] = mapped_column(default=False)
    content_id: Mapped[str | None] = mapped_column(String(998))
