"""Node leases: which inboxlog process (node) does a piece of work that only one may do at
a time, such as holding a connected inbox's IMAP connection (``core.leases``)."""

from __future__ import annotations

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base


class NodeLease(Base):
    """One lease: ``name`` (``inbox:<id>``, ``purge``, ``node:<holder>``) is held by the
    node ``holder`` until ``expires_at``, in seconds since the epoch by the database's
    clock (one clock for every node: theirs may differ)."""

    __tablename__ = "node_leases"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), index=True)
    expires_at: Mapped[float] = mapped_column(Double)
    acquired_at: Mapped[float] = mapped_column(Double)
