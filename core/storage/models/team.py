"""Team inboxes and the tickets worked in them (docs/tickets.md): teams and their members,
shared inboxes with their own address, routing rules, agents' capacity, each ticket's
contacts and its activity log (what SLAs are computed from)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models.base import Base, BigId, utcnow


class Team(Base):
    """A group of users (a support team); a team inbox's member may be a whole team."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("portal_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class TeamInbox(Base):
    """A shared address (support@, billing@) whose mail becomes tickets.

    Mail reaches it at ``<token>@<bcc domain>`` or ``<portal bcc token>+inbox-<id>@<bcc
    domain>`` (the operator's MX, or the public mailbox forwarding there). ``address`` is
    the public address customers write to (``support@acme.com``): the From of its
    acknowledgements and of agents' replies. ``business_hours`` maps ``mon`` .. ``sun``
    to ``[["09:00", "17:00"], ...]`` in ``time_zone`` (an IANA name), for SLAs.
    """

    __tablename__ = "team_inboxes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(320), default="")  # lower-case; "" unset
    token: Mapped[str] = mapped_column(String(64), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    business_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Acknowledge a new ticket to its customer (``Auto-Submitted: auto-replied``), at
    # most once per sender per ``ACK_INTERVAL``; never to automatic mail.
    auto_acknowledge: Mapped[bool] = mapped_column(default=False)
    ack_text: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text, default="")  # agents' replies (item 4)
    # Messages one sender may bring in an hour; past it they are not logged.
    sender_hourly_limit: Mapped[int] = mapped_column(default=30)
    default_pipeline: Mapped[str] = mapped_column(String(50), default="support")
    default_stage: Mapped[str] = mapped_column(String(50), default="new")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamInboxMember(Base):
    """One member of a team inbox: a user, or every user of a team."""

    __tablename__ = "team_inbox_members"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="one_member"),
        UniqueConstraint("team_inbox_id", "user_id", "team_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_inbox_id: Mapped[int] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True, default=None)


class AgentCapacity(Base):
    """An agent's availability and how many open tickets they take at once (None: no
    limit); ``last_assigned_at`` orders round-robin. A user without a row is available
    with no limit."""

    __tablename__ = "agent_capacity"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    capacity: Mapped[int | None] = mapped_column(default=None)
    available: Mapped[bool] = mapped_column(default=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(default=None)


class RoutingRule(Base):
    """A rule applied to each new ticket, in ``position`` order: every rule whose
    ``conditions`` all hold applies its ``actions`` (a later one overrides an earlier
    one's assignee, priority, pipeline and stage; tags add up); ``stop`` ends the run
    after this rule. Shapes in ``core.tickets.rules``. ``team_inbox_id`` None: every
    team inbox of the portal."""

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_portal_position", "portal_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    team_inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), index=True, default=None)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    stop: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketContact(Base):
    """The customers of a ticket: whose mail on its thread continues it."""

    __tablename__ = "ticket_contacts"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True)


class TicketActivity(Base):
    """What happened to a ticket, in order (``core.tickets.activity.Kind``): created,
    customer_message, agent_reply, note, status (from_value -> to_value), assigned,
    priority, stage, merged, automatic. A ``status`` change to ``open`` from ``closed``
    starts a new response cycle (``detail.cycle``)."""

    __tablename__ = "ticket_activities"
    __table_args__ = (Index("ix_ticket_activities_ticket_id_id", "ticket_id", "id"),
                      # Reports: a kind of activity in a range (assignments).
                      Index("ix_ticket_activities_portal_id_kind_at", "portal_id", "kind",
                            "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"),
                                           index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("emails.id", ondelete="SET NULL"), default=None)
    from_value: Mapped[str | None] = mapped_column(String(100), default=None)
    to_value: Mapped[str | None] = mapped_column(String(100), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TeamInboxSender(Base):
    """Per sender of a team inbox: this hour's message count (the last guard against
    loops and floods) and when it was last acknowledged."""

    __tablename__ = "team_inbox_senders"

    team_inbox_id: Mapped[int] = mapped_column(
        ForeignKey("team_inboxes.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower-case
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(default=0)
    last_ack_at: Mapped[datetime | None] = mapped_column(default=None)
