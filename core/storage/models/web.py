"""Signing in to the pages: a user's login (password, role), one-time links, sessions.

Secrets are never stored: a password as its argon2 hash, a link's or a session's token
as its sha256 (``core.accounts.hash_token``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class WebLogin(Base):
    """How a user signs in to the pages, and their role there (``admin`` or ``user``)."""

    __tablename__ = "web_logins"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    role: Mapped[str] = mapped_column(String(10), default="user")
    # None until the user sets one: they sign in with a link mailed to them meanwhile.
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebLink(Base):
    """A one-time link: sign in (``signin``), reset a password (``reset``), join a
    portal (``invite``, by an admin), or set up a new portal's first admin (``setup``,
    printed by ``admin create-portal``). Spent once followed (``used_at``)."""

    __tablename__ = "web_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    # The user it signs in or resets; None for an invitation or a set-up link.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True, default=None)
    email: Mapped[str] = mapped_column(String(320), default="")  # an invitation's address
    role: Mapped[str] = mapped_column(String(10), default="user")  # an invitation's role
    invited_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A signed-in browser. Ends at sign-out, after ``IDLE`` without a request, at
    ``expires_at`` (absolute), or when the user's password changes."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(300), default="")
