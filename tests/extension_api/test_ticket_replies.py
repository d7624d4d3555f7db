"""Agents work a ticket through the HTTP API (docs/ticket-replies.md): replies go out
through the operator's relay (a real SMTP recorder, standing also for the customer's
mailbox) threaded so the customer's answer, sent through the SMTP port, continues the
ticket; notes are never sent and tell whom they mention; presence shows who else is
there and a reply crossing another agent's is a 409; canned responses are filled in
safely; nobody outside the inbox or the portal gets anything but a 404."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any

import httpx
import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server
from tests.support.smtp_recorder import SmtpRecorder
from tests.support.tickets import SUPPORT, make_desk

CUSTOMER = "carol@customer.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, relay: SmtpRecorder) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("replies"), extra_args=relay.serve_args()).start()
    yield running
    running.stop()


@dataclass
class Desk:
    """A portal with a team inbox, two agents in it and a colleague outside it, and one
    ticket a customer opened by mail."""

    server: Server
    account: PortalAccount
    inbox: dict[str, Any]
    agents: list[dict[str, Any]]
    outsider: dict[str, Any]
    ticket_id: int
    first: EmailMessage

    def api(self, who: int | str | None = None) -> httpx.Client:
        """An API client as agent ``who`` (0 or 1), the outsider ("outsider") or the
        admin (None)."""
        token = (self.account.admin_token if who is None
                 else self.outsider["api_token"] if who == "outsider"
                 else self.agents[int(who)]["api_token"])
        return self.server.api(token)

    def ticket(self) -> dict[str, Any]:
        with self.api() as api:
            found = api.get(f"/api/v1/tickets/{self.ticket_id}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body

    def send(self, msg: EmailMessage) -> int:
        return logged_id(deliver(self.server, msg, self.inbox["forwarding_address"],
                                 mail_from=CUSTOMER))

    def reply(self, who: int, **body: Any) -> httpx.Response:
        with self.api(who) as api:
            return api.post(f"/api/v1/tickets/{self.ticket_id}/replies",
                            json={"text": "Hi Carol,\n\nwe are on it.", **body})


def _desk(server: Server, *, customer_name: str = "Carol Customer",
          signature: str = "Acme Support\n{{agent.name}}") -> Desk:
    made = make_desk(server, signature=signature)
    account, inbox, agents, outsider = made.account, made.inbox, made.agents, made.outsider
    first = message(sender=f"{customer_name} <{CUSTOMER}>", to=SUPPORT,
                    subject="Printer on fire", message_id=make_msgid(domain="customer.example"),
                    body="Hello,\n\nour printer is on fire again.\n\nCarol")
    email_id = logged_id(deliver(server, first, inbox["forwarding_address"],
                                 mail_from=CUSTOMER))
    with server.api(account.admin_token) as admin:
        tickets = admin.get("/api/v1/tickets", params={"team_inbox_id": inbox["id"]}).json()
    [ticket] = tickets["items"]
    desk = Desk(server, account, inbox, agents, outsider, ticket["id"], first)
    assert email_id in [e["id"] for e in desk.ticket()["emails"]]
    return desk


@pytest.fixture
def desk(server: Server) -> Desk:
    return _desk(server)


def sent_to(relay: SmtpRecorder, address: str) -> list[tuple[dict[str, Any], EmailMessage]]:
    found = []
    for envelope, raw in relay.messages():
        if address in envelope["rcpt_tos"]:
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append((envelope, parsed))
    return found


def _ids(header: str | None) -> list[str]:
    return (header or "").split()


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_a_reply_threads_and_the_customers_answer_continues_the_ticket(
        desk: Desk, relay: SmtpRecorder) -> None:
    """The reply leaves the relay From the team inbox, In-Reply-To the customer's
    Message-ID, References ending with it, [Ticket#N] in the subject and the signature
    under the text; it is logged on the ticket (agent_reply, ticket_replied). The
    customer's answer to it, with References or (as Outlook may) In-Reply-To only,
    continues the same ticket."""
    before = len(sent_to(relay, CUSTOMER))
    answer = desk.reply(0, status="pending")
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert sent["recipients"] == [CUSTOMER] and sent["email"]["direction"] == "outgoing"
    assert sent["via"] == "relay" and sent["sent_folder"] is None  # no mailbox: no Sent
    mails = sent_to(relay, CUSTOMER)
    assert len(mails) == before + 1
    envelope, out = mails[-1]
    assert envelope["mail_from"] == SUPPORT
    assert getaddresses([str(out["From"])])[0][1] == SUPPORT
    assert "Agent 1" in str(out["From"])
    assert out["In-Reply-To"] == desk.first["Message-ID"]
    assert _ids(out["References"])[-1] == desk.first["Message-ID"]
    assert f"<{sent['message_id']}>" == out["Message-ID"]
    assert f"[Ticket#{desk.ticket_id}]" in str(out["Subject"])
    text = _body(out)
    assert text.startswith("Hi Carol,\n\nwe are on it.\n\n-- \nAcme Support\nAgent 1\n")
    assert "> our printer is on fire again." in text

    ticket = desk.ticket()
    assert sent["email"]["id"] in [e["id"] for e in ticket["emails"]]
    assert ticket["status"] == "pending"
    replies = [a for a in ticket["activity"] if a["kind"] == "agent_reply"]
    assert [(a["actor_user_id"], a["email_id"]) for a in replies] == [
        (desk.agents[0]["id"], sent["email"]["id"])]

    answer_mail = message(sender=f"Carol Customer <{CUSTOMER}>", to=SUPPORT,
                          subject=f"Re: {out['Subject']}", message_id=make_msgid(),
                          body="Thanks, it is out now.")
    answer_mail["In-Reply-To"] = out["Message-ID"]
    answer_mail["References"] = f"{out['References']} {out['Message-ID']}"
    continued = desk.send(answer_mail)
    outlook = message(sender=CUSTOMER, to=SUPPORT, subject="RE: Printer on fire",
                      message_id=make_msgid(), body="One more thing.")
    outlook["In-Reply-To"] = out["Message-ID"]
    again = desk.send(outlook)
    ticket = desk.ticket()
    assert {continued, again} <= {e["id"] for e in ticket["emails"]}
    assert ticket["status"] == "open"  # the customer answered
    with desk.api() as admin:
        tickets = admin.get("/api/v1/tickets",
                            params={"team_inbox_id": desk.inbox["id"]}).json()["items"]
        events = admin.get("/api/v1/events").json()["items"]
    assert [t["id"] for t in tickets] == [desk.ticket_id]
    assert any(e["type"] == "ticket_replied" and e["email_id"] == sent["email"]["id"]
               and e["detail"]["by"] == "agent" for e in events)


def test_a_forward_goes_to_its_recipient_and_is_logged_on_the_ticket(
        desk: Desk, relay: SmtpRecorder) -> None:
    """A forward needs recipients; it carries the customer's latest message and its
    files, and is logged on the ticket."""
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    more = message(sender=f"Carol Customer <{CUSTOMER}>", to=SUPPORT,
                   subject="Re: Printer on fire", message_id=make_msgid(),
                   body="Here is a photo of it.")
    more["In-Reply-To"] = desk.first["Message-ID"]
    more.add_attachment(photo, maintype="image", subtype="png", filename="fire.png")
    desk.send(more)
    with desk.api(1) as api:
        path = f"/api/v1/tickets/{desk.ticket_id}/replies"
        assert api.post(path, json={"text": "FYI", "forward": True}).status_code == 422
        done = api.post(path, json={"text": "Can you look at this?", "forward": True,
                                    "to": ["vendor@printers.example"]})
    assert done.status_code == 201, done.text
    [(_, out)] = sent_to(relay, "vendor@printers.example")[-1:]
    assert str(out["Subject"]).startswith(f"[Ticket#{desk.ticket_id}] Fwd: ")
    assert out["In-Reply-To"] is None
    assert "---------- Forwarded message ----------" in _body(out)
    assert "Here is a photo of it." in _body(out)
    [attached] = list(out.iter_attachments())
    assert attached.get_filename() == "fire.png"
    assert attached.get_content_type() == "image/png" and attached.get_content() == photo
    assert done.json()["email"]["id"] in [e["id"] for e in desk.ticket()["emails"]]


def test_a_subject_edited_with_line_breaks_cannot_inject_headers(
        desk: Desk, relay: SmtpRecorder) -> None:
    """A ticket subject changed through the API to hold a line break and a header goes
    out as one line of subject; no header is added."""
    with desk.api(0) as api:
        changed = api.patch(f"/api/v1/tickets/{desk.ticket_id}",
                            json={"subject": "Printer\r\nBcc: thief@evil.example"})
        assert changed.status_code == 200, changed.text
    assert desk.reply(0).status_code == 201
    envelope, out = sent_to(relay, CUSTOMER)[-1]
    assert out["Bcc"] is None and envelope["rcpt_tos"] == [CUSTOMER]
    assert str(out["Subject"]) == f"[Ticket#{desk.ticket_id}] Re: Printer Bcc: thief@evil.example"


def test_a_note_is_never_sent_and_tells_whom_it_mentions(
        desk: Desk, relay: SmtpRecorder) -> None:
    """A note is stored on the ticket, sent to nobody; the agent it mentions (by
    @address or id) gets a ticket_mentioned event, the author none; mentioning someone
    outside the inbox is a 422."""
    count = len(relay.messages())
    path = f"/api/v1/tickets/{desk.ticket_id}/notes"
    with desk.api(0) as api:
        made = api.post(path, json={
            "text": "@agent2@ourco.example can you call them? @agent1@ourco.example"})
        assert made.status_code == 201, made.text
        assert made.json()["mentions"] == [desk.agents[1]["id"], desk.agents[0]["id"]]
        outside = api.post(path, json={"text": "@sales@ourco.example look"})
        assert outside.status_code == 422 and "not a member" in outside.text
        by_id = api.post(path, json={"text": "fyi", "mentions": [desk.outsider["id"]]})
        assert by_id.status_code == 422
        listed = api.get(path).json()["items"]
        own_events = api.get("/api/v1/events").json()["items"]
    assert [n["text"] for n in listed] == [made.json()["text"]]
    assert len(relay.messages()) == count
    with desk.api(1) as api:
        events = api.get("/api/v1/events").json()["items"]
    mentioned = [e for e in events if e["type"] == "ticket_mentioned"]
    assert [e["detail"]["ticket_id"] for e in mentioned] == [desk.ticket_id]
    assert mentioned[0]["detail"]["note_id"] == made.json()["id"]
    assert not [e for e in own_events if e["type"] == "ticket_mentioned"]
    kinds = [a["kind"] for a in desk.ticket()["activity"]]
    assert kinds.count("note") == 1


def test_presence_shows_who_else_is_there_and_a_crossing_reply_is_a_409(
        desk: Desk, relay: SmtpRecorder) -> None:
    """Agent 1 opens the ticket, agent 2 starts replying: each sees the other. Agent 2's
    reply goes out; agent 1's, started on the view before it, is a 409 naming it, and
    goes out with force. A version named in the request counts the same way."""
    path = f"/api/v1/tickets/{desk.ticket_id}/presence"
    with desk.api(0) as one, desk.api(1) as two:
        viewing = one.post(path, json={"state": "viewing"})
        assert viewing.status_code == 200, viewing.text
        loaded = viewing.json()["seen_activity_id"]
        writing = two.post(path, json={"state": "replying"}).json()
        assert [(o["user_id"], o["state"]) for o in writing["others"]] == [
            (desk.agents[0]["id"], "viewing")]
        seen = one.get(path).json()
        assert [(o["user_id"], o["state"]) for o in seen["others"]] == [
            (desk.agents[1]["id"], "replying")]
        assert seen["expires_in"] == 30
    first = desk.reply(1)
    assert first.status_code == 201, first.text
    assert [o["user_id"] for o in first.json()["others"]] == [desk.agents[0]["id"]]
    count = len(relay.messages())
    crossed = desk.reply(0)
    assert crossed.status_code == 409, crossed.text
    body = crossed.json()
    assert body["error"]["code"] == "reply_collision"
    assert [c["email_id"] for c in body["crossed"]] == [first.json()["email"]["id"]]
    assert len(relay.messages()) == count  # nothing went out
    stale = desk.reply(0, seen_activity_id=loaded, force=False)
    assert stale.status_code == 409
    forced = desk.reply(0, force=True)
    assert forced.status_code == 201, forced.text
    # Having replied, agent 1's view includes both replies: no collision now.
    assert desk.reply(0, text="One more detail.").status_code == 201
    with desk.api(1) as two:
        assert two.post(path, json={"state": "left"}).status_code == 200
    with desk.api(0) as one:
        assert one.get(path).json()["others"] == []


def test_canned_responses_are_kept_per_inbox_and_filled_in_safely(
        server: Server, relay: SmtpRecorder) -> None:
    """Members keep an inbox's canned responses; a placeholder that does not exist, or
    a name taken, is a 422. Filled in for a ticket, values are text: a customer named
    like a placeholder stays that name, never expanded; a fallback fills an empty
    value. A reply can send one as it is."""
    desk = _desk(server, customer_name="{{agent.email}}")
    base = f"/api/v1/team-inboxes/{desk.inbox['id']}/canned-responses"
    with desk.api(0) as api:
        made = api.post(base, json={
            "name": "Thanks", "body": "Hi {{contact.first_name}} {{contact.last_name|"
                                      "(no surname)}} of {{company.name}}, {{inbox.name}} "
                                      "has ticket #{{ticket.id}}. {{agent.first_name}}"})
        assert made.status_code == 201, made.text
        canned = made.json()
        typo = api.post(base, json={"name": "Typo", "body": "Hi {{contact.frist_name}}"})
        assert typo.status_code == 422 and "contact.frist_name" in typo.text
        taken = api.post(base, json={"name": "Thanks", "body": "again"})
        assert taken.status_code == 422
        assert [c["name"] for c in api.get(base).json()["items"]] == ["Thanks"]
        renamed = api.patch(f"{base}/{canned['id']}", json={"name": "Thank you"})
        assert renamed.status_code == 200 and renamed.json()["body"] == canned["body"]
        filled = api.get(f"/api/v1/tickets/{desk.ticket_id}/canned-responses/{canned['id']}")
        assert filled.status_code == 200, filled.text
    text = filled.json()["text"]
    assert text == (f"Hi {{{{agent.email}}}} (no surname) of Customer, Support has ticket "
                    f"#{desk.ticket_id}. Agent")
    assert "agent1@ourco.example" not in text
    sent = desk.reply(0, text="", canned_response_id=canned["id"])
    assert sent.status_code == 201, sent.text
    _, out = sent_to(relay, CUSTOMER)[-1]
    assert _body(out).startswith(text)
    assert desk.reply(0, canned_response_id=canned["id"]).status_code == 422  # and text
    with desk.api(1) as api:  # the other member too
        assert api.delete(f"{base}/{canned['id']}").status_code == 200
        assert api.get(f"{base}/{canned['id']}").status_code == 404


def test_outsiders_of_the_inbox_or_portal_get_404_and_the_admin_token_403(
        desk: Desk, server: Server, relay: SmtpRecorder) -> None:
    """A colleague outside the inbox, and another portal's user and admin, get 404 for
    the ticket's replies, notes, presence and the inbox's canned responses; nothing is
    sent. The admin token is not an agent: 403 for a reply. An inbox's canned response
    is not found under another inbox of the same portal."""
    with desk.api(0) as api:
        canned = api.post(f"/api/v1/team-inboxes/{desk.inbox['id']}/canned-responses",
                          json={"name": "Hi", "body": "Hello"}).json()
    other = server.new_portal("rep@elsewhere.example")
    count = len(relay.messages())
    ticket = f"/api/v1/tickets/{desk.ticket_id}"
    inbox = f"/api/v1/team-inboxes/{desk.inbox['id']}/canned-responses"
    calls = [("post", f"{ticket}/replies", {"text": "hi", "force": True}),
             ("post", f"{ticket}/notes", {"text": "hi"}), ("get", f"{ticket}/notes", None),
             ("post", f"{ticket}/presence", {"state": "viewing"}),
             ("get", f"{ticket}/presence", None),
             ("get", f"{ticket}/canned-responses/{canned['id']}", None),
             ("get", inbox, None), ("post", inbox, {"name": "X", "body": "y"}),
             ("patch", f"{inbox}/{canned['id']}", {"body": "z"}),
             ("delete", f"{inbox}/{canned['id']}", None)]
    for token in (desk.outsider["api_token"], other.user_token, other.admin_token):
        with server.api(token) as api:
            for method, path, body in calls:
                if token == other.admin_token and "/tickets/" in path:
                    continue  # the admin token is refused as not an agent first: below
                answer = api.request(method, path, json=body)
                assert answer.status_code == 404, (method, path, answer.text)
    with server.api(other.admin_token) as api:
        assert api.post(f"{ticket}/replies", json={"text": "hi"}).status_code in (403, 404)
    with desk.api() as admin:
        refused = admin.post(f"{ticket}/replies", json={"text": "hi"})
        assert refused.status_code == 403 and "agent" in refused.text
        second = admin.post("/api/v1/team-inboxes", json={
            "name": "Billing", "members": [{"user_id": desk.agents[0]["id"]}]}).json()
    with desk.api(0) as api:
        assert api.get(f"/api/v1/team-inboxes/{second['id']}/canned-responses/"
                       f"{canned['id']}").status_code == 404
    assert len(relay.messages()) == count
    assert [a["kind"] for a in desk.ticket()["activity"]].count("note") == 0


def test_a_reply_the_relay_refuses_is_a_502_and_not_logged(desk: Desk) -> None:
    """The relay refusing the recipient (550): 502 smtp_relay_failed, and the ticket
    has no new email nor reply activity."""
    emails = len(desk.ticket()["emails"])
    refused = desk.reply(0, to=["nobody@refused.example"])
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "smtp_relay_failed"
    ticket = desk.ticket()
    assert len(ticket["emails"]) == emails
    assert "agent_reply" not in [a["kind"] for a in ticket["activity"]]


def test_without_a_relay_a_reply_is_a_409_and_not_logged(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server that sends no mail (no --smtp-relay) answers a reply 409
    smtp_relay_not_configured; nothing is logged; notes still work."""
    alone = Server(tmp_path_factory.mktemp("no-relay")).start()
    try:
        desk = _desk(alone)
        answer = desk.reply(0)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "smtp_relay_not_configured"
        assert len(desk.ticket()["emails"]) == 1
        with desk.api(0) as api:
            assert api.post(f"/api/v1/tickets/{desk.ticket_id}/notes",
                            json={"text": "no mail from here"}).status_code == 201
    finally:
        alone.stop()
