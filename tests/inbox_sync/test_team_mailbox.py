"""A team inbox's own connected mailbox end to end (docs/tickets.md, "A connected
mailbox"): the admin connects a real Dovecot mailbox to the team inbox; a customer's
message that lands in it is synced into a routed ticket; the agent's reply goes out
through the mailbox's SMTP server (the test SMTP server) with its copy in Sent, which
the next sync recognises; the customer's replies, with and without References, continue
the ticket; the same mail forwarded as well is the same email; an out-of-office does
not reopen it; only members see the mailbox, only the admin connects it, and another
portal sees nothing."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from tests.support.dovecot import SENT
from tests.support.mail import deliver, message
from tests.support.team_mailbox import TeamMailbox
from tests.support.tickets import reply_to

CUSTOMER = "carla@customer.example"


def test_only_the_admin_connects_and_only_members_see_it(team: TeamMailbox) -> None:
    """A colleague outside the inbox and another portal's admin get 404s, a member a
    403 for connecting; the admin connects; members then read its status, others not."""
    other = team.server.new_portal("else@elsewhere.example")
    with team.api("outsider") as api:
        assert api.post("/api/v1/inboxes", json=team.body()).status_code == 404
    with team.server.api(other.admin_token) as api:
        assert api.post("/api/v1/inboxes", json=team.body()).status_code == 404
    with team.api("0") as api:
        refused = api.post("/api/v1/inboxes", json=team.body())
        assert refused.status_code == 403, refused.text
    with team.api() as api:
        wrong = api.post("/api/v1/inboxes", json={**team.body(), "password": "nope"})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "auth_rejected"
    inbox = team.connect()
    assert inbox["team_inbox_id"] == team.desk.inbox["id"] and inbox["user_id"] is None
    assert inbox["first_sync_days"] == 0
    with team.api("1") as api:
        assert api.get(f"/api/v1/inboxes/{team.inbox_id}").json()["address"] == team.address
        shown = api.get(f"/api/v1/team-inboxes/{team.desk.inbox['id']}").json()
        assert shown["mailbox"]["id"] == team.inbox_id
        assert shown["mailbox"]["status"] == "connected"
        assert api.get("/api/v1/inboxes").json()["items"] == []  # not the agent's own
    for client in (team.api("outsider"), team.server.api(other.admin_token)):
        with client as api:
            assert api.get(f"/api/v1/inboxes/{team.inbox_id}").status_code == 404
            assert api.post(f"/api/v1/inboxes/{team.inbox_id}/sync").status_code == 404
            assert api.post(f"/api/v1/inboxes/{team.inbox_id}/disconnect").status_code == 404
    with team.api("0") as api:  # a member does not disconnect it either
        assert api.post(f"/api/v1/inboxes/{team.inbox_id}/disconnect").status_code == 403
    with team.api() as api:
        gone = api.post(f"/api/v1/inboxes/{team.inbox_id}/disconnect")
    assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
    with team.api("1") as api:
        shown = api.get(f"/api/v1/team-inboxes/{team.desk.inbox['id']}").json()
    assert shown["mailbox"]["status_code"] == "disconnected_by_user"


def test_mail_in_the_mailbox_becomes_a_ticket_and_replies_go_through_it(
        team: TeamMailbox) -> None:
    """Customer mail -> sync -> a routed ticket; the agent's reply goes out through the
    mailbox's SMTP with a copy in Sent that the next sync recognises; the customer's
    replies with and without References continue the ticket; an out-of-office on the
    closed ticket neither reopens it nor opens another."""
    team.connect()
    first = message(sender=f"Carla <{CUSTOMER}>", to=team.address, subject="Printer on fire",
                    message_id=make_msgid(domain="customer.example"),
                    body="Hello,\n\nour printer is on fire again.\n\nCarla")
    ticket = team.first_ticket(first)
    agent_ids = [a["id"] for a in team.desk.agents]
    assert ticket["assignee_user_id"] in agent_ids and ticket["status"] == "open"
    with team.api() as api:
        [email] = api.get("/api/v1/emails",
                          params={"message_id": first["Message-ID"]}).json()["items"]
    assert sorted(email["sources"]) == ["sync", "team_inbox"]
    # Forwarded to the team inbox's address as well (a mailbox and forwarding both):
    # the same email, the same ticket.
    code, _ = deliver(team.server, first, team.desk.inbox["forwarding_address"],
                      mail_from=CUSTOMER)
    assert code == 250
    with team.api() as api:
        again = api.get("/api/v1/emails", params={"message_id": first["Message-ID"]})
    assert [e["id"] for e in again.json()["items"]] == [email["id"]]
    assert [t["id"] for t in team.tickets()] == [ticket["id"]]
    agent = str(agent_ids.index(ticket["assignee_user_id"]))

    before = len(team.recorder.messages())
    with team.api(agent) as api:
        sent = api.post(f"/api/v1/tickets/{ticket['id']}/replies",
                        json={"text": "Hi Carla,\n\nwe are on it.", "status": "pending"})
    assert sent.status_code == 201, sent.text
    reply_id = sent.json()["message_id"]
    assert sent.json()["via"] == "mailbox" and sent.json()["sent_folder"] == SENT
    assert sent.json()["sent_copy_error"] is None
    received = [(env, raw) for env, raw in team.recorder.messages()[before:]
                if reply_id.encode() in raw]
    assert len(received) == 1
    envelope, raw = received[0]
    assert envelope["mail_from"] == team.address and envelope["rcpt_tos"] == [CUSTOMER]
    assert first["Message-ID"].encode() in raw  # In-Reply-To: the customer's message
    with team.imap() as client:
        client.select_folder(SENT, readonly=True)
        [copy_uid] = client.search(["HEADER", "Message-ID", reply_id])
    team.synced(lambda: team.checkpoint("sent") >= copy_uid)  # the sync went past it
    with team.api() as api:
        assert len(api.get("/api/v1/emails", params={"message_id": reply_id}).json()["items"]) == 1
    assert [t["id"] for t in team.tickets()] == [ticket["id"]]

    ours = EmailMessage()
    ours["Message-ID"], ours["Subject"] = f"<{reply_id}>", sent.json()["email"]["subject"]
    answer = reply_to(ours, CUSTOMER)  # In-Reply-To and References
    answer.replace_header("To", team.address)
    team.arrives(answer)
    bare = reply_to(ours, CUSTOMER, references=False)  # In-Reply-To only
    bare.replace_header("To", team.address)
    team.arrives(bare)
    team.synced(lambda: len(team.desk.ticket(ticket["id"])["emails"]) == 4)
    [reopened] = team.tickets()
    assert reopened["id"] == ticket["id"] and reopened["status"] == "open"  # pending -> open
    full = team.desk.ticket(ticket["id"])
    ids = {e["message_id"] for e in full["emails"]}
    assert {answer["Message-ID"].strip("<>"), bare["Message-ID"].strip("<>"), reply_id} <= ids

    with team.api(agent) as api:
        assert api.post(f"/api/v1/tickets/{ticket['id']}/close").status_code == 200
    away = reply_to(ours, CUSTOMER, subject="Out of office: Re: Printer on fire")
    away.replace_header("To", team.address)
    away["Auto-Submitted"] = "auto-replied"
    team.arrives(away)
    team.synced(lambda: len(team.desk.ticket(ticket["id"])["emails"]) == 5)
    [still] = team.tickets()
    assert still["id"] == ticket["id"] and still["status"] == "closed"


def _reply_to_a_new_ticket(team: TeamMailbox, customer: str,
                           subject: str) -> tuple[dict[str, Any], httpx.Response]:
    """The mailbox connected, ``customer``'s mail opens a ticket; agent 0 replies to it
    (sent anyway). The ticket and the answer."""
    team.connect()
    ticket = team.first_ticket(message(
        sender=customer, to=team.address, subject=subject,
        message_id=make_msgid(domain=customer.split("@")[1])))
    with team.api("0") as api:
        return ticket, api.post(f"/api/v1/tickets/{ticket['id']}/replies",
                                json={"text": "Hi there", "force": True})


def _nothing_sent(team: TeamMailbox, ticket: dict[str, Any]) -> None:
    """Nothing logged on the ticket but the customer's mail, no copy in Sent."""
    assert len(team.desk.ticket(ticket["id"])["emails"]) == 1
    with team.imap() as client:
        assert client.select_folder(SENT, readonly=True)[b"EXISTS"] == 0


def test_a_reply_the_mailbox_server_refuses_is_not_logged(team: TeamMailbox) -> None:
    """The mailbox's SMTP server refusing the customer: 502 with its code and reply,
    nothing logged on the ticket, no copy in Sent."""
    ticket, refused = _reply_to_a_new_ticket(team, "ghost@refused.example", "Hello?")
    assert refused.status_code == 502, refused.text
    error = refused.json()["error"]
    assert error["code"] == "send_rejected" and "550" in error["message"]
    _nothing_sent(team, ticket)
    # The team inbox's address changed since: the mailbox's own stays no customer.
    with team.api() as api:
        assert api.patch(f"/api/v1/team-inboxes/{team.desk.inbox['id']}",
                         json={"address": "help@ourco.example"}).status_code == 200
    team.arrives(message(sender=CUSTOMER, to=team.address, subject="Other matter",
                         message_id=make_msgid(domain="customer.example")))
    team.synced(lambda: len(team.tickets()) == 2)
    with team.api() as api:
        assert api.get("/api/v1/contacts", params={"email": team.address}).json()["items"] == []


def test_a_reply_the_mailbox_server_throttles_is_a_429(team: TeamMailbox) -> None:
    """The mailbox's SMTP server throttling (421): 429 throttled with Retry-After, as a
    CRM send answers; nothing logged, no copy in Sent."""
    ticket, throttled = _reply_to_a_new_ticket(team, "ann@throttled.example", "Slow")
    assert throttled.status_code == 429, throttled.text
    assert throttled.json()["error"]["code"] == "throttled"
    assert throttled.headers["retry-after"] == "60"
    _nothing_sent(team, ticket)


def test_mail_an_agent_sends_from_the_mailbox_itself_is_logged_on_its_ticket(
        team: TeamMailbox) -> None:
    """Outlook on support@: an answer in Sent naming the ticket's thread is logged on
    the ticket as an agent reply (via mailbox), by the member its Sender names, else
    unattributed; the first response counts it. Other Sent mail (new business, a
    forged-looking token without a matching header) stays unlogged."""
    team.connect()
    first = message(sender=f"Carla <{CUSTOMER}>", to=team.address, subject="Printer on fire",
                    message_id=make_msgid(domain="customer.example"))
    ticket = team.first_ticket(first)
    agent = team.desk.agents[1]

    def sent(subject: str, sender: str | None = None, answers: bool = True) -> EmailMessage:
        mail = message(sender=f"Support <{team.address}>", to=CUSTOMER, subject=subject,
                       message_id=make_msgid(domain="ourco.example"))
        if sender:
            mail["Sender"] = sender
        if answers:
            mail["In-Reply-To"] = mail["References"] = first["Message-ID"]
        with team.imap() as client:
            client.append(SENT, mail.as_bytes(), msg_time=datetime.now(UTC))
        return mail

    by_agent = sent("Re: Printer on fire", sender=agent["email"])
    unsigned = sent("RE: Printer on fire")
    others = [sent("Our new catalogue", answers=False),
              sent(f"[Ticket#{ticket['id']}] pasted", answers=False)]
    with team.imap() as client:
        client.select_folder(SENT, readonly=True)
        top = max(client.search(["ALL"]))
    team.synced(lambda: team.checkpoint("sent") >= top)
    full = team.desk.ticket(ticket["id"])
    replies = [a for a in full["activity"] if a["kind"] == "agent_reply"]
    assert [(a["actor_user_id"], a["detail"]["via"]) for a in replies] == [
        (agent["id"], "mailbox"), (None, "mailbox")]
    logged = {e["message_id"]: e for e in full["emails"]}
    assert set(logged) == {first["Message-ID"].strip("<>"), by_agent["Message-ID"].strip("<>"),
                           unsigned["Message-ID"].strip("<>")}
    assert {logged[m.strip("<>")]["direction"] for m in (
        by_agent["Message-ID"], unsigned["Message-ID"])} == {"outgoing"}
    with team.api() as api:
        for other in others:
            assert api.get("/api/v1/emails", params={
                "message_id": other["Message-ID"]}).json()["items"] == []
        report = api.get("/api/v1/reports/first-response",
                         params={"team_inbox_id": team.desk.inbox["id"]})
    assert report.status_code == 200, report.text
    assert report.json()["tickets"] == 1 and report.json()["unanswered"] == 0
    # The customer's answer to the agent's Outlook mail continues the ticket.
    answer = reply_to(by_agent, CUSTOMER)
    answer.replace_header("To", team.address)
    team.arrives(answer)
    team.synced(lambda: len(team.desk.ticket(ticket["id"])["emails"]) == 4)
    assert [t["id"] for t in team.tickets()] == [ticket["id"]]
    team.sync()  # a second pass logs nothing twice
    assert len(team.desk.ticket(ticket["id"])["emails"]) == 4


def test_acknowledgements_go_through_the_mailbox(team: TeamMailbox) -> None:
    """With auto_acknowledge and a mailbox (and no relay on this server), the new
    ticket's acknowledgement goes out once through the mailbox's SMTP server (its
    envelope sender the mailbox, where the relay's is empty), From its address, threaded
    on the customer's message; the sync of Sent takes it for no agent reply."""
    team.connect()
    with team.api() as api:
        patched = api.patch(f"/api/v1/team-inboxes/{team.desk.inbox['id']}",
                            json={"auto_acknowledge": True})
        assert patched.status_code == 200, patched.text
    customer = f"ack-{uuid.uuid4().hex[:8]}@customer.example"
    first = message(sender=customer, to=team.address, subject="Where is my order",
                    message_id=make_msgid(domain="customer.example"))
    ticket = team.first_ticket(first)

    def acks() -> list[tuple[dict[str, Any], bytes]]:
        return [(env, raw) for env, raw in team.recorder.messages()
                if customer in env["rcpt_tos"] and b"Auto-Submitted: auto-replied" in raw]

    deadline = time.monotonic() + 20
    while not acks():
        assert time.monotonic() < deadline, "no acknowledgement through the mailbox"
        time.sleep(0.05)
    [(envelope, raw)] = acks()
    assert envelope["mail_from"] == team.address  # the mailbox's, not the relay's <>
    assert f"From: Support <{team.address}>".encode() in raw
    assert first["Message-ID"].encode() in raw and f"[Ticket#{ticket['id']}]".encode() in raw
    with team.imap() as client:  # as a provider that files what it sends would
        client.append(SENT, raw, msg_time=datetime.now(UTC))
    team.sync()
    team.sync()
    assert len(acks()) == 1
    activity = team.desk.ticket(ticket["id"])["activity"]
    assert "agent_reply" not in [a["kind"] for a in activity]
