"""Routing rules: which agent, priority, pipeline, stage and tags a new ticket gets (pure).

Semantics (docs/tickets.md, "Routing rules"): rules are evaluated in ``position`` order
and **every** rule whose conditions all hold applies its actions, as Zammad's triggers
do; a later rule overrides an earlier one's assignee, priority, pipeline and stage, tags
add up; a rule with ``stop`` ends the run (Help Scout's and Front's "stop processing").
A rule without conditions matches every ticket. ``parse_rule`` validates what the API
stores; ``evaluate`` never raises on what ``parse_rule`` accepted.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInput


class Field(enum.StrEnum):
    INBOX_ADDRESS = "inbox_address"
    SUBJECT = "subject"
    BODY = "body"
    SENDER_EMAIL = "sender_email"
    SENDER_DOMAIN = "sender_domain"
    CONTACT_NAME = "contact.name"
    CONTACT_EMAIL = "contact.email"
    COMPANY_NAME = "company.name"
    COMPANY_DOMAIN = "company.domain"
    LANGUAGE = "language"


class Op(enum.StrEnum):
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    ANY_OF = "any_of"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"


class ActionType(enum.StrEnum):
    ASSIGN_USER = "assign_user"
    ASSIGN_TEAM = "assign_team"  # round-robin among the team's available members
    ROUND_ROBIN = "round_robin"  # among the team inbox's members
    SET_PRIORITY = "set_priority"
    SET_PIPELINE = "set_pipeline"
    SET_STAGE = "set_stage"
    ADD_TAG = "add_tag"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


@dataclass(frozen=True)
class Condition:
    field: Field
    op: Op
    value: str | tuple[str, ...]


@dataclass(frozen=True)
class Action:
    type: ActionType
    target: int | None = None  # the user or team of an assignment
    value: str = ""  # priority, pipeline, stage or tag


@dataclass(frozen=True)
class Rule:
    id: int
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    stop: bool = False


@dataclass(frozen=True)
class Facts:
    """What rules read of a new ticket's first message."""

    inbox_address: str = ""
    subject: str = ""
    body: str = ""
    sender_email: str = ""
    contact_name: str = ""
    contact_email: str = ""
    company_name: str = ""
    company_domain: str = ""
    language: str = ""

    def value(self, name: Field) -> str:
        if name is Field.SENDER_DOMAIN:
            return self.sender_email.rpartition("@")[2]
        return str(getattr(self, name.value.replace(".", "_")))


@dataclass(frozen=True)
class Assignment:
    """Who a ticket goes to: a user, or round-robin among a team's members (``team``)
    or the inbox's (``inbox``)."""

    kind: str  # "user" | "team" | "inbox"
    target: int | None = None


@dataclass(frozen=True)
class Outcome:
    assignment: Assignment | None = None
    priority: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    tags: tuple[str, ...] = ()
    matched: tuple[int, ...] = field(default=())  # the rules that applied, in order


MAX_VALUE = 500
MAX_PARTS = 50


def _holds(condition: Condition, facts: Facts) -> bool:
    have = facts.value(condition.field).lower()
    want = condition.value
    if condition.op is Op.ANY_OF:
        options = want if isinstance(want, tuple) else (want,)
        return have in {o.lower() for o in options}
    text = (want if isinstance(want, str) else " ".join(want)).lower()
    match condition.op:
        case Op.CONTAINS:
            return text in have
        case Op.NOT_CONTAINS:
            return text not in have
        case Op.EQUALS:
            return have == text
        case Op.NOT_EQUALS:
            return have != text
        case Op.STARTS_WITH:
            return have.startswith(text)
        case _:
            return have.endswith(text)


def matches(rule: Rule, facts: Facts) -> bool:
    """Whether every condition of ``rule`` holds for ``facts``."""
    return all(_holds(c, facts) for c in rule.conditions)


def evaluate(rules: Iterable[Rule], facts: Facts) -> Outcome:
    """What the rules (in order) decide for a new ticket: see the module docstring."""
    assignment: Assignment | None = None
    priority = pipeline = stage = None
    tags: list[str] = []
    matched: list[int] = []
    for rule in rules:
        if not matches(rule, facts):
            continue
        matched.append(rule.id)
        for action in rule.actions:
            match action.type:
                case ActionType.ASSIGN_USER:
                    assignment = Assignment("user", action.target)
                case ActionType.ASSIGN_TEAM:
                    assignment = Assignment("team", action.target)
                case ActionType.ROUND_ROBIN:
                    assignment = Assignment("inbox")
                case ActionType.SET_PRIORITY:
                    priority = action.value
                case ActionType.SET_PIPELINE:
                    pipeline = action.value
                case ActionType.SET_STAGE:
                    stage = action.value
                case ActionType.ADD_TAG:
                    if action.value not in tags:
                        tags.append(action.value)
        if rule.stop:
            break
    return Outcome(assignment, priority, pipeline, stage, tuple(tags), tuple(matched))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE:
        raise InvalidInput(f"{where}: a non-empty string of at most {MAX_VALUE} characters")
    return value.strip()


def _member(kind: type[enum.StrEnum], value: Any, where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{where} must be one of {', '.join(kind)}") from None


def parse_condition(raw: Any, where: str) -> Condition:
    """A condition from its stored JSON; InvalidInput naming ``where`` otherwise."""
    if not isinstance(raw, dict) or set(raw) - {"field", "op", "value"}:
        raise InvalidInput(f"{where}: an object with field, op and value")
    name = _member(Field, raw.get("field"), f"{where}.field")
    op = _member(Op, raw.get("op"), f"{where}.op")
    value = raw.get("value")
    if op is Op.ANY_OF:
        if (not isinstance(value, list) or not value or len(value) > MAX_PARTS):
            raise InvalidInput(f"{where}.value: a list of 1 to {MAX_PARTS} strings")
        return Condition(name, op, tuple(_text(v, f"{where}.value") for v in value))
    return Condition(name, op, _text(value, f"{where}.value"))


def parse_action(raw: Any, where: str) -> Action:
    """An action from its stored JSON; InvalidInput naming ``where`` otherwise."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: an object with a type")
    kind = _member(ActionType, raw.get("type"), f"{where}.type")
    if kind in (ActionType.ASSIGN_USER, ActionType.ASSIGN_TEAM):
        key = "user_id" if kind is ActionType.ASSIGN_USER else "team_id"
        target = raw.get(key)
        if set(raw) - {"type", key} or not isinstance(target, int) or isinstance(
                target, bool) or not 0 < target < 2**63:
            raise InvalidInput(f"{where}: {{\"type\": \"{kind}\", \"{key}\": <id>}}")
        return Action(kind, target=target)
    if kind is ActionType.ROUND_ROBIN:
        if set(raw) - {"type"}:
            raise InvalidInput(f"{where}: round_robin takes no other field")
        return Action(kind)
    if set(raw) - {"type", "value"}:
        raise InvalidInput(f"{where}: {{\"type\": \"{kind}\", \"value\": ...}}")
    value = _text(raw.get("value"), f"{where}.value")
    if kind is ActionType.SET_PRIORITY:
        value = _member(Priority, value, f"{where}.value").value
    elif len(value) > 50:
        raise InvalidInput(f"{where}.value: at most 50 characters")
    return Action(kind, value=value)


def parse_rule(rule_id: int, conditions: Any, actions: Any, stop: bool = False) -> Rule:
    """A rule from its stored JSON lists; InvalidInput naming the first bad part."""
    if not isinstance(conditions, list) or len(conditions) > MAX_PARTS:
        raise InvalidInput(f"conditions: a list of at most {MAX_PARTS}")
    if not isinstance(actions, list) or not actions or len(actions) > MAX_PARTS:
        raise InvalidInput(f"actions: a list of 1 to {MAX_PARTS}")
    return Rule(rule_id,
                tuple(parse_condition(c, f"conditions[{n}]") for n, c in enumerate(conditions)),
                tuple(parse_action(a, f"actions[{n}]") for n, a in enumerate(actions)), stop)


def condition_json(condition: Condition) -> dict[str, Any]:
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return {"field": condition.field.value, "op": condition.op.value, "value": value}


def action_json(action: Action) -> dict[str, Any]:
    if action.type is ActionType.ASSIGN_USER:
        return {"type": action.type.value, "user_id": action.target}
    if action.type is ActionType.ASSIGN_TEAM:
        return {"type": action.type.value, "team_id": action.target}
    if action.type is ActionType.ROUND_ROBIN:
        return {"type": action.type.value}
    return {"type": action.type.value, "value": action.value}


def pick_round_robin(candidates: Sequence[Agent]) -> int | None:
    """The agent a round-robin assignment goes to (pure): among the available agents
    under their capacity, the one assigned longest ago (never assigned first; ties by
    user id). None when nobody can take it: the ticket waits unassigned."""
    eligible = [a for a in candidates if a.available and (
        a.capacity is None or a.open_tickets < a.capacity)]
    if not eligible:
        return None
    return min(eligible, key=lambda a: (a.last_assigned is not None, a.last_assigned or 0,
                                        a.user_id)).user_id


@dataclass(frozen=True)
class Agent:
    """What round-robin reads of one member: availability, capacity (None: no limit),
    open tickets assigned now, and when they were last assigned one (a timestamp)."""

    user_id: int
    available: bool = True
    capacity: int | None = None
    open_tickets: int = 0
    last_assigned: float | None = None
