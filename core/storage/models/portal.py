"""A portal (one CRM account), its users, their addresses and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.storage.models.base import Base, BigId, utcnow


class Portal(Base):
    __tablename__ = "portals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    bcc_token: Mapped[str] = mapped_column(String(64), unique=True)
    log_attachments: Mapped[bool] = mapped_column(default=True)
    auto_create_contacts: Mapped[bool] = mapped_column(default=True)
    # Addresses ("a@b.com") and domains ("b.com") whose mail is never logged.
    never_log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Connected inboxes: log only replies to logged threads ("replies"), or also any
    # mail with a known contact ("known_contacts").
    inbox_log_mode: Mapped[str] = mapped_column(
        String(20), default="replies", server_default="replies"
    )
    # Sender authentication of mail at the logging address: "off", "monitor" (checked
    # and kept, never refused) or "enforce". New portals enforce; portals that existed
    # before it was introduced got "monitor" from the migration (docs/sender-auth.md).
    sender_auth: Mapped[str] = mapped_column(String(16), default="enforce")
    # The logging address before the last rotation: it still routes mail until
    # ``previous_token_expires_at``; after that it answers 550 5.1.1 with a hint.
    previous_bcc_token: Mapped[str | None] = mapped_column(String(64), unique=True,
                                                           default=None)
    previous_token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[UserAddress]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class UserAddress(Base):
    """Every address a user sends from: the primary one and the aliases."""

    __tablename__ = "user_addresses"
    __table_args__ = (UniqueConstraint("portal_id", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320))  # lower-case
    # Only a confirmed address is the user's (docs/sender-auth.md): the operator's
    # (`admin add-user`), an admin's new user's, or one whose confirmation link was
    # followed. An unconfirmed one holds the sha256 of its link's token until then.
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True,
                                                           default=None)
    requested_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="addresses")


class ApiToken(Base):
    """A bearer token; only its sha256 is stored. ``user_id`` is None for admin tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # The sha256 of the authorization code an extension bought it with (None for a token
    # made by the CLI or on the tokens page): a replayed code, or a new password, revokes it.
    grant_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
