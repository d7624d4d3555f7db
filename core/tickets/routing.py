"""Routing a new ticket: the portal's rules (``core.tickets.rules``, pure) over what the
ticket's first message says, then round-robin among available agents under capacity.
Adds to the caller's session; never commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.mail.parsing import ParsedMessage
from core.storage.models import (
    AgentCapacity,
    Company,
    Contact,
    Email,
    RoutingRule,
    TeamInbox,
    TeamMember,
    Ticket,
    User,
    utcnow,
)
from core.tickets import activity
from core.tickets.access import inbox_members
from core.tickets.activity import Kind
from core.tickets.matching import Status
from core.tickets.rules import Agent, Facts, Outcome, Rule, evaluate, parse_rule, pick_round_robin

BODY_CHARS = 20_000  # rules read the start of the body: what a person would


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    user_id: int | None
    team_id: int | None
    how: str  # "rule" | "round_robin" | "nobody"
    # Why a rule's assignment was not followed (its user, or everyone in its team, is
    # not a member of the inbox): the ticket stays unassigned and its log says so.
    not_followed: dict[str, int | str] | None = None


def facts_of(inbox: TeamInbox, parsed: ParsedMessage, email: Email, contact: Contact | None,
             company: Company | None, language: str | None) -> Facts:
    return Facts(
        inbox_address=inbox.address, subject=parsed.subject,
        body=(email.reply_text or parsed.text)[:BODY_CHARS],
        sender_email=parsed.from_.key if parsed.from_ is not None else "",
        contact_name=contact.name if contact else "",
        contact_email=contact.email if contact else "",
        company_name=company.name if company else "",
        company_domain=(company.domain or "") if company else "",
        language=language or "",
    )


async def rules_for(session: AsyncSession, inbox: TeamInbox) -> list[Rule]:
    """The enabled rules that apply to ``inbox``, in order; one stored before a change
    of the shapes that no longer parses is skipped rather than stopping all routing."""
    rows = await session.scalars(select(RoutingRule).where(
        RoutingRule.portal_id == inbox.portal_id, RoutingRule.enabled.is_(True),
        or_(RoutingRule.team_inbox_id.is_(None), RoutingRule.team_inbox_id == inbox.id),
    ).order_by(RoutingRule.position, RoutingRule.id))
    rules = []
    for row in rows:
        try:
            rules.append(parse_rule(row.id, row.conditions, row.actions, row.stop))
        except InvalidInput:
            continue
    return rules


async def agents(session: AsyncSession, portal_id: int, user_ids: list[int]) -> list[Agent]:
    """What round-robin reads of these users: capacity, availability, open load."""
    if not user_ids:
        return []
    capacity = {c.user_id: c for c in await session.scalars(select(AgentCapacity).where(
        AgentCapacity.portal_id == portal_id, AgentCapacity.user_id.in_(user_ids)))}
    load: dict[int | None, int] = {user: count for user, count in await session.execute(
        select(Ticket.assignee_user_id, func.count()).where(
            Ticket.portal_id == portal_id, Ticket.assignee_user_id.in_(user_ids),
            Ticket.status.in_([Status.OPEN.value, Status.PENDING.value]),
            Ticket.team_inbox_id.is_not(None))
        .group_by(Ticket.assignee_user_id))}
    found = []
    for user_id in user_ids:
        row = capacity.get(user_id)
        found.append(Agent(
            user_id, available=row.available if row else True,
            capacity=row.capacity if row else None, open_tickets=load.get(user_id, 0),
            last_assigned=row.last_assigned_at.timestamp()
            if row and row.last_assigned_at else None))
    return found


async def round_robin(session: AsyncSession, portal_id: int, user_ids: list[int]) -> int | None:
    """The next agent among ``user_ids`` (``rules.pick_round_robin``), marked as just
    assigned; None when none is available under capacity."""
    chosen = pick_round_robin(await agents(session, portal_id, user_ids))
    if chosen is None:
        return None
    row = await session.get(AgentCapacity, chosen)
    if row is None:
        session.add(AgentCapacity(user_id=chosen, portal_id=portal_id,
                                  last_assigned_at=utcnow()))
    else:
        row.last_assigned_at = utcnow()
    await session.flush()
    return chosen


async def _portal_user(session: AsyncSession, portal_id: int, user_id: int | None) -> bool:
    user = await session.get(User, user_id) if user_id and 0 < user_id < 2**63 else None
    return user is not None and user.portal_id == portal_id


async def team_users(session: AsyncSession, portal_id: int, team_id: int) -> list[int]:
    rows = await session.scalars(
        select(TeamMember.user_id).join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team_id, User.portal_id == portal_id))
    return sorted(rows)


async def route(session: AsyncSession, inbox: TeamInbox, ticket: Ticket,
                facts: Facts) -> Decision:
    """What the rules decide for a new ticket, and who gets it: the rule's user, else
    round-robin among the rule's team or (no rule assigned) the inbox's members. Only
    a member of the inbox ever gets it (docs/tickets.md, "Who sees what"): a rule whose
    user is not one (a portal-wide rule, a user who has left the inbox), or whose team
    has no one in the inbox, leaves the ticket unassigned, and ``apply`` logs why."""
    # One new ticket of an inbox at a time picks its agent (PostgreSQL; SQLite has one
    # writer anyway): two at once would both see the same agent as the next.
    await session.execute(select(TeamInbox.id).where(TeamInbox.id == inbox.id)
                          .with_for_update())
    outcome = evaluate(await rules_for(session, inbox), facts)
    wanted = outcome.assignment
    members = await inbox_members(session, inbox.id)
    if wanted is not None and wanted.kind == "user":
        if wanted.target in members and await _portal_user(
                session, inbox.portal_id, wanted.target):
            return Decision(outcome, wanted.target, None, "rule")
        return Decision(outcome, None, None, "nobody", not_followed={
            "reason": "user_not_member", "user_id": wanted.target or 0})
    if wanted is not None and wanted.kind == "team" and wanted.target is not None:
        both = [u for u in await team_users(session, inbox.portal_id, wanted.target)
                if u in members]
        if not both:
            return Decision(outcome, None, None, "nobody", not_followed={
                "reason": "team_not_member", "team_id": wanted.target})
        chosen = await round_robin(session, inbox.portal_id, both)
        return Decision(outcome, chosen, wanted.target, "round_robin")
    chosen = await round_robin(session, inbox.portal_id, members)
    return Decision(outcome, chosen, None, "round_robin" if chosen else "nobody")


async def apply(session: AsyncSession, ticket: Ticket, decision: Decision) -> None:
    """Give the ticket what routing decided, each change in its log."""
    outcome = decision.outcome
    for kind, name, value in ((Kind.PRIORITY, "priority", outcome.priority),
                              (Kind.PIPELINE, "pipeline", outcome.pipeline),
                              (Kind.STAGE, "stage", outcome.stage)):
        before = getattr(ticket, name)
        if value is not None and value != before:
            setattr(ticket, name, value)
            activity.log(session, ticket, kind, from_value=before, to_value=value,
                         detail={"how": "rule"})
    if outcome.tags:
        ticket.tags = list(dict.fromkeys([*ticket.tags, *outcome.tags]))
    if decision.not_followed is not None:  # said in the log; no event: nobody to tell
        activity.log(session, ticket, Kind.ASSIGNED, detail={
            "how": "rule_not_followed", **decision.not_followed})
    if decision.user_id is not None or decision.team_id is not None:
        activity.assign(session, ticket, decision.user_id, decision.team_id, how=decision.how)
