"""Routing rules, round-robin and ticket matching, rule by rule (pure: core.tickets.rules,
core.tickets.matching)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidInput
from core.tickets.matching import Known, Via, continued, subject_token, with_token
from core.tickets.rules import (
    Agent,
    Assignment,
    Facts,
    evaluate,
    parse_rule,
    pick_round_robin,
)

FACTS = Facts(inbox_address="support@acme.example", subject="Invoice 42 is wrong",
              body="Hallo, die Rechnung stimmt nicht.", sender_email="eva@bigco.de",
              contact_name="Eva Klein", contact_email="eva@bigco.de", company_name="BigCo",
              company_domain="bigco.de", language="de")


def rule(n: int, conditions: list[Any], actions: list[Any], stop: bool = False) -> Any:
    return parse_rule(n, conditions, actions, stop)


def when(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


TAG = [{"type": "add_tag", "value": "hit"}]


@pytest.mark.parametrize("condition,hits", [
    (when("inbox_address", "equals", "SUPPORT@acme.example"), True),
    (when("inbox_address", "equals", "billing@acme.example"), False),
    (when("subject", "contains", "invoice"), True),
    (when("subject", "not_contains", "invoice"), False),
    (when("subject", "starts_with", "invoice 42"), True),
    (when("subject", "ends_with", "wrong"), True),
    (when("body", "contains", "rechnung"), True),
    (when("body", "contains", "refund"), False),
    (when("sender_email", "equals", "eva@bigco.de"), True),
    (when("sender_domain", "equals", "bigco.de"), True),
    (when("sender_domain", "any_of", ["acme.example", "bigco.de"]), True),
    (when("sender_domain", "any_of", ["acme.example"]), False),
    (when("sender_domain", "not_equals", "bigco.de"), False),
    (when("contact.name", "contains", "klein"), True),
    (when("contact.email", "ends_with", "@bigco.de"), True),
    (when("company.name", "equals", "bigco"), True),
    (when("company.domain", "equals", "bigco.de"), True),
    (when("language", "equals", "de"), True),
    (when("language", "any_of", ["en", "fr"]), False),
])
def test_each_condition(condition: dict[str, Any], hits: bool) -> None:
    """Each field and operator, case-insensitive."""
    outcome = evaluate([rule(1, [condition], TAG)], FACTS)
    assert (outcome.tags == ("hit",)) is hits


def test_all_conditions_of_a_rule_must_hold() -> None:
    """A rule's conditions are ANDed; none at all matches every ticket."""
    both = [when("language", "equals", "de"), when("subject", "contains", "refund")]
    assert evaluate([rule(1, both, TAG)], FACTS).tags == ()
    assert evaluate([rule(1, [], TAG)], FACTS).tags == ("hit",)


@pytest.mark.parametrize("action,field,value", [
    ({"type": "assign_user", "user_id": 7}, "assignment", Assignment("user", 7)),
    ({"type": "assign_team", "team_id": 3}, "assignment", Assignment("team", 3)),
    ({"type": "round_robin"}, "assignment", Assignment("inbox")),
    ({"type": "set_priority", "value": "urgent"}, "priority", "urgent"),
    ({"type": "set_pipeline", "value": "billing"}, "pipeline", "billing"),
    ({"type": "set_stage", "value": "triage"}, "stage", "triage"),
    ({"type": "add_tag", "value": "vip"}, "tags", ("vip",)),
])
def test_each_action(action: dict[str, Any], field: str, value: Any) -> None:
    """Each action sets what it names on the outcome."""
    assert getattr(evaluate([rule(1, [], [action])], FACTS), field) == value


def test_every_matching_rule_applies_in_order_later_ones_override() -> None:
    """All matches apply: the later assignee and priority win, tags add up."""
    rules = [
        rule(1, [], [{"type": "assign_user", "user_id": 1},
                     {"type": "set_priority", "value": "low"},
                     {"type": "add_tag", "value": "a"}]),
        rule(2, [when("subject", "contains", "nothing like it")],
             [{"type": "set_priority", "value": "urgent"}]),
        rule(3, [when("language", "equals", "de")],
             [{"type": "assign_team", "team_id": 9}, {"type": "set_priority", "value": "high"},
              {"type": "add_tag", "value": "b"}, {"type": "add_tag", "value": "a"}]),
    ]
    outcome = evaluate(rules, FACTS)
    assert outcome.matched == (1, 3)
    assert outcome.assignment == Assignment("team", 9)
    assert outcome.priority == "high" and outcome.tags == ("a", "b")


def test_stop_ends_the_run() -> None:
    """A matching rule with stop is the last to apply; a non-matching one does not stop."""
    rules = [rule(1, [when("subject", "contains", "zzz")], TAG, stop=True),
             rule(2, [], [{"type": "set_stage", "value": "one"}], stop=True),
             rule(3, [], [{"type": "set_stage", "value": "two"}])]
    outcome = evaluate(rules, FACTS)
    assert outcome.matched == (2,) and outcome.stage == "one"


@pytest.mark.parametrize("conditions,actions,where", [
    ([when("colour", "equals", "red")], TAG, "conditions[0].field"),
    ([when("subject", "sounds_like", "x")], TAG, "conditions[0].op"),
    ([when("subject", "contains", "")], TAG, "conditions[0].value"),
    ([when("subject", "any_of", "x")], TAG, "conditions[0].value"),
    ([], [], "actions"),
    ([], [{"type": "launch"}], "actions[0].type"),
    ([], [{"type": "assign_user", "user_id": "7"}], "actions[0]"),
    ([], [{"type": "assign_user", "user_id": True}], "actions[0]"),
    ([], [{"type": "set_priority", "value": "asap"}], "actions[0].value"),
    ([], [{"type": "round_robin", "team_id": 1}], "actions[0]"),
    ("all", TAG, "conditions"),
])
def test_bad_rules_are_refused_naming_the_part(conditions: Any, actions: Any,
                                               where: str) -> None:
    """parse_rule refuses what evaluate could not read, naming the first bad part."""
    with pytest.raises(InvalidInput) as caught:
        parse_rule(1, conditions, actions)
    assert caught.value.message.startswith(where)


def test_round_robin_takes_the_longest_waiting_available_agent_under_capacity() -> None:
    """Never assigned first, then longest ago; unavailable or full agents are skipped."""
    agents = [Agent(1, last_assigned=300.0), Agent(2, last_assigned=100.0),
              Agent(3, available=False), Agent(4, capacity=2, open_tickets=2),
              Agent(5, capacity=3, open_tickets=2, last_assigned=200.0)]
    assert pick_round_robin(agents) == 2
    assert pick_round_robin([*agents, Agent(6)]) == 6
    assert pick_round_robin([Agent(3, available=False), Agent(4, capacity=0)]) is None
    assert pick_round_robin([Agent(8), Agent(7)]) == 7  # ties by user id


def test_subject_token() -> None:
    """[Ticket#N] is found in any case and spacing; with_token adds it once."""
    assert subject_token("RE: [Ticket#123] Printer") == 123
    assert subject_token("Fwd: [ ticket # 9 ] x") == 9
    assert subject_token("Ticket 123") is None
    assert with_token("Re: Printer", 5) == "[Ticket#5] Re: Printer"
    assert with_token("[Ticket#5] Re: Printer", 5) == "[Ticket#5] Re: Printer"


def test_thread_match_needs_a_contact_or_an_agent() -> None:
    """References continue a ticket only from one of its contacts or an agent."""
    stranger = [Known(1, referenced=True, sender_is_contact=False)]
    assert continued(stranger, None, sender_is_agent=False) is None
    by_agent = continued(stranger, None, sender_is_agent=True)
    assert by_agent is not None and (by_agent.ticket_id, by_agent.via) == (1, Via.THREAD)
    contact = [Known(1, True, False), Known(2, True, True)]
    match = continued(contact, None, sender_is_agent=False)
    assert match is not None and (match.ticket_id, match.via) == (2, Via.THREAD)


def test_subject_token_alone_proves_nothing() -> None:
    """A token counts from the ticket's own contact; from anyone else it is ignored."""
    forged = Known(5, referenced=False, sender_is_contact=False)
    assert continued([], forged, sender_is_agent=False) is None
    own = Known(5, referenced=False, sender_is_contact=True)
    match = continued([], own, sender_is_agent=False)
    assert match is not None and match.via is Via.TOKEN


def test_an_untrusted_sender_continues_nothing() -> None:
    """A DMARC failure under reject/quarantine (trusted False) opens a new ticket."""
    known = [Known(1, True, True)]
    assert continued(known, Known(1, True, True), sender_is_agent=False, trusted=False) is None
