"""A team inbox attacked by the portal's other users, through the real ports on both
backends: a colleague who is not a member learns nothing of its mail (the ingest log,
a thread that mixes their mail with the inbox's, one-click logging of a copy, moving
their email into its threads, search pages and cursors), and bad settings are 422."""

from __future__ import annotations

from email.utils import make_msgid
from typing import Any

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.tickets import Desk, customer_mail, make_desk, reply_to


def _senders(desk: Desk, token: str) -> set[str]:
    with desk.api(token) as api:
        response = api.get("/api/v1/ingest-log", params={"limit": 200})
    assert response.status_code == 200, response.text
    return {e["sender"] for e in response.json()["items"]}


def test_ingest_log_shows_a_team_inbox_refusals_to_its_members_only(desk: Desk) -> None:
    """Mail to the team inbox refused (past the sender's allowance, at either of its
    addresses; automatic mail) is in the ingest log of its members and the admin, not
    of a colleague outside it, who still sees the refusals of their own logging address."""
    with desk.api() as admin:
        assert admin.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}",
                           json={"sender_hourly_limit": 1}).status_code == 200
    tagged = desk.account.bcc_address.replace("@", f"+inbox-{desk.inbox['id']}@")
    for rcpt in (tagged, desk.address, tagged):
        deliver(desk.server, customer_mail("flood@spam.example"), rcpt,
                mail_from="flood@spam.example")
    bounce = customer_mail("mailer-daemon@mx.example", "Undeliverable: hello")
    bounce["Auto-Submitted"] = "auto-replied"
    code, text = deliver(desk.server, bounce, desk.address)
    assert code == 250 and "not logged" in text
    stranger = message(sender="nobody@elsewhere.example", to="rep@ourco.example")
    deliver(desk.server, stranger, desk.account.bcc_address)
    inbox_senders = {"flood@spam.example", "mailer-daemon@mx.example"}
    for token in (desk.account.admin_token, desk.agents[0]["api_token"]):
        assert inbox_senders <= _senders(desk, token)
    seen = _senders(desk, desk.outsider["api_token"])
    assert "nobody@elsewhere.example" in seen
    assert not seen & inbox_senders
    with desk.api(desk.outsider["api_token"]) as api:  # nor page by page
        page = api.get("/api/v1/ingest-log", params={"limit": 1}).json()
        assert [e["sender"] for e in page["items"]] == ["nobody@elsewhere.example"]


def _thread_with_a_colleague(desk: Desk) -> tuple[dict[str, Any], int, int]:
    """A customer's ticket mail, and the outsider's own logged mail that answers it (so
    both are on one thread): (the customer's email, its id, the outsider's email id)."""
    first = customer_mail("carla@client.example", "Refund for invoice 4711")
    team_email = logged_id(desk.send(first))
    mine = message(sender="sales@ourco.example", to="carla@client.example",
                   subject="Our offer", message_id=make_msgid(),
                   in_reply_to=str(first["Message-ID"]))
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    with desk.api() as admin:
        email = admin.get(f"/api/v1/emails/{team_email}").json()
    assert admin_thread(desk, email["thread_id"]) == {team_email, own}
    return email, team_email, own


def admin_thread(desk: Desk, thread_id: int) -> set[int]:
    with desk.api() as admin:
        return {e["id"] for e in admin.get(f"/api/v1/threads/{thread_id}").json()["emails"]}


def test_a_mixed_thread_shows_a_non_member_only_their_mail(desk: Desk) -> None:
    """A thread holding a team inbox's email and a colleague's own: the colleague sees
    their email, and neither the inbox's email nor its subject (the thread's subject
    is the first email they see); a member sees both and the real subject."""
    email, team_email, own = _thread_with_a_colleague(desk)
    with desk.api(desk.outsider["api_token"]) as api:
        thread = api.get(f"/api/v1/threads/{email['thread_id']}").json()
        assert [e["id"] for e in thread["emails"]] == [own]
        assert "4711" not in str(thread)
        assert api.get(f"/api/v1/emails/{team_email}").status_code == 404
        found = api.get("/api/v1/emails", params={"message_id": email["message_id"]})
        assert found.json()["items"] == []
    with desk.api(desk.agents[0]["api_token"]) as api:
        thread = api.get(f"/api/v1/threads/{email['thread_id']}").json()
        assert thread["subject"] == "Refund for invoice 4711"
        assert {e["id"] for e in thread["emails"]} == {team_email, own}


def test_one_click_logging_a_copy_reveals_nothing(desk: Desk) -> None:
    """A colleague who logs a copy of a team inbox's email (its Message-ID) through
    one-click logging gets a 404, not the inbox's email."""
    first = customer_mail("dora@client.example", "Password reset for account 99")
    logged_id(desk.send(first))
    copy = message(sender="dora@client.example", to="sales@ourco.example",
                   subject="anything", message_id=str(first["Message-ID"]))
    with desk.api(desk.outsider["api_token"]) as api:
        response = api.post("/api/v1/emails/log", content=copy.as_bytes(),
                            headers={"content-type": "message/rfc822"})
    assert response.status_code == 404, response.text
    assert "account 99" not in response.text and "Password" not in response.text


def test_moving_an_email_into_a_team_inbox_thread_is_404(desk: Desk) -> None:
    """A colleague cannot move their own email into a thread of only team inbox mail
    (whose subject the thread would then show them): 404 as for any unknown thread."""
    team_email = logged_id(desk.send(customer_mail("eve@client.example", "Secret plans")))
    with desk.api() as admin:
        thread_id = admin.get(f"/api/v1/emails/{team_email}").json()["thread_id"]
    mine = message(sender="sales@ourco.example", to="someone@client.example",
                   subject="Lunch", message_id=make_msgid())
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    with desk.api(desk.outsider["api_token"]) as api:
        moved = api.post(f"/api/v1/emails/{own}/thread", json={"thread_id": thread_id})
        assert moved.status_code == 404, moved.text
        assert api.get(f"/api/v1/threads/{thread_id}").status_code == 404
    assert admin_thread(desk, thread_id) == {team_email}


def test_search_leaves_a_team_inbox_out_before_paging(desk: Desk) -> None:
    """A colleague's search counts only what they may see: with team inbox mail newer
    than their own, their first page of one hit is their own email, and the cursor
    ends where their matches do (a member's first page is the inbox's newest)."""
    mine = message(sender="sales@ourco.example", to="zed@client.example",
                   subject="Kumquat delivery", body="The kumquat crates ship Monday.",
                   message_id=make_msgid(), date="Mon, 02 Nov 2026 09:30:00 +0100")
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    inbox_ids = []
    for n in range(3):
        mail = customer_mail(f"k{n}@client.example", f"Kumquat crate {n} broken")
        inbox_ids.append(logged_id(desk.send(mail)))
    for params in ({"q": "kumquat", "limit": 1}, {"q": "kumquat -xyzzy", "limit": 1},
                   {"q": "kumquat", "limit": 5}):
        with desk.api(desk.outsider["api_token"]) as api:
            page = api.get("/api/v1/search", params=params).json()
        assert [h["email"]["id"] for h in page["items"]] == [own], params
        assert page["cursor"] is None, params
    with desk.api(desk.agents[0]["api_token"]) as api:
        page = api.get("/api/v1/search", params={"q": "kumquat", "limit": 3}).json()
        assert {h["email"]["id"] for h in page["items"]} <= {own, *inbox_ids}
        assert len(page["items"]) == 3 and page["cursor"] is not None


def test_overlapping_business_hours_are_refused(desk: Desk) -> None:
    """Business hours are read by core.sla's parser: spans that overlap (which would
    count their hours twice), a day given twice by spelling, a bad clock, a non-list
    are 422 naming business_hours; good hours are stored as the parser read them."""
    url = f"/api/v1/team-inboxes/{desk.inbox['id']}"
    with desk.api() as admin:
        for bad in ({"mon": [["09:00", "17:00"], ["12:00", "13:00"]]},
                    {"mon": [["09:00", "25:00"]]}, {"mon": "09:00-17:00"},
                    {"mon": [["09:00"]]}, {"mon": [[9, 17]]},
                    {"holidays": "2026-12-25"}, {"holidays": ["2026-02-30"]},
                    {"mon": [["09:00", "10:00"]] * 11}):
            response = admin.patch(url, json={"business_hours": bad})
            assert response.status_code == 422, (bad, response.text)
            assert "business_hours" in response.json()["error"]["message"], response.text
        good = admin.patch(url, json={"business_hours": {
            "tue": [["13:00", "17:00"], ["08:30", "12:00"]], "holidays": ["2026-12-25"]}})
        assert good.status_code == 200, good.text
    assert good.json()["business_hours"] == {
        "tue": [["08:30", "12:00"], ["13:00", "17:00"]], "holidays": ["2026-12-25"]}


def _ticket(desk: Desk, sender: str, subject: str = "Printer on fire") -> dict[str, Any]:
    return desk.ticket_of_email(logged_id(desk.send(customer_mail(sender, subject))))


def test_assigning_through_a_team_stays_in_the_inbox(desk: Desk) -> None:
    """A ticket given to a team goes only to a member of its inbox: naming a team
    member outside the inbox, or a team with nobody in it, is 422 (the colleague would
    get the ticket's events and could not open it); a team of members round-robins."""
    ticket = _ticket(desk, "gil@client.example")
    with desk.api() as admin:
        mixed = admin.post("/api/v1/teams", json={"name": "Mixed", "user_ids": [
            desk.agents[0]["id"], desk.outsider["id"]]}).json()
        strangers = admin.post("/api/v1/teams", json={
            "name": "Sales", "user_ids": [desk.outsider["id"]]}).json()
        url = f"/api/v1/tickets/{ticket['id']}/assign"
        named = admin.post(url, json={"team_id": mixed["id"], "user_id": desk.outsider["id"]})
        assert named.status_code == 422, named.text
        nobody = admin.post(url, json={"team_id": strangers["id"]})
        assert nobody.status_code == 422, nobody.text
        for _ in range(3):  # round-robin never picks the outsider
            picked = admin.post(url, json={"team_id": mixed["id"]})
            assert picked.status_code == 200, picked.text
            assert picked.json()["assignee_user_id"] == desk.agents[0]["id"]
    events = [e for e in _feed(desk, desk.outsider["api_token"])
              if e["detail"].get("ticket_id") == ticket["id"]]
    assert events == []


def _feed(desk: Desk, token: str) -> list[dict[str, Any]]:
    with desk.api(token) as api:
        items: list[dict[str, Any]] = api.get("/api/v1/events").json()["items"]
    return items


def test_merges_stay_within_what_the_agent_sees(desk: Desk, desk_server: Server) -> None:
    """A ticket merges only into one of the same inbox the caller sees: another inbox's
    (even for an admin), another portal's, and an unknown id are 422 and move nothing."""
    ticket = _ticket(desk, "hana@client.example")
    other_desk = make_desk(desk_server)
    foreign = _ticket(other_desk, "hana@client.example")
    with desk.api() as admin:
        second = admin.post("/api/v1/team-inboxes", json={
            "name": "Billing", "members": [{"user_id": desk.agents[0]["id"]}]}).json()
    billing = deliver(desk.server, customer_mail("ida@client.example", "Invoice"),
                      second["forwarding_address"])
    billing_ticket = desk.ticket_of_email(logged_id(billing))
    url = f"/api/v1/tickets/{ticket['id']}/merge"
    for token in (desk.account.admin_token, desk.agents[0]["api_token"]):
        with desk.api(token) as api:
            for into in (billing_ticket["id"], foreign["id"], 2**63 - 1):
                answer = api.post(url, json={"into": into})
                assert answer.status_code == 422, (into, answer.text)
    with desk.api(other_desk.account.admin_token) as api:
        answer = api.post(f"/api/v1/tickets/{foreign['id']}/merge", json={"into": ticket["id"]})
        assert answer.status_code == 422, answer.text
    assert desk.ticket(ticket["id"])["merged_into_id"] is None
    assert other_desk.ticket(foreign["id"])["merged_into_id"] is None


def test_notes_and_canned_responses_have_limits(desk: Desk, desk_server: Server) -> None:
    """Huge notes, canned bodies, signatures and rule lists are 413 or 422; a mention of
    a colleague outside the inbox or of another portal's user, by address or id, is
    422 and tells nobody."""
    ticket = _ticket(desk, "jan@client.example")
    agent = desk.agents[0]["api_token"]
    other = desk_server.new_portal("boss@rival.example")
    with desk.api(agent) as api:
        notes = f"/api/v1/tickets/{ticket['id']}/notes"
        assert api.post(notes, json={"text": "x" * 20_001}).status_code == 422
        assert api.post(notes, json={"text": "x" * (1024 * 1024 + 1)}).status_code == 413
        for text, mentions in (("@sales@ourco.example look", []),
                               ("@boss@rival.example look", []),
                               ("look", [desk.outsider["id"]]), ("look", [other.user_id]),
                               ("look", list(range(1, 30)))):
            answer = api.post(notes, json={"text": text, "mentions": mentions})
            assert answer.status_code == 422, (text, mentions, answer.text)
    assert _feed(desk, desk.outsider["api_token"]) == []
    with desk.api() as admin:
        canned = f"/api/v1/team-inboxes/{desk.inbox['id']}/canned-responses"
        assert admin.post(canned, json={"name": "big", "body": "x" * 20_001}
                          ).status_code == 422
        assert admin.post(canned, json={"name": "x" * 201, "body": "hi"}).status_code == 422
        inbox = f"/api/v1/team-inboxes/{desk.inbox['id']}"
        assert admin.patch(inbox, json={"signature": "x" * 10_001}).status_code == 422
        assert admin.patch(inbox, json={"ack_text": "x" * 10_001}).status_code == 422
        many = [{"field": "subject", "op": "contains", "value": "x"}] * 51
        assert admin.post("/api/v1/routing-rules", json={
            "conditions": many, "actions": [{"type": "add_tag", "value": "x"}]}
        ).status_code == 422
        assert admin.post("/api/v1/routing-rules", json={"conditions": [], "actions": [
            {"type": "add_tag", "value": "x" * 501}]}).status_code == 422


def test_a_guessed_ticket_token_opens_a_new_ticket(desk: Desk) -> None:
    """An outsider who writes [Ticket#N] in a subject gets a ticket of their own; the
    guessed ticket keeps its one email."""
    ticket = _ticket(desk, "kim@client.example", "My invoice")
    forged = customer_mail("mallory@evil.example", f"Re: [Ticket#{ticket['id']}] My invoice")
    own = desk.ticket_of_email(logged_id(desk.send(forged)))
    assert own["id"] != ticket["id"]
    assert len(desk.ticket(ticket["id"])["emails"]) == 1


def test_an_inbox_rule_assigns_only_its_members(desk: Desk) -> None:
    """A rule of one team inbox that assigns to a colleague outside it, or to a team
    with nobody in the inbox, is 422 (the colleague's feed would get each new ticket's
    subject and sender); to a member it is kept."""
    with desk.api() as admin:
        strangers = admin.post("/api/v1/teams", json={
            "name": "Sales", "user_ids": [desk.outsider["id"]]}).json()
        for action in ({"type": "assign_user", "user_id": desk.outsider["id"]},
                       {"type": "assign_team", "team_id": strangers["id"]}):
            answer = admin.post("/api/v1/routing-rules", json={
                "team_inbox_id": desk.inbox["id"], "actions": [action]})
            assert answer.status_code == 422, (action, answer.text)
            assert "actions[0]" in answer.json()["error"]["message"]
        kept = admin.post("/api/v1/routing-rules", json={
            "team_inbox_id": desk.inbox["id"],
            "actions": [{"type": "assign_user", "user_id": desk.agents[1]["id"]}]})
        assert kept.status_code == 201, kept.text
        moved = admin.patch(f"/api/v1/routing-rules/{kept.json()['id']}", json={
            "actions": [{"type": "assign_user", "user_id": desk.outsider["id"]}]})
        assert moved.status_code == 422, moved.text
    ticket = _ticket(desk, "lou@client.example", "Quiet please")
    assert ticket["assignee_user_id"] == desk.agents[1]["id"]
    assert _feed(desk, desk.outsider["api_token"]) == []


def test_merges_never_chain(desk: Desk) -> None:
    """A into B, then B into C: A now points at C itself (no chain for mail to walk:
    a long one once left mail on a merged ticket, reopening it), and a reply on A's
    thread continues C."""
    first_mail = customer_mail("max@client.example", "Chain 1")
    a = desk.ticket_of_email(logged_id(desk.send(first_mail)))
    b, c = _ticket(desk, "max@client.example", "Chain 2"), _ticket(desk, "max@client.example",
                                                                    "Chain 3")
    with desk.api() as admin:
        for found, into in ((a, b), (b, c)):
            answer = admin.post(f"/api/v1/tickets/{found['id']}/merge", json={"into": into["id"]})
            assert answer.status_code == 200, answer.text
    assert desk.ticket(a["id"])["merged_into_id"] == c["id"]
    reply = logged_id(desk.send(reply_to(first_mail, "max@client.example")))
    assert reply in [e["id"] for e in desk.ticket(c["id"])["emails"]]
    assert desk.ticket(a["id"])["status"] == "closed" == desk.ticket(b["id"])["status"]
