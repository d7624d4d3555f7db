"""What reports read instead of every ticket's log: each ticket's SLA figures and the
channel of its first message, kept on write (``core.tickets.figures``), and every
figure as a row of its own (``TicketFigureValue``) so percentiles are computed in the
database (``core.reports``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base


class TicketFigures(Base):
    """One ticket's SLA figures in business seconds (``core.sla.TicketSla``), as of its
    SLA activity ``as_of_activity_id``, its ``updated_at`` then (``ticket_updated_at``:
    every change through ``core.tickets.activity.log`` moves it, also one committed out
    of id order) and its inbox's hours then (``hours_key``, a digest). Written in the
    transaction that changes any of them (``core.tickets.figures``), only for tickets
    reports count (a team inbox's, not merged), with a copy of the ticket's columns the
    reports read (``created_at`` ... ``closed_at``: its indexes cover them, and reports
    never read ``tickets``); ``channel`` is the source of its first message
    (``team_inbox``, ``sync``, ...)."""

    __tablename__ = "ticket_figures"
    __table_args__ = (
        # volume and status: the tickets created in a range, and all they count.
        Index("ix_ticket_figures_created", "portal_id", "created_at", "team_inbox_id",
              "channel", "status", "assignee_user_id", "assignee_team_id",
              "ticket_updated_at"),
        # workload: open and pending now, by agent; closed in a range, by agent.
        Index("ix_ticket_figures_status", "portal_id", "status", "team_inbox_id",
              "assignee_user_id", "assignee_team_id"),
        Index("ix_ticket_figures_closed", "portal_id", "closed_at", "team_inbox_id",
              "status", "assignee_user_id"),
    )

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
    portal_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    team_inbox_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    channel: Mapped[str | None] = mapped_column(String(30), default=None)
    status: Mapped[str | None] = mapped_column(String(10), default=None)
    assignee_user_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    assignee_team_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class TicketFigureValue(Base):
    """One of a ticket's figures: ``metric`` (``core.tickets.figures.Metric``: first
    response, a reopened cycle's first response, a next response, first resolution),
    its ``position`` among the ticket's figures of that metric, and the value in
    business microseconds (integers: sums are exact, the same on every backend); with
    the ticket's portal, inbox and creation, so a report reads these rows alone."""

    __tablename__ = "ticket_figure_values"
    __table_args__ = (
        # How many and their sum, of the tickets created in a range ...
        Index("ix_ticket_figure_values_created", "portal_id", "metric", "created_at",
              "team_inbox_id", "micros"),
        # ... and the value at a rank: read in order, no sort.
        Index("ix_ticket_figure_values_ranked", "portal_id", "metric", "micros",
              "created_at", "team_inbox_id"),
    )

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    micros: Mapped[int] = mapped_column(BigInteger)
    portal_id: Mapped[int] = mapped_column(BigInteger)
    team_inbox_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column()


class TicketAssignment(Base):
    """A ticket's assignment to a user (its ``assigned`` activity ``position`` in order,
    at ``at``), with the ticket's portal and inbox: what workload counts in a range,
    read from an index alone. Kept with the figures (``core.tickets.figures``)."""

    __tablename__ = "ticket_assignments"
    __table_args__ = (
        Index("ix_ticket_assignments_at", "portal_id", "at", "team_inbox_id", "user_id"),
    )

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    portal_id: Mapped[int] = mapped_column(BigInteger)
    team_inbox_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column()
    user_id: Mapped[int] = mapped_column(BigInteger)


class FigureWalk(Base):
    """A team inbox whose tickets' figures are stale: its hours changed and
    ``core.tickets.refigure`` has not yet recomputed every ticket under them. The walk
    goes in ticket id order; ``after_ticket_id`` is the last one it redid (0: from the
    start, as a new change of the hours sets it). Deleted when the walk is done; a
    report on the inbox says ``recomputing`` while it exists."""

    __tablename__ = "ticket_figure_walks"

    team_inbox_id: Mapped[int] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    after_ticket_id: Mapped[int] = mapped_column(BigInteger, default=0)
    marked_at: Mapped[datetime] = mapped_column()
