"""Shapes of team inboxes, teams, routing rules, agents and tickets (docs/tickets.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from msgspec import UNSET, Meta, UnsetType

from core.control_characters import LABEL_PATTERN
from core.storage.models import AgentCapacity as AgentRow
from core.storage.models import Email as EmailRow
from core.storage.models import Inbox as InboxRow
from core.storage.models import RoutingRule as RuleRow
from core.storage.models import Team as TeamRow
from core.storage.models import TeamInbox as TeamInboxRow
from core.storage.models import Ticket as TicketRow
from core.storage.models import TicketActivity as ActivityRow
from core.tickets import inboxes
from core.tickets.matching import Status
from core.tickets.rules import Priority
from core.tickets.service import Change
from core.types import InboxStatus
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp
from extension_api.schemas.mail import Email, Id, email_of

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=LABEL_PATTERN)]
Label = Annotated[str, Meta(min_length=1, max_length=50, pattern=LABEL_PATTERN)]
LongText = Annotated[str, Meta(max_length=10_000)]
# Per day "mon".."sun" [["09:00", "17:00"], ...]; "holidays": ["2026-12-25", ...] (local
# dates without working hours). One list type holds both, as msgspec unions allow.
BusinessHours = Annotated[dict[str, list[list[str] | str]], Meta(description=(
    '{"mon": [["09:00", "17:00"]], ..., "holidays": ["2026-12-25"]}: working hours per '
    "day in the inbox's time zone; holidays are local dates without working hours"))]


T = TypeVar("T")


def _given(value: T | UnsetType) -> T | None:
    """A field of a partial change: None when the body left it out."""
    return None if isinstance(value, UnsetType) else value


class TeamInboxMember(ResponseShape):
    """A team inbox's member: a user or a whole team (the other is null)."""

    user_id: int | None = None
    team_id: int | None = None


class TeamMailbox(ResponseShape):
    """A team inbox's connected mailbox, as its members see it (the whole record, to the
    admin: GET /api/v1/inboxes/{id})."""

    id: Id
    address: str
    status: InboxStatus
    status_code: str
    status_reason: str
    last_sync_at: Timestamp | None


class TeamInbox(ResponseShape):
    """A shared inbox whose mail becomes tickets."""

    id: Id
    name: str
    address: Annotated[str, Meta(description="the public address customers write to "
                                 "(From of acknowledgements); empty when not set")]
    forwarding_address: Annotated[str, Meta(description=(
        "where its mail goes: forward the public mailbox here (or point its MX)"))]
    alias_address: Annotated[str, Meta(description=(
        "the same inbox at the portal's logging address: <token>+inbox-<id>@..."))]
    members: list[TeamInboxMember]
    auto_acknowledge: bool
    ack_text: str
    signature: str
    time_zone: str
    business_hours: BusinessHours
    sender_hourly_limit: int
    default_pipeline: str
    default_stage: str
    created_at: Timestamp
    mailbox: Annotated[TeamMailbox | None, Meta(description=(
        "its own connected IMAP/SMTP mailbox (POST /api/v1/inboxes with team_inbox_id), "
        "or null"))] = None


def team_inbox_of(row: TeamInboxRow, members: list[inboxes.Member], bcc_token: str,
                  bcc_domain: str, mailbox: InboxRow | None = None) -> TeamInbox:
    return TeamInbox(
        id=row.id, name=row.name, address=row.address,
        forwarding_address=f"{row.token}@{bcc_domain}",
        alias_address=f"{bcc_token}+inbox-{row.id}@{bcc_domain}",
        members=[TeamInboxMember(user_id=m.user_id, team_id=m.team_id) for m in members],
        auto_acknowledge=row.auto_acknowledge, ack_text=row.ack_text, signature=row.signature,
        time_zone=row.time_zone, business_hours=row.business_hours,
        sender_hourly_limit=row.sender_hourly_limit, default_pipeline=row.default_pipeline,
        default_stage=row.default_stage, created_at=row.created_at,
        mailbox=None if mailbox is None else TeamMailbox(
            id=mailbox.id, address=mailbox.address, status=InboxStatus(mailbox.status),
            status_code=mailbox.status_code, status_reason=mailbox.status_reason,
            last_sync_at=mailbox.last_sync_at))


class MemberRequest(RequestShape):
    user_id: Id | None = None
    team_id: Id | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.team_id is None):
            raise ValueError("members: each is {\"user_id\": N} or {\"team_id\": N}")


class TeamInboxRequest(RequestShape):
    """A team inbox to create, or the settings to change (the others stay)."""

    name: Name | UnsetType = UNSET
    address: Annotated[str, Meta(max_length=320)] | UnsetType = UNSET
    members: Annotated[list[MemberRequest], Meta(max_length=inboxes.MAX_MEMBERS)] | UnsetType = (
        UNSET)
    auto_acknowledge: bool | UnsetType = UNSET
    ack_text: LongText | UnsetType = UNSET
    signature: LongText | UnsetType = UNSET
    time_zone: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    business_hours: BusinessHours | UnsetType = UNSET
    sender_hourly_limit: Annotated[int, Meta(ge=1, le=10_000)] | UnsetType = UNSET
    default_pipeline: Label | UnsetType = UNSET
    default_stage: Label | UnsetType = UNSET

    def change(self) -> inboxes.InboxChange:
        members = _given(self.members)
        return inboxes.InboxChange(
            name=_given(self.name), address=_given(self.address),
            members=None if members is None else tuple(
                inboxes.Member(m.user_id, m.team_id) for m in members),
            auto_acknowledge=_given(self.auto_acknowledge), ack_text=_given(self.ack_text),
            signature=_given(self.signature), time_zone=_given(self.time_zone),
            business_hours=_given(self.business_hours),
            sender_hourly_limit=_given(self.sender_hourly_limit),
            default_pipeline=_given(self.default_pipeline),
            default_stage=_given(self.default_stage))


class Team(ResponseShape):
    id: Id
    name: str
    user_ids: list[int]
    created_at: Timestamp


def team_of(row: TeamRow, user_ids: list[int]) -> Team:
    return Team(id=row.id, name=row.name, user_ids=user_ids, created_at=row.created_at)


class TeamRequest(RequestShape):
    name: Name | UnsetType = UNSET
    user_ids: Annotated[list[Id], Meta(max_length=inboxes.MAX_MEMBERS)] | UnsetType = UNSET

    def change_name(self) -> str | None:
        return _given(self.name)

    def change_users(self) -> list[int] | None:
        return _given(self.user_ids)


class RoutingRule(ResponseShape):
    """A routing rule (docs/tickets.md, "Routing rules"): every matching rule applies,
    in position order, until one with stop."""

    id: Id
    name: str
    team_inbox_id: int | None
    position: int
    enabled: bool
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    stop: bool
    created_at: Timestamp


def rule_of(row: RuleRow) -> RoutingRule:
    return RoutingRule(id=row.id, name=row.name, team_inbox_id=row.team_inbox_id,
                       position=row.position, enabled=row.enabled, conditions=row.conditions,
                       actions=row.actions, stop=row.stop, created_at=row.created_at)


class RoutingRuleRequest(RequestShape):
    name: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    team_inbox_id: Id | UnsetType = UNSET
    position: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    conditions: Annotated[list[Any], Meta(max_length=50, description=(
        '[{"field": ..., "op": ..., "value": ...}], all must hold'))] | UnsetType = UNSET
    actions: Annotated[list[Any], Meta(max_length=50, description=(
        '[{"type": "assign_user", "user_id": N}, {"type": "set_priority", "value": '
        '"high"}, ...]'))] | UnsetType = UNSET
    stop: bool | UnsetType = UNSET

    def change(self) -> inboxes.RuleChange:
        return inboxes.RuleChange(
            name=_given(self.name), team_inbox_id=_given(self.team_inbox_id),
            position=_given(self.position), enabled=_given(self.enabled),
            conditions=_given(self.conditions), actions=_given(self.actions),
            stop=_given(self.stop))


class Agent(ResponseShape):
    """An agent's availability and capacity (null: no limit on open tickets)."""

    user_id: Id
    available: bool
    capacity: int | None
    last_assigned_at: Timestamp | None


def agent_of(row: AgentRow) -> Agent:
    return Agent(user_id=row.user_id, available=row.available, capacity=row.capacity,
                 last_assigned_at=row.last_assigned_at)


class AgentRequest(RequestShape):
    available: bool | UnsetType = UNSET
    capacity: Annotated[int, Meta(ge=0, le=10_000, description=(
        "open tickets at once; null for no limit"))] | UnsetType | None = UNSET

    def sets_capacity(self) -> bool:
        return not isinstance(self.capacity, UnsetType)

    def capacity_value(self) -> int | None:
        return None if isinstance(self.capacity, UnsetType) else self.capacity

    def available_value(self) -> bool | None:
        return _given(self.available)


class Ticket(ResponseShape):
    """A team inbox's ticket."""

    id: Id
    team_inbox_id: Id
    subject: str
    status: Status
    priority: Priority
    pipeline: str
    stage: str
    assignee_user_id: int | None
    assignee_team_id: int | None
    contact_id: int | None
    company_id: int | None
    contact_ids: list[int]
    thread_id: int | None
    tags: list[str]
    language: str | None
    merged_into_id: int | None
    created_at: Timestamp
    updated_at: Timestamp | None
    closed_at: Timestamp | None
    reopened_at: Timestamp | None


def _ticket_fields(row: TicketRow, contact_ids: list[int]) -> dict[str, Any]:
    assert row.team_inbox_id is not None
    return {
        "id": row.id, "team_inbox_id": row.team_inbox_id, "subject": row.subject,
        "status": Status(row.status), "priority": Priority(row.priority),
        "pipeline": row.pipeline, "stage": row.stage,
        "assignee_user_id": row.assignee_user_id, "assignee_team_id": row.assignee_team_id,
        "contact_id": row.contact_id, "company_id": row.company_id,
        "contact_ids": contact_ids, "thread_id": row.thread_id, "tags": list(row.tags),
        "language": row.language, "merged_into_id": row.merged_into_id,
        "created_at": row.created_at, "updated_at": row.updated_at,
        "closed_at": row.closed_at, "reopened_at": row.reopened_at,
    }


def ticket_of(row: TicketRow, contact_ids: list[int]) -> Ticket:
    return Ticket(**_ticket_fields(row, contact_ids))


class TicketActivity(ResponseShape):
    """An entry of a ticket's log (kinds in docs/tickets.md)."""

    id: Id
    kind: str
    at: Timestamp
    actor_user_id: int | None
    email_id: int | None
    from_value: str | None
    to_value: str | None
    detail: dict[str, Any]


def activity_of(row: ActivityRow) -> TicketActivity:
    return TicketActivity(id=row.id, kind=row.kind, at=row.at, actor_user_id=row.actor_user_id,
                    email_id=row.email_id, from_value=row.from_value, to_value=row.to_value,
                    detail=row.detail)


class TicketDetail(Ticket):
    """A ticket with its emails (oldest first) and its activity log."""

    emails: list[Email]
    activity: list[TicketActivity]


def ticket_detail_of(row: TicketRow, contact_ids: list[int], emails: list[EmailRow],
                     log: list[ActivityRow]) -> TicketDetail:
    return TicketDetail(**_ticket_fields(row, contact_ids),
                        emails=[email_of(e) for e in emails],
                        activity=[activity_of(a) for a in log])


class TicketPatch(RequestShape):
    status: Status | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    pipeline: Label | UnsetType = UNSET
    stage: Label | UnsetType = UNSET
    subject: Annotated[str, Meta(min_length=1, max_length=500)] | UnsetType = UNSET
    tags: Annotated[list[Label], Meta(max_length=50)] | UnsetType = UNSET

    def change(self) -> Change:
        tags = _given(self.tags)
        return Change(status=_given(self.status), priority=_given(self.priority),
                      pipeline=_given(self.pipeline), stage=_given(self.stage),
                      subject=_given(self.subject),
                      tags=None if tags is None else tuple(tags))


class AssignRequest(RequestShape):
    """Assign to a member of the ticket's inbox, to a team (round-robin among its
    members, or user_id of one of them), or to nobody (both null)."""

    user_id: Id | None = None
    team_id: Id | None = None


class MergeRequest(RequestShape):
    into: Annotated[Id, Meta(description="the ticket that lives on")]


TicketStatusFilter = Literal["open", "pending", "closed"]
