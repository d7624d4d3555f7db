"""Team inboxes and tickets over the HTTP API on both backends: who may set them up, who
sees them (404 for non-members and other portals), routing rules and round-robin with
capacity through the SMTP port, assigning, changing, closing and merging tickets."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.tickets import Desk, customer_mail, make_desk, reply_to  # noqa: F401 (the fixtures)


def _open(desk: Desk, sender: str, subject: str = "Printer on fire") -> dict[str, Any]:
    return desk.ticket_of_email(logged_id(desk.send(customer_mail(sender, subject))))


def _feed(desk: Desk, token: str) -> list[dict[str, Any]]:
    with desk.api(token) as api:
        items: list[dict[str, Any]] = api.get("/api/v1/events").json()["items"]
    return items


def test_only_the_admin_sets_up(desk: Desk) -> None:
    """A user cannot create or change team inboxes, teams, rules or capacity (403); an
    agent may set their own availability."""
    agent = desk.agents[0]
    with desk.api(agent["api_token"]) as api:
        assert api.post("/api/v1/team-inboxes", json={"name": "Mine"}).status_code == 403
        assert api.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}",
                         json={"name": "Renamed"}).status_code == 403
        assert api.post("/api/v1/teams", json={"name": "T"}).status_code == 403
        assert api.get("/api/v1/routing-rules").status_code == 403
        assert api.patch(f"/api/v1/agents/{agent['id']}", json={"capacity": 9}).status_code == 403
        other = desk.agents[1]["id"]
        assert api.patch(f"/api/v1/agents/{other}", json={"available": False}).status_code == 403
        own = api.patch(f"/api/v1/agents/{agent['id']}", json={"available": False})
        assert own.status_code == 200 and own.json()["available"] is False
        [seen] = api.get("/api/v1/team-inboxes").json()["items"]
        assert seen["id"] == desk.inbox["id"]
    with desk.api(desk.outsider["api_token"]) as api:
        assert api.get("/api/v1/team-inboxes").json()["items"] == []
        assert api.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}",
                         json={"name": "x"}).status_code == 404


def test_another_portal_reaches_nothing(desk: Desk, desk_server: Server) -> None:
    """Another portal's admin and user get 404 for each of this portal's objects, and
    cannot name its users or teams in their own."""
    ticket = _open(desk, "carla@client.example")
    with desk.api() as admin:
        team = admin.post("/api/v1/teams", json={"name": "Tier 1",
                                                 "user_ids": [desk.agents[0]["id"]]}).json()
        rule = admin.post("/api/v1/routing-rules", json={
            "actions": [{"type": "add_tag", "value": "x"}]}).json()
    other = desk_server.new_portal("boss@rival.example")
    for token in (other.admin_token, other.user_token):
        with desk.api(token) as api:
            inbox = desk.inbox["id"]
            assert api.get(f"/api/v1/team-inboxes/{inbox}").status_code == 404
            assert api.get(f"/api/v1/tickets/{ticket['id']}").status_code == 404
            for verb in ("close", "reopen"):
                assert api.post(f"/api/v1/tickets/{ticket['id']}/{verb}").status_code == 404
            assert api.post(f"/api/v1/tickets/{ticket['id']}/assign",
                            json={"user_id": None}).status_code == 404
            assert api.patch(f"/api/v1/tickets/{ticket['id']}",
                             json={"priority": "low"}).status_code == 404
            assert api.get("/api/v1/tickets").json()["items"] == []
    with desk.api(other.admin_token) as api:
        assert api.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}",
                         json={"name": "x"}).status_code == 404
        assert api.patch(f"/api/v1/teams/{team['id']}", json={"name": "x"}).status_code == 404
        assert api.patch(f"/api/v1/routing-rules/{rule['id']}",
                         json={"enabled": False}).status_code == 404
        assert api.delete(f"/api/v1/routing-rules/{rule['id']}").status_code == 404
        assert api.patch(f"/api/v1/agents/{desk.agents[0]['id']}",
                         json={"capacity": 1}).status_code == 404
        assert team["id"] not in [t["id"] for t in api.get("/api/v1/teams").json()["items"]]
        theirs = api.post("/api/v1/team-inboxes", json={
            "name": "Rival", "members": [{"user_id": desk.agents[0]["id"]}]})
        assert theirs.status_code == 422
        assert api.post("/api/v1/routing-rules", json={"actions": [
            {"type": "assign_team", "team_id": team["id"]}]}).status_code == 422


def test_a_rule_routes_by_sender_domain(desk: Desk) -> None:
    """A rule on the sender's domain assigns its agent, priority and tag; other mail is
    round-robined."""
    target = desk.agents[1]
    with desk.api() as admin:
        response = admin.post("/api/v1/routing-rules", json={
            "name": "BigCo", "team_inbox_id": desk.inbox["id"],
            "conditions": [{"field": "sender_domain", "op": "equals", "value": "bigco.de"}],
            "actions": [{"type": "assign_user", "user_id": target["id"]},
                        {"type": "set_priority", "value": "high"},
                        {"type": "add_tag", "value": "vip"}]})
        assert response.status_code == 201, response.text
    vip = _open(desk, "eva@bigco.de", "Invoice 42")
    assert vip["assignee_user_id"] == target["id"]
    assert vip["priority"] == "high" and vip["tags"] == ["vip"]
    assigned = [a for a in vip["activity"] if a["kind"] == "assigned"]
    assert assigned[0]["detail"] == {"how": "rule"}
    plain = _open(desk, "bob@small.example")
    assert plain["priority"] == "normal" and plain["tags"] == []
    assert plain["language"] == "en"  # what a rule on language reads
    assert plain["assignee_user_id"] in {a["id"] for a in desk.agents}


def test_team_round_robin_respects_capacity_and_availability(desk: Desk) -> None:
    """Round-robin skips an agent at capacity and one unavailable; with nobody free the
    ticket waits unassigned; a closed ticket frees its agent."""
    one, two = desk.agents
    with desk.api() as admin:
        team = admin.post("/api/v1/teams", json={"name": "Tier 2", "user_ids": [
            one["id"], two["id"]]}).json()
        admin.post("/api/v1/routing-rules", json={
            "actions": [{"type": "assign_team", "team_id": team["id"]}]})
        assert admin.patch(f"/api/v1/agents/{one['id']}",
                           json={"capacity": 1}).json()["capacity"] == 1
    first = _open(desk, "a@one.example")
    second = _open(desk, "b@two.example")
    assert (first["assignee_user_id"], second["assignee_user_id"]) == (one["id"], two["id"])
    assert first["assignee_team_id"] == team["id"]
    third = _open(desk, "c@three.example")
    assert third["assignee_user_id"] == two["id"]  # one is at capacity
    with desk.api() as admin:
        admin.patch(f"/api/v1/agents/{two['id']}", json={"available": False})
    waiting = _open(desk, "d@four.example")
    assert waiting["assignee_user_id"] is None
    with desk.api() as admin:
        assert admin.get("/api/v1/tickets", params={"assignee": "none"}).json()[
            "items"][0]["id"] == waiting["id"]
        admin.post(f"/api/v1/tickets/{first['id']}/close")
    assert _open(desk, "e@five.example")["assignee_user_id"] == one["id"]


def test_assign_validates_and_notifies(desk: Desk) -> None:
    """Only a member of the inbox can be assigned (422 else); the assignee's feed gets
    ticket_assigned; null unassigns."""
    ticket = _open(desk, "fay@client.example")
    other = next(a for a in desk.agents if a["id"] != ticket["assignee_user_id"])
    with desk.api(other["api_token"]) as api:
        url = f"/api/v1/tickets/{ticket['id']}/assign"
        assert api.post(url, json={"user_id": desk.outsider["id"]}).status_code == 422
        assert api.post(url, json={"user_id": 2**62}).status_code == 422
        assert api.post(url, json={"user": 1}).status_code == 422
        moved = api.post(url, json={"user_id": other["id"]})
        assert moved.status_code == 200 and moved.json()["assignee_user_id"] == other["id"]
    events = [e for e in _feed(desk, other["api_token"])
              if e["detail"].get("ticket_id") == ticket["id"]]
    assert events[-1]["type"] == "ticket_assigned"
    assert events[-1]["detail"]["how"] == "api"
    with desk.api() as admin:
        none = admin.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"user_id": None})
        assert none.json()["assignee_user_id"] is None


def test_change_and_close_a_ticket(desk: Desk) -> None:
    """PATCH takes known values only (422 else); close sets closed_at and tells the
    assignee; reopen starts a second response cycle."""
    ticket = _open(desk, "gus@client.example")
    agent = next(a for a in desk.agents if a["id"] == ticket["assignee_user_id"])
    url = f"/api/v1/tickets/{ticket['id']}"
    with desk.api(agent["api_token"]) as api:
        for bad in ({"status": "done"}, {"priority": "asap"}, {"colour": "red"},
                    {"tags": ["x" * 51]}, {"subject": ""}):
            assert api.patch(url, json=bad).status_code == 422, bad
        assert api.patch(url, content=b"[1]").status_code == 400
        changed = api.patch(url, json={"priority": "urgent", "stage": "waiting on parts",
                                       "tags": ["hardware", "hardware"]}).json()
        assert (changed["priority"], changed["stage"], changed["tags"]) == (
            "urgent", "waiting on parts", ["hardware"])
        closed = api.post(f"{url}/close").json()
        assert closed["status"] == "closed" and closed["closed_at"]
        reopened = api.post(f"{url}/reopen").json()
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    assert reopened["activity"][-1]["detail"] == {"reason": "api", "cycle": 2}
    kinds = [a["kind"] for a in reopened["activity"]]
    assert kinds.count("priority") == 1 and kinds.count("stage") == 1
    types = [e["type"] for e in _feed(desk, agent["api_token"])
             if e["detail"].get("ticket_id") == ticket["id"]]
    assert "ticket_closed" in types


def test_merge_moves_mail_and_later_replies(desk: Desk) -> None:
    """A merged ticket's emails and contacts join the survivor; a reply on the merged
    one's thread continues the survivor; bad merges are 422."""
    first_mail = customer_mail("hal@client.example", "Screen flickers")
    first = desk.ticket_of_email(logged_id(desk.send(first_mail)))
    second = _open(desk, "ivy@client.example", "Screen flickers too")
    with desk.api() as admin:
        url = f"/api/v1/tickets/{first['id']}/merge"
        assert admin.post(url, json={"into": first["id"]}).status_code == 422
        assert admin.post(url, json={"into": 2**62}).status_code == 422
        merged = admin.post(url, json={"into": second["id"]})
        assert merged.status_code == 200, merged.text
        survivor = merged.json()
        gone = admin.get(f"/api/v1/tickets/{first['id']}").json()
    assert survivor["id"] == second["id"] and len(survivor["emails"]) == 2
    assert set(first["contact_ids"]) <= set(survivor["contact_ids"])
    assert gone["status"] == "closed" and gone["merged_into_id"] == second["id"]
    reply = logged_id(desk.send(reply_to(first_mail, "hal@client.example")))
    assert reply in [e["id"] for e in desk.ticket(second["id"])["emails"]]
    assert desk.ticket(first["id"])["status"] == "closed"


def test_a_team_member_sees_the_inbox_and_others_not_its_mail(desk: Desk) -> None:
    """Membership through a team counts; a contact's timeline and search show a
    non-member their own logged mail with the customer, never the team inbox's."""
    with desk.api() as admin:
        team = admin.post("/api/v1/teams", json={
            "name": "Escalation", "user_ids": [desk.outsider["id"]]}).json()
    email_id = logged_id(desk.send(customer_mail("jo@client.example")))
    ticket = desk.ticket_of_email(email_id)
    mine = message(sender="sales@ourco.example", to="jo@client.example",
                   subject="Our offer")
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    contact_id = ticket["contact_id"]
    def found(api: Any) -> set[int]:
        hits = api.get("/api/v1/search", params={"q": "printer"}).json()["items"]
        return {h["email"]["id"] for h in hits}

    with desk.api(desk.outsider["api_token"]) as api:
        timeline = api.get(f"/api/v1/contacts/{contact_id}/timeline").json()["items"]
        assert [e["id"] for e in timeline] == [own]
        assert api.get(f"/api/v1/tickets/{ticket['id']}").status_code == 404
        assert email_id not in found(api)
    with desk.api(desk.agents[0]["api_token"]) as api:
        assert email_id in found(api)
    with desk.api() as admin:
        admin.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}", json={"members": [
            {"user_id": desk.agents[0]["id"]}, {"team_id": team["id"]}]})
    with desk.api(desk.outsider["api_token"]) as api:
        assert api.get(f"/api/v1/tickets/{ticket['id']}").status_code == 200
        timeline = api.get(f"/api/v1/contacts/{contact_id}/timeline").json()["items"]
        assert {e["id"] for e in timeline} == {own, email_id}


def test_ticket_list_filters(desk: Desk) -> None:
    """status and assignee filter the list; a bad value is 400."""
    ticket = _open(desk, "kai@client.example")
    with desk.api() as admin:
        admin.post(f"/api/v1/tickets/{ticket['id']}/close")
        closed = admin.get("/api/v1/tickets", params={"status": "closed"}).json()["items"]
        assert [t["id"] for t in closed] == [ticket["id"]]
        assert admin.get("/api/v1/tickets", params={"status": "done"}).status_code == 400
        assert admin.get("/api/v1/tickets", params={"assignee": "me"}).status_code == 400
        mine = admin.get("/api/v1/tickets", params={
            "assignee": str(ticket["assignee_user_id"])}).json()["items"]
        assert ticket["id"] in [t["id"] for t in mine]


def test_team_inbox_settings_are_validated(desk: Desk) -> None:
    """Bad time zones, hours, limits and members are 422 naming the field."""
    url = f"/api/v1/team-inboxes/{desk.inbox['id']}"
    with desk.api() as admin:
        for bad, field in (({"time_zone": "Mars/Olympus"}, "time_zone"),
                           ({"business_hours": {"mon": [["17:00", "09:00"]]}}, "business_hours"),
                           ({"business_hours": {"funday": []}}, "business_hours"),
                           ({"sender_hourly_limit": 0}, "sender_hourly_limit"),
                           ({"members": [{"user_id": 1, "team_id": 1}]}, "members"),
                           ({"address": "not an address"}, "invalid email")):
            response = admin.patch(url, json=bad)
            assert response.status_code == 422, bad
            assert field in response.json()["error"]["message"], response.text
        good = admin.patch(url, json={"time_zone": "Europe/Berlin", "business_hours": {
            "mon": [["09:00", "12:00"], ["13:00", "17:00"]]}}).json()
    assert good["time_zone"] == "Europe/Berlin"
    assert good["business_hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]


def test_concurrent_new_tickets_are_shared_out_evenly(desk: Desk) -> None:
    """Four customers writing at once: each of the two agents gets two tickets."""
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda n: desk.send(customer_mail(f"c{n}@at-once.example")),
                                range(4)))
    tickets = [desk.ticket_of_email(logged_id(reply)) for reply in replies]
    assignees = Counter(t["assignee_user_id"] for t in tickets)
    assert assignees == {a["id"]: 2 for a in desk.agents}
