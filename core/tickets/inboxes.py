"""Team inboxes, teams, routing rules and agents' capacity: what an admin sets up.
Each function takes the caller's session and never commits; another portal's ids are
NotFound, bad values InvalidInput naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import queries
from core.accounts import new_bcc_token, normalize_address
from core.errors import InvalidInput, NotFound
from core.sla import DAYS, BusinessHours
from core.storage.models import (
    AgentCapacity,
    RoutingRule,
    Team,
    TeamInbox,
    TeamInboxMember,
    TeamMember,
    User,
)
from core.tickets.access import inbox_members, member_inboxes
from core.tickets.routing import team_users
from core.tickets.rules import action_json, condition_json, parse_rule

MAX_MEMBERS = 500
MAX_RULES = 200


@dataclass(frozen=True)
class Member:
    """A team inbox's member: a user or a team (exactly one is set)."""

    user_id: int | None = None
    team_id: int | None = None


@dataclass(frozen=True)
class InboxChange:
    """A team inbox's settings; None leaves one as it is (on create: its default)."""

    name: str | None = None
    address: str | None = None
    members: tuple[Member, ...] | None = None
    auto_acknowledge: bool | None = None
    ack_text: str | None = None
    signature: str | None = None
    time_zone: str | None = None
    business_hours: dict[str, Any] | None = None
    sender_hourly_limit: int | None = None
    default_pipeline: str | None = None
    default_stage: str | None = None


async def _named(session: AsyncSession, model: type[User] | type[Team], portal_id: int,
                 object_id: int, where: str) -> None:
    """InvalidInput naming ``where`` unless ``object_id`` is one of the portal's."""
    try:
        await queries.owned(session, model, portal_id, object_id)
    except NotFound:
        raise InvalidInput(f"{where}: no {model.__tablename__[:-1]} {object_id} in this "
                           "portal") from None


async def _user_of_portal(session: AsyncSession, portal_id: int, user_id: int,
                          where: str) -> None:
    await _named(session, User, portal_id, user_id, where)


async def _team_of_portal(session: AsyncSession, portal_id: int, team_id: int,
                          where: str) -> None:
    await _named(session, Team, portal_id, team_id, where)


MAX_HOLIDAYS = 500
MAX_SPANS = 10  # working spans a day


def business_hours(value: dict[str, Any]) -> dict[str, list[Any]]:
    """Working hours per day, ``{"mon": [["09:00", "17:00"]], ...}``, and ``holidays``
    (local ``YYYY-MM-DD`` dates without working hours), validated by what reads them,
    ``core.sla.BusinessHours.parse`` (one definition), and returned as it read them:
    each day's spans in order, ``HH:MM``, holidays sorted once each. Refused here too:
    more than MAX_SPANS a day or MAX_HOLIDAYS dates (a stored setting every SLA reads),
    spans that overlap (their hours would count twice) and a week without any hours
    (leave every day out for around the clock)."""
    for day, spans in value.items():
        if day == "holidays":
            if (not isinstance(spans, list) or len(spans) > MAX_HOLIDAYS
                    or not all(isinstance(d, str) and len(d) == 10 for d in spans)):
                raise InvalidInput(f"business_hours.holidays: at most {MAX_HOLIDAYS} dates, "
                                   "YYYY-MM-DD")
        elif (not isinstance(spans, list) or len(spans) > MAX_SPANS
              or not all(isinstance(span, list) and len(span) == 2
                         and all(isinstance(t, str) and len(t) <= 5 for t in span)
                         for span in spans)):
            raise InvalidInput(f"business_hours.{day}: a list of at most {MAX_SPANS} "
                               '["HH:MM", "HH:MM"] pairs, start before end')
    try:
        hours = BusinessHours.parse("UTC", value)
    except ValueError as error:
        message = str(error)
        raise InvalidInput(message if message.startswith("business_hours")
                           else f"business_hours: {message}") from None
    result: dict[str, list[Any]] = {}
    for number, day in enumerate(DAYS):
        if day not in value:
            continue
        spans = hours.week.get(number, ())
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                raise InvalidInput(f"business_hours.{day}: spans overlap")
        result[day] = [[_clock_text(start), _clock_text(end)] for start, end in spans]
    if result and not any(result.values()):
        raise InvalidInput("business_hours: no working hours in the week (leave every day "
                           "out for around the clock)")
    if "holidays" in value:
        result["holidays"] = sorted(day.isoformat() for day in hours.holidays)
    return result


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters")
    return value.strip()


async def _apply(session: AsyncSession, inbox: TeamInbox, change: InboxChange) -> None:
    if change.name is not None:
        if not change.name.strip():
            raise InvalidInput("name must not be empty")
        inbox.name = _text(change.name, "name", 200)
    if change.address is not None:
        inbox.address = normalize_address(change.address) if change.address.strip() else ""
    if change.time_zone is not None:
        try:
            BusinessHours.parse(change.time_zone, None)
        except ValueError:
            raise InvalidInput(f"time_zone: not an IANA time zone: {change.time_zone!r}"
                               ) from None
        inbox.time_zone = change.time_zone
    if change.business_hours is not None:
        inbox.business_hours = business_hours(change.business_hours)
    if change.sender_hourly_limit is not None:
        if not 1 <= change.sender_hourly_limit <= 10_000:
            raise InvalidInput("sender_hourly_limit: 1 to 10000")
        inbox.sender_hourly_limit = change.sender_hourly_limit
    for field, limit in (("ack_text", 10_000), ("signature", 10_000),
                         ("default_pipeline", 50), ("default_stage", 50)):
        value = getattr(change, field)
        if value is not None:
            setattr(inbox, field, _text(value, field, limit))
    if change.auto_acknowledge is not None:
        inbox.auto_acknowledge = change.auto_acknowledge
    if change.members is not None:
        await _set_members(session, inbox, change.members)


async def _set_members(session: AsyncSession, inbox: TeamInbox,
                       members: tuple[Member, ...]) -> None:
    if len(members) > MAX_MEMBERS:
        raise InvalidInput(f"members: at most {MAX_MEMBERS}")
    rows: dict[tuple[int | None, int | None], TeamInboxMember] = {}
    for n, member in enumerate(members):
        if (member.user_id is None) == (member.team_id is None):
            raise InvalidInput(f"members[{n}]: a user_id or a team_id")
        if member.user_id is not None:
            await _user_of_portal(session, inbox.portal_id, member.user_id, f"members[{n}]")
        if member.team_id is not None:
            await _team_of_portal(session, inbox.portal_id, member.team_id, f"members[{n}]")
        rows.setdefault((member.user_id, member.team_id), TeamInboxMember(
            team_inbox_id=inbox.id, user_id=member.user_id, team_id=member.team_id))
    await session.execute(delete(TeamInboxMember).where(
        TeamInboxMember.team_inbox_id == inbox.id))
    session.add_all(rows.values())
    await session.flush()


async def create_inbox(session: AsyncSession, portal_id: int, change: InboxChange) -> TeamInbox:
    if not (change.name or "").strip():
        raise InvalidInput("name is required")
    inbox = TeamInbox(portal_id=portal_id, name="", token=new_bcc_token(), business_hours={})
    session.add(inbox)
    await session.flush()
    await _apply(session, inbox, change)
    await session.flush()
    return inbox


async def update_inbox(session: AsyncSession, portal_id: int, inbox_id: int,
                       change: InboxChange) -> TeamInbox:
    inbox = await queries.owned(session, TeamInbox, portal_id, inbox_id)
    await _apply(session, inbox, change)
    await session.flush()
    return inbox


async def visible_inbox(session: AsyncSession, portal_id: int, user_id: int | None,
                        inbox_id: int) -> TeamInbox:
    """The team inbox if the caller is its member or the admin; NotFound otherwise."""
    inbox = await queries.owned(session, TeamInbox, portal_id, inbox_id)
    allowed = await member_inboxes(session, portal_id, user_id)
    if allowed is not None and inbox.id not in allowed:
        raise NotFound(f"no team inbox {inbox_id}")
    return inbox


async def list_inboxes(session: AsyncSession, portal_id: int,
                       user_id: int | None) -> Sequence[TeamInbox]:
    query = select(TeamInbox).where(TeamInbox.portal_id == portal_id)
    allowed = await member_inboxes(session, portal_id, user_id)
    if allowed is not None:
        query = query.where(TeamInbox.id.in_(allowed))
    return (await session.scalars(query.order_by(TeamInbox.id))).all()


async def members_of(session: AsyncSession, inbox_id: int) -> list[Member]:
    rows = await session.scalars(select(TeamInboxMember).where(
        TeamInboxMember.team_inbox_id == inbox_id).order_by(TeamInboxMember.id))
    return [Member(r.user_id, r.team_id) for r in rows]


# Teams


async def save_team(session: AsyncSession, portal_id: int, team_id: int | None, *,
                    name: str | None, user_ids: Sequence[int] | None) -> Team:
    """Create (``team_id`` None) or change a team: its name, its users (replaced)."""
    if team_id is None:
        if not (name or "").strip():
            raise InvalidInput("name is required")
        team = Team(portal_id=portal_id, name="")
        session.add(team)
    else:
        team = await queries.owned(session, Team, portal_id, team_id)
    if name is not None:
        name = _text(name, "name", 200)
        if not name:
            raise InvalidInput("name must not be empty")
        clash = await session.scalar(select(Team.id).where(
            Team.portal_id == portal_id, Team.name == name, Team.id != (team.id or 0)))
        if clash is not None:
            raise InvalidInput(f"name: a team {name!r} exists already")
        team.name = name
    await session.flush()
    if user_ids is not None:
        if len(user_ids) > MAX_MEMBERS:
            raise InvalidInput(f"user_ids: at most {MAX_MEMBERS}")
        for n, user_id in enumerate(user_ids):
            await _user_of_portal(session, portal_id, user_id, f"user_ids[{n}]")
        await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        session.add_all(TeamMember(team_id=team.id, user_id=u) for u in dict.fromkeys(user_ids))
        await session.flush()
    return team


async def team_user_ids(session: AsyncSession, team_id: int) -> list[int]:
    return sorted(await session.scalars(select(TeamMember.user_id).where(
        TeamMember.team_id == team_id)))


async def list_teams(session: AsyncSession, portal_id: int) -> Sequence[Team]:
    return (await session.scalars(select(Team).where(Team.portal_id == portal_id)
                                  .order_by(Team.id))).all()


# Routing rules


@dataclass(frozen=True)
class RuleChange:
    name: str | None = None
    team_inbox_id: int | None = None
    position: int | None = None
    enabled: bool | None = None
    conditions: list[Any] | None = None
    actions: list[Any] | None = None
    stop: bool | None = None


async def save_rule(session: AsyncSession, portal_id: int, rule_id: int | None,
                    change: RuleChange) -> RoutingRule:
    """Create (``rule_id`` None) or change a routing rule, validated (the shapes of
    ``core.tickets.rules``; a user or team it assigns to must be the portal's)."""
    if rule_id is None:
        count = await session.scalar(select(func.count()).select_from(RoutingRule).where(
            RoutingRule.portal_id == portal_id)) or 0
        if count >= MAX_RULES:
            raise InvalidInput(f"a portal has at most {MAX_RULES} routing rules")
        if change.actions is None:
            raise InvalidInput("actions is required")
        top = await session.scalar(select(func.max(RoutingRule.position)).where(
            RoutingRule.portal_id == portal_id))
        rule = RoutingRule(portal_id=portal_id, position=(top or 0) + 1, conditions=[],
                           actions=[])
    else:
        rule = await queries.owned(session, RoutingRule, portal_id, rule_id)
    parsed = parse_rule(rule.id or 0, change.conditions if change.conditions is not None
                        else rule.conditions,
                        change.actions if change.actions is not None else rule.actions)
    if change.team_inbox_id is not None:
        await queries.owned(session, TeamInbox, portal_id, change.team_inbox_id)
        rule.team_inbox_id = change.team_inbox_id
    # A rule of one inbox assigns only to its members: anyone else would get the
    # ticket's events (its subject, its sender) and could not open it.
    members = (set(await inbox_members(session, rule.team_inbox_id))
               if rule.team_inbox_id is not None else None)
    for n, action in enumerate(parsed.actions):
        if action.target is None:
            continue
        if action.type == "assign_user":
            await _user_of_portal(session, portal_id, action.target, f"actions[{n}]")
            if members is not None and action.target not in members:
                raise InvalidInput(f"actions[{n}]: user {action.target} is not a member of "
                                   f"team inbox {rule.team_inbox_id}")
        else:
            await _team_of_portal(session, portal_id, action.target, f"actions[{n}]")
            if members is not None and not members & set(
                    await team_users(session, portal_id, action.target)):
                raise InvalidInput(f"actions[{n}]: no one in team {action.target} is a "
                                   f"member of team inbox {rule.team_inbox_id}")
    rule.conditions = [condition_json(c) for c in parsed.conditions]
    rule.actions = [action_json(a) for a in parsed.actions]
    if change.name is not None:
        rule.name = _text(change.name, "name", 200)
    if change.position is not None:
        rule.position = change.position
    if change.enabled is not None:
        rule.enabled = change.enabled
    if change.stop is not None:
        rule.stop = change.stop
    session.add(rule)
    await session.flush()
    return rule


async def list_rules(session: AsyncSession, portal_id: int) -> Sequence[RoutingRule]:
    return (await session.scalars(select(RoutingRule).where(
        RoutingRule.portal_id == portal_id).order_by(RoutingRule.position,
                                                      RoutingRule.id))).all()


async def delete_rule(session: AsyncSession, portal_id: int, rule_id: int) -> RoutingRule:
    """Delete a rule; returns it as it was."""
    rule = await queries.owned(session, RoutingRule, portal_id, rule_id)
    await session.delete(rule)
    await session.flush()
    return rule


# Agents' capacity


async def set_capacity(session: AsyncSession, portal_id: int, user_id: int, *,
                       capacity: int | None, set_capacity: bool,
                       available: bool | None) -> AgentCapacity:
    """An agent's availability and capacity (``set_capacity``: change it, None = no
    limit). Another portal's user is NotFound."""
    try:
        await _user_of_portal(session, portal_id, user_id, "user")
    except InvalidInput:
        raise NotFound(f"no user {user_id}") from None
    row = await session.get(AgentCapacity, user_id)
    if row is None:
        row = AgentCapacity(user_id=user_id, portal_id=portal_id, capacity=None,
                            available=True)
        session.add(row)
    if set_capacity:
        if capacity is not None and not 0 <= capacity <= 10_000:
            raise InvalidInput("capacity: 0 to 10000, or null for no limit")
        row.capacity = capacity
    if available is not None:
        row.available = available
    await session.flush()
    return row
