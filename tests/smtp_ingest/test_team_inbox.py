"""A team inbox through the real SMTP port and HTTP API: customers write support@, tickets
are opened, routed round-robin, continued by their replies as real clients send them,
and neither strangers, forged tokens nor auto-replies get in (docs/tickets.md)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid

import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder
from tests.support.tickets import SUPPORT, Desk, customer_mail, make_desk, reply_to


@pytest.fixture(scope="module")
def relayed(tmp_path_factory: pytest.TempPathFactory,
            relay: SmtpRecorder) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("team-inbox"),
                     extra_args=relay.serve_args()).start()
    yield running
    running.stop()


@pytest.fixture
def desk(relayed: Server) -> Desk:
    return make_desk(relayed)


def test_new_mail_opens_tickets_assigned_round_robin(desk: Desk) -> None:
    """Two customers' first messages open two tickets, one for each agent in turn."""
    first = logged_id(desk.send(customer_mail("carla@client.example")))
    second = logged_id(desk.send(customer_mail("dave@other.example", "Invoice wrong")))
    one, two = desk.ticket_of_email(first), desk.ticket_of_email(second)
    assert one["id"] != two["id"]
    assert {one["assignee_user_id"], two["assignee_user_id"]} == {
        a["id"] for a in desk.agents}
    assert one["status"] == "open" and one["subject"] == "Printer on fire"
    assert one["team_inbox_id"] == desk.inbox["id"] and one["contact_ids"]
    assert [a["kind"] for a in one["activity"]][:2] == ["created", "assigned"]
    assert one["emails"][0]["sources"] == ["team_inbox"]
    # The agent's feed has the ticket's events, the other agent's does not.
    agent = next(a for a in desk.agents if a["id"] == one["assignee_user_id"])
    with desk.api(agent["api_token"]) as api:
        events = api.get("/api/v1/events").json()["items"]
    mine = [e["type"] for e in events if e["detail"].get("ticket_id") == one["id"]]
    assert mine == ["ticket_created", "ticket_assigned"]
    assert not [e for e in events if e["detail"].get("ticket_id") == two["id"]]


def test_replies_as_clients_send_them_continue_the_ticket(desk: Desk) -> None:
    """With References, with only In-Reply-To, and an Outlook reply whose In-Reply-To
    names a copy we never saw (Thread-Index kept), all land on the one ticket."""
    original = customer_mail("carla@client.example")
    index = base64.b64encode(bytes.fromhex("01db38f1a2b3") + bytes(range(16))).decode()
    original["Thread-Index"] = index
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    with_refs = logged_id(desk.send(reply_to(original, "carla@client.example")))
    no_refs = logged_id(desk.send(reply_to(original, "Carla <CARLA@client.example>",
                                           references=False)))
    outlook = message(sender="carla@client.example", to=SUPPORT,
                      subject="RE: Printer on fire", message_id=make_msgid())
    outlook["In-Reply-To"] = "<rewritten-by-exchange@client.example>"
    outlook["Thread-Index"] = base64.b64encode(
        bytes.fromhex("01db38f1a2b3") + bytes(range(16)) + b"\x00\x01\x02\x03\x04").decode()
    via_index = logged_id(desk.send(outlook))
    ticket = desk.ticket(ticket_id)
    assert {with_refs, no_refs, via_index} <= {e["id"] for e in ticket["emails"]}
    kinds = [a["kind"] for a in ticket["activity"]]
    assert kinds.count("customer_message") == 3


def test_subject_token_from_a_contact_continues_after_in_reply_to_was_rewritten(
        desk: Desk) -> None:
    """Outlook rewrote In-Reply-To to an id inboxlog never saw and sent no References:
    the [Ticket#N] token with the ticket's own customer as sender continues it."""
    original = customer_mail("erin@client.example", "VPN down")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    reply = message(sender="erin@client.example", to=SUPPORT,
                    subject=f"RE: [Ticket#{ticket_id}] VPN down", message_id=make_msgid())
    reply["In-Reply-To"] = "<AM0PR01MB1234.eurprd01.prod.exchangelabs.com>"
    email_id = logged_id(desk.send(reply))
    assert email_id in [e["id"] for e in desk.ticket(ticket_id)["emails"]]


def test_newsletter_reply_sharing_in_reply_to_does_not_merge_strangers(desk: Desk) -> None:
    """Two strangers answering the same newsletter (one In-Reply-To) get a ticket each."""
    newsletter = f"<news-{time.time_ns()}@acme.example>"
    first = customer_mail("fay@one.example", "Re: Our November news")
    first["In-Reply-To"] = newsletter
    second = customer_mail("gus@two.example", "Re: Our November news")
    second["In-Reply-To"] = newsletter
    one = desk.ticket_of_email(logged_id(desk.send(first)))
    two = desk.ticket_of_email(logged_id(desk.send(second)))
    assert one["id"] != two["id"]
    assert set(one["contact_ids"]).isdisjoint(two["contact_ids"])


def test_forged_ticket_token_from_an_outsider_does_not_append(desk: Desk) -> None:
    """Anyone can type [Ticket#N]: from someone not on the ticket it opens a new one."""
    victim = desk.ticket_of_email(logged_id(desk.send(customer_mail("hana@client.example"))))
    forged = customer_mail("mallory@evil.example", f"Re: [Ticket#{victim['id']}] Printer")
    other = desk.ticket_of_email(logged_id(desk.send(forged)))
    assert other["id"] != victim["id"]
    assert len(desk.ticket(victim["id"])["emails"]) == 1


def test_reply_from_someone_outside_the_ticket_starts_a_new_one(desk: Desk) -> None:
    """A reply with the right headers from an address not on the ticket is not appended."""
    original = customer_mail("ida@client.example")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    stranger = desk.ticket_of_email(logged_id(desk.send(reply_to(original,
                                                                  "joe@elsewhere.example"))))
    assert stranger["id"] != ticket_id


def test_customer_reply_reopens_a_closed_ticket_and_pending_becomes_open(desk: Desk) -> None:
    """Closed -> open on a reply is a new response cycle; pending -> open too."""
    original = customer_mail("kim@client.example")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    with desk.api() as api:
        assert api.post(f"/api/v1/tickets/{ticket_id}/close").json()["status"] == "closed"
    logged_id(desk.send(reply_to(original, "kim@client.example")))
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "open" and ticket["reopened_at"] is not None
    reopen = [a for a in ticket["activity"] if a["kind"] == "status"
              and a["from_value"] == "closed" and a["to_value"] == "open"]
    assert reopen and reopen[-1]["detail"] == {"reason": "customer_reply", "cycle": 2}
    with desk.api() as api:
        response = api.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "pending"})
        assert response.json()["status"] == "pending"
    logged_id(desk.send(reply_to(original, "kim@client.example")))
    assert desk.ticket(ticket_id)["status"] == "open"


def _out_of_office(to_message: EmailMessage, sender: str) -> EmailMessage:
    oof = message(sender=sender, to=SUPPORT, subject="Automatic reply: Printer on fire",
                  message_id=make_msgid(), body="I am out of the office until Monday.")
    oof["In-Reply-To"] = to_message["Message-ID"]
    oof["Auto-Submitted"] = "auto-replied"
    oof["X-Auto-Response-Suppress"] = "All"
    return oof


def _acks(relay: SmtpRecorder, to: str) -> list[EmailMessage]:
    """The acknowledgements the relay has received for ``to``, oldest first."""
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(raw) for envelope, raw in relay.messages()
            if to in envelope["rcpt_tos"]]


def _wait_for_ack(relay: SmtpRecorder, to: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + 20
    while len(found := _acks(relay, to)) < count:
        assert time.monotonic() < deadline, f"no acknowledgement reached {to}"
        time.sleep(0.05)
    return found


def test_acknowledgement_is_auto_submitted_and_threads(relayed: Server,
                                                       relay: SmtpRecorder) -> None:
    """A new ticket is acknowledged once, marked Auto-Submitted, replying to the
    customer's message with the ticket's token; a reply to it continues the ticket."""
    desk = make_desk(relayed, ack=True)
    original = customer_mail("lea@client.example")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    [ack] = _wait_for_ack(relay, "lea@client.example")
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == original["Message-ID"]
    assert f"[Ticket#{ticket_id}]" in ack["Subject"]
    assert SUPPORT in ack["From"]
    answer = reply_to(ack, "lea@client.example")
    assert logged_id(desk.send(answer)) in [e["id"] for e in desk.ticket(ticket_id)["emails"]]


def test_out_of_office_reply_neither_reopens_nor_loops(relayed: Server,
                                                      relay: SmtpRecorder) -> None:
    """An out-of-office answer to the acknowledgement is kept on the ticket as automatic,
    does not reopen it, gets no acknowledgement; unrelated automatic mail opens none."""
    desk = make_desk(relayed, ack=True)
    original = customer_mail("max@client.example")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(original)))["id"]
    [ack] = _wait_for_ack(relay, "max@client.example")
    with desk.api() as api:
        api.post(f"/api/v1/tickets/{ticket_id}/close")
    oof = _out_of_office(ack, "max@client.example")
    logged_id(desk.send(oof))
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "closed"
    assert ticket["activity"][-1]["kind"] == "automatic"
    stray = _out_of_office(customer_mail("nobody@client.example"), "ooo@client.example")
    code, text = desk.send(stray)
    assert code == 250 and "not logged" in text
    # A person's new ticket is acknowledged after both: then none went to the others.
    desk.send(customer_mail("ola@client.example"))
    _wait_for_ack(relay, "ola@client.example")
    assert len(_acks(relay, "max@client.example")) == 1
    assert not _acks(relay, "ooo@client.example")


def test_a_sender_past_the_hourly_allowance_is_not_logged(relayed: Server) -> None:
    """The last guard against loops: past sender_hourly_limit, 250 not logged."""
    desk = make_desk(relayed, sender_hourly_limit=2)
    for n in range(2):
        logged_id(desk.send(customer_mail("pat@client.example", f"Question {n}")))
    code, text = desk.send(customer_mail("pat@client.example", "Question 3"))
    assert code == 250 and "not logged" in text and "in an hour" in text


def test_alias_address_routes_to_the_team_inbox(desk: Desk) -> None:
    """<bcc_token>+inbox-<id>@ reaches the same team inbox, from anyone."""
    msg = customer_mail("quinn@client.example")
    email_id = logged_id(deliver(desk.server, msg, desk.inbox["alias_address"],
                                 mail_from="quinn@client.example"))
    assert desk.ticket_of_email(email_id)["team_inbox_id"] == desk.inbox["id"]


def test_non_members_and_other_portals_get_404(desk: Desk, relayed: Server) -> None:
    """A user outside the inbox, and another portal's admin, see neither its tickets
    nor their emails: 404 as for what does not exist."""
    email_id = logged_id(desk.send(customer_mail("rosa@client.example")))
    ticket = desk.ticket_of_email(email_id)
    ticket_id, thread_id = ticket["id"], ticket["thread_id"]
    other = relayed.new_portal("someone@else.example")
    for token in (desk.outsider["api_token"], other.admin_token, other.user_token):
        with desk.api(token) as api:
            assert api.get(f"/api/v1/tickets/{ticket_id}").status_code == 404
            assert api.post(f"/api/v1/tickets/{ticket_id}/close").status_code == 404
            assert api.get(f"/api/v1/team-inboxes/{desk.inbox['id']}").status_code == 404
            assert api.get(f"/api/v1/emails/{email_id}").status_code == 404
            assert api.get(f"/api/v1/threads/{thread_id}").status_code == 404
            assert api.delete(f"/api/v1/emails/{email_id}").status_code == 404
            assert ticket_id not in [t["id"] for t in api.get("/api/v1/tickets").json()["items"]]
    member = desk.agents[0]["api_token"]
    with desk.api(member) as api:
        assert api.get(f"/api/v1/tickets/{ticket_id}").status_code == 200
        assert api.get(f"/api/v1/emails/{email_id}").status_code == 200
        assert api.get(f"/api/v1/threads/{thread_id}").json()["emails"][0]["id"] == email_id
