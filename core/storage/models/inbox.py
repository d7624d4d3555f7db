"""Connected inboxes (IMAP/SMTP mailboxes of portal users, or of team inboxes) and their
sync checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.storage.models.base import Base, BigId, utcnow


class Inbox(Base):
    """A user's mailbox (``user_id``), or a team inbox's shared one (``team_inbox_id``,
    support@: connected by the admin, synced into the team inbox's tickets; exactly one
    of the two is set). ``secret`` is the password encrypted with the server key
    (core.credentials); it is never returned by the API nor logged.

    ``status``: ``connected``, ``throttled`` (the provider asked us to slow down),
    ``mailbox_full``, or ``disconnected`` (``status_reason`` says why, ``status_code``
    names it: ``auth_rejected``, ``oauth_revoked``, ``oauth_scope_missing``, ...).

    ``auth``: ``password``, or ``oauth`` (``secret`` then holds the encrypted tokens of
    ``oauth_provider``, a JSON object: access and refresh token, expiry).
    """

    __tablename__ = "inboxes"
    __table_args__ = (
        UniqueConstraint("portal_id", "address"),
        CheckConstraint("(user_id IS NULL) <> (team_inbox_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    # A team inbox's mailbox goes with its team inbox (docs/tickets.md, "connected mailbox").
    team_inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), index=True, default=None)
    address: Mapped[str] = mapped_column(String(320))  # lower-case
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int]
    imap_security: Mapped[str] = mapped_column(String(10))  # ssl | starttls | none
    smtp_host: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int]
    smtp_security: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(320))
    secret: Mapped[str] = mapped_column(Text)
    auth: Mapped[str] = mapped_column(String(10), default="password",
                                      server_default="password")
    oauth_provider: Mapped[str] = mapped_column(String(40), default="", server_default="")
    first_sync_days: Mapped[int] = mapped_column(default=30)
    status: Mapped[str] = mapped_column(String(20), default="connected")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_code: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # First failure to reach the server in the current outage; None when reachable.
    unreachable_since: Mapped[datetime | None] = mapped_column(default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    folders: Mapped[list[InboxFolder]] = relationship(
        back_populates="inbox", cascade="all, delete-orphan", lazy="selectin",
        order_by="InboxFolder.id",
    )


class InboxFolder(Base):
    """Where sync stopped in one folder: UIDs up to ``last_uid`` under ``uidvalidity``
    are done. A new UIDVALIDITY starts the folder over (logging is idempotent)."""

    __tablename__ = "inbox_folders"
    __table_args__ = (UniqueConstraint("inbox_id", "role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))  # inbox | sent
    name: Mapped[str] = mapped_column(Text)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    highest_modseq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")

    inbox: Mapped[Inbox] = relationship(back_populates="folders")
