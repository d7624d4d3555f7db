"""The ticket list over the HTTP API on both backends: the priority filter and the
latest-activity order (paged by offset) next to the newest order and its cursor, which
are unchanged; bad parameters are 400s; whose inboxes the list covers (the admin token:
every one; a user token, an admin's too: the inboxes they are a member of)."""

from __future__ import annotations

from typing import Any

from tests.support.mail import logged_id
from tests.support.server import Server
from tests.support.tickets import Desk, customer_mail


def _ids(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [int(item["id"]) for item in answer.json()["items"]]


def test_priority_and_latest_activity(desk: Desk) -> None:
    """Three tickets; the oldest is then made urgent (its latest activity): the newest
    order is by id as before, the latest-activity order puts it first, the priority
    filter finds it alone, and both orders page without losing or repeating one."""
    first, second, third = (
        int(desk.ticket_of_email(logged_id(desk.send(customer_mail(
            f"carla{n}@client.example", f"Printer {n}"))))["id"]) for n in range(3))
    with desk.api() as api:
        assert api.patch(f"/api/v1/tickets/{first}",
                         json={"priority": "urgent"}).status_code == 200
        assert _ids(api.get("/api/v1/tickets")) == [third, second, first]
        assert _ids(api.get("/api/v1/tickets", params={"sort": "newest"})) == \
            [third, second, first]
        latest = api.get("/api/v1/tickets", params={"sort": "latest_activity"})
        assert _ids(latest) == [first, third, second]
        assert latest.json()["next_offset"] is None and latest.json()["cursor"] is None
        assert _ids(api.get("/api/v1/tickets", params={"priority": "urgent"})) == [first]
        assert _ids(api.get("/api/v1/tickets", params={
            "priority": "normal", "sort": "latest_activity"})) == [third, second]

        page = api.get("/api/v1/tickets", params={"sort": "latest_activity", "limit": 2})
        assert _ids(page) == [first, third] and page.json()["next_offset"] == 2
        rest = api.get("/api/v1/tickets", params={"sort": "latest_activity", "limit": 2,
                                                  "offset": 2})
        assert _ids(rest) == [second] and rest.json()["next_offset"] is None
        newest = api.get("/api/v1/tickets", params={"limit": 2})
        assert _ids(newest) == [third, second] and newest.json()["cursor"] == second
        assert "next_offset" not in newest.json()  # the newest order's answer as it was
        assert _ids(api.get("/api/v1/tickets", params={"limit": 2, "before": second})) \
            == [first]

        for bad in ({"sort": "oldest"}, {"priority": "max"}, {"offset": "-1"},
                    {"sort": "latest_activity", "before": str(second)},
                    {"offset": "2"}, {"offset": "x"}):
            answer = api.get("/api/v1/tickets", params=bad)
            assert answer.status_code == 400, (bad, answer.text)
            assert answer.json()["error"]["code"] == "bad_request"

    with desk.api(desk.agents[0]["api_token"]) as member:
        assert _ids(member.get("/api/v1/tickets", params={"priority": "urgent"})) == [first]
    with desk.api(desk.outsider["api_token"]) as outsider:
        assert _ids(outsider.get("/api/v1/tickets", params={
            "sort": "latest_activity"})) == []
        assert _ids(outsider.get("/api/v1/tickets", params={"priority": "urgent"})) == []


def test_other_portals_tickets_are_never_listed(
        desk: Desk, desk_server: Server) -> None:
    """Another portal's admin token, in either order and with any filter, lists none of
    this portal's tickets."""
    ticket = desk.ticket_of_email(logged_id(desk.send(customer_mail("dora@client.example"))))
    other = desk_server.new_portal()
    with desk.api(other.admin_token) as api:
        for params in ({}, {"sort": "latest_activity"}, {"priority": "normal"},
                       {"team_inbox_id": str(desk.inbox["id"])}):
            assert ticket["id"] not in _ids(api.get("/api/v1/tickets", params=params))
