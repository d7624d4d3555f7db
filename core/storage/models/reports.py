"""What reports keep between requests: each ticket's SLA figures (``core.reports``), so a
report reads the activity log only of tickets that changed since they were computed, in
any process and on any node."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base


class TicketFigures(Base):
    """One ticket's SLA figures in business seconds (``core.sla.TicketSla``), as of its
    SLA activity ``as_of_activity_id``, its ``updated_at`` then (``ticket_updated_at``:
    every change through ``core.tickets.activity.log`` moves it, also one committed out
    of id order) and its inbox's hours then (``hours_key``, a digest). Stale when any of
    the three no longer matches; recomputed and stored by the next report."""

    __tablename__ = "ticket_figures"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    as_of_activity_id: Mapped[int] = mapped_column(BigInteger)
    ticket_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    hours_key: Mapped[str] = mapped_column(String(64))
    first_response: Mapped[float | None] = mapped_column(Float, default=None)
    first_resolution: Mapped[float | None] = mapped_column(Float, default=None)
    # Seconds as "1800.0,60.5" ("" none): repr() of each float, which float() reads
    # back exactly; a report reads ten thousand of these quicker than JSON lists.
    reopen_first_responses: Mapped[str] = mapped_column(Text, default="")
    next_responses: Mapped[str] = mapped_column(Text, default="")
