"""Routing gives a new ticket only to a member of its inbox, rule by rule, through the
SMTP port (a customer writes the team inbox) and the API (rules, the ticket, feeds): a
portal-wide rule naming a colleague outside the inbox, a rule naming an agent who has
since left the inbox, and a team with members inside and outside it. Anyone else would
get ``ticket_created`` with the ticket's subject and sender and could not open it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.mail import logged_id
from tests.support.server import Server
from tests.support.tickets import Desk, customer_mail, make_desk


@pytest.fixture
def desk(server: Server) -> Desk:
    return make_desk(server)


def _rule(desk: Desk, action: dict[str, Any], inbox_id: int | None = None) -> None:
    body: dict[str, Any] = {"conditions": [], "actions": [action]}
    if inbox_id is not None:
        body["team_inbox_id"] = inbox_id
    with desk.api() as admin:
        answer = admin.post("/api/v1/routing-rules", json=body)
    assert answer.status_code == 201, answer.text


def _team(desk: Desk, *users: dict[str, Any]) -> int:
    with desk.api() as admin:
        answer = admin.post("/api/v1/teams", json={
            "name": f"Team {len(users)}", "user_ids": [u["id"] for u in users]})
    assert answer.status_code in (200, 201), answer.text
    return int(answer.json()["id"])


def _ticket(desk: Desk, subject: str) -> dict[str, Any]:
    return desk.ticket_of_email(logged_id(desk.send(customer_mail(
        "carla@client.example", subject))))


def _feed_subjects(desk: Desk, user: dict[str, Any]) -> list[str]:
    with desk.api(user["api_token"]) as api:
        items = api.get("/api/v1/events").json()["items"]
    return [str(e) for e in items if str(e["type"]).startswith("ticket_")]


def _not_followed(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["detail"] for a in ticket["activity"]
            if a["kind"] == "assigned" and a["detail"].get("how") == "rule_not_followed"]


def test_a_portal_wide_rule_naming_a_non_member_leaves_the_ticket_unassigned(
        desk: Desk) -> None:
    """A rule of every inbox that assigns to a colleague outside this one: the ticket
    stays unassigned, its log says why, and the colleague's feed has nothing of it."""
    _rule(desk, {"type": "assign_user", "user_id": desk.outsider["id"]})
    ticket = _ticket(desk, "Salary list attached")
    assert (ticket["assignee_user_id"], ticket["assignee_team_id"]) == (None, None)
    assert _not_followed(ticket) == [{"how": "rule_not_followed",
                                      "reason": "user_not_member",
                                      "user_id": desk.outsider["id"]}]
    assert _feed_subjects(desk, desk.outsider) == []


def test_a_rule_naming_an_agent_who_left_the_inbox(desk: Desk) -> None:
    """A rule of this inbox saved while the agent was a member, who then left it: the
    next ticket is not theirs (unassigned, said in the log); a member named is."""
    leaving = desk.agents[1]
    _rule(desk, {"type": "assign_user", "user_id": leaving["id"]}, desk.inbox["id"])
    assert _ticket(desk, "Before leaving")["assignee_user_id"] == leaving["id"]
    with desk.api() as admin:
        answer = admin.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}", json={
            "members": [{"user_id": desk.agents[0]["id"]}]})
    assert answer.status_code == 200, answer.text
    before = _feed_subjects(desk, leaving)
    ticket = _ticket(desk, "After leaving")
    assert ticket["assignee_user_id"] is None
    assert [d["reason"] for d in _not_followed(ticket)] == ["user_not_member"]
    assert _feed_subjects(desk, leaving) == before


def test_a_rule_naming_a_member_assigns_them(desk: Desk) -> None:
    """The control: a portal-wide rule naming a member of the inbox gives them the
    ticket, with nothing in the log about a rule not followed."""
    _rule(desk, {"type": "assign_user", "user_id": desk.agents[1]["id"]})
    ticket = _ticket(desk, "For agent two")
    assert ticket["assignee_user_id"] == desk.agents[1]["id"]
    assert _not_followed(ticket) == []


def test_a_team_rule_round_robins_over_the_team_and_the_inbox(desk: Desk) -> None:
    """A team of one agent and the colleague outside the inbox: every ticket goes to
    the agent (round-robin over team and inbox members), never to the colleague."""
    mixed = _team(desk, desk.agents[0], desk.outsider)
    _rule(desk, {"type": "assign_team", "team_id": mixed})
    for n in range(3):
        ticket = _ticket(desk, f"Mixed team {n}")
        assert (ticket["assignee_user_id"], ticket["assignee_team_id"]) == (
            desk.agents[0]["id"], mixed), n
    assert _feed_subjects(desk, desk.outsider) == []


def test_a_team_rule_with_nobody_in_the_inbox_leaves_it_unassigned(desk: Desk) -> None:
    """A portal-wide rule naming a team none of whose users is in the inbox: no one
    gets the ticket (not the team's users, not a round-robin of the inbox either)."""
    strangers = _team(desk, desk.outsider)
    _rule(desk, {"type": "assign_team", "team_id": strangers})
    ticket = _ticket(desk, "Nobody of theirs")
    assert (ticket["assignee_user_id"], ticket["assignee_team_id"]) == (None, None)
    assert _not_followed(ticket) == [{"how": "rule_not_followed",
                                      "reason": "team_not_member", "team_id": strangers}]
    assert _feed_subjects(desk, desk.outsider) == []
