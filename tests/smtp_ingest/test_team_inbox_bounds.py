"""A team inbox's last gaps through the SMTP port (docs/tickets.md, "Mail in"): a
personal copy logged first does not swallow the ticket, the SMTP answer names no id of
mail the sender did not write, and the abuse bounds (per sender, inbox-wide, the
ingest log's growth, the sender table's pruning)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.tickets import SUPPORT, Desk, customer_mail, make_desk

CAP = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("team-bounds"),
                     extra_env={"INBOXLOG_TEAM_INBOX_HOURLY_TICKETS": str(CAP)}).start()
    yield running
    running.stop()


@pytest.fixture
def desk(server: Server) -> Desk:
    return make_desk(server)


def _ingest_log(desk: Desk, sender: str) -> list[dict[str, object]]:
    with desk.api() as api:
        response = api.get("/api/v1/ingest-log", params={"limit": 200})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e.get("sender") == sender]


def _personal_thread(desk: Desk, customer: str) -> EmailMessage:
    """The salesperson (a colleague outside the inbox) wrote ``customer``, BCC-logged."""
    sales = desk.outsider["email"]
    first = message(sender=sales, to=customer, subject="Our offer", message_id=make_msgid())
    logged_id(deliver(desk.server, first, desk.account.bcc_address, mail_from=sales))
    return first


def _answer(desk: Desk, customer: str) -> tuple[EmailMessage, int]:
    """The customer answers the salesperson's thread to support@, Cc the salesperson,
    whose mailbox redirects it to their logging address first (logged personally)."""
    first = _personal_thread(desk, customer)
    answer = message(sender=f"Customer <{customer}>", to=SUPPORT, subject="Printer on fire",
                     message_id=make_msgid(), body="Hello,\n\nour printer is on fire.")
    answer["Cc"] = desk.outsider["email"]
    answer["In-Reply-To"] = answer["References"] = first["Message-ID"]
    personal = logged_id(deliver(desk.server, answer, desk.account.bcc_address,
                                 mail_from=desk.outsider["email"]))
    return answer, personal


def test_a_personal_copy_logged_first_still_opens_the_ticket(desk: Desk) -> None:
    """The customer writes support@ with the salesperson in Cc, whose copy is logged
    first (their BCC address): the support@ copy opens a ticket on that same email (one
    email per Message-ID), which the non-member salesperson still sees as before; the
    customer's retry is a duplicate naming the same id, a stranger reusing the
    Message-ID gets no id at all."""
    sales = desk.outsider
    original, personal = _answer(desk, "carla@client.example")
    shared = logged_id(desk.send(original))
    assert shared == personal
    ticket = desk.ticket_of_email(personal)
    assert ticket["team_inbox_id"] == desk.inbox["id"] and ticket["status"] == "open"
    assert next(a["kind"] for a in ticket["activity"]) == "created"
    assert ticket["assignee_user_id"] in {a["id"] for a in desk.agents}
    with desk.api(sales["api_token"]) as api:  # the salesperson's view: as before
        seen = api.get(f"/api/v1/emails/{personal}")
        assert seen.status_code == 200, seen.text
        assert api.get(f"/api/v1/tickets/{ticket['id']}").status_code == 404
    with desk.api() as api:
        [email] = api.get("/api/v1/emails",
                          params={"message_id": original["Message-ID"]}).json()["items"]
    assert "team_inbox" in email["sources"]
    # The customer's MTA retrying: the same id, no second ticket.
    assert logged_id(desk.send(original)) == personal
    # Someone else reusing that Message-ID learns no id.
    forged = message(sender="mallory@evil.example", to=SUPPORT, subject="hi",
                     message_id=original["Message-ID"])
    code, text = desk.send(forged)
    assert (code, text) == (250, "2.0.0 not logged: a message with this Message-ID is "
                                 "already logged")
    with desk.api() as api:
        tickets = api.get("/api/v1/tickets",
                          params={"team_inbox_id": desk.inbox["id"]}).json()["items"]
    assert [t["id"] for t in tickets] == [ticket["id"]]


def test_a_reply_to_a_shared_ticket_continues_it(desk: Desk) -> None:
    """The customer's next message on the personally logged thread, to support@,
    continues the ticket opened on the shared email."""
    original, personal = _answer(desk, "dana@client.example")
    logged_id(desk.send(original))
    ticket_id = desk.ticket_of_email(personal)["id"]
    reply = customer_mail("dana@client.example", "Re: Printer on fire")
    reply["In-Reply-To"] = reply["References"] = original["Message-ID"]
    later = logged_id(desk.send(reply))
    assert later in [e["id"] for e in desk.ticket(ticket_id)["emails"]]


def test_refusals_past_the_sender_allowance_log_once(server: Server) -> None:
    """Past sender_hourly_limit every message is `250 not logged`, and only the first
    refusal of the hour leaves an ingest-log entry."""
    desk = make_desk(server, sender_hourly_limit=1)
    logged_id(desk.send(customer_mail("pat@client.example", "Question 0")))
    for n in range(1, 5):
        code, text = desk.send(customer_mail("pat@client.example", f"Question {n}"))
        assert code == 250 and "not logged" in text and "in an hour" in text
    entries = _ingest_log(desk, "pat@client.example")
    assert [e["reason_code"] for e in entries] == ["rate_limited"], entries


def test_the_inbox_wide_cap_stops_new_tickets_not_replies(server: Server) -> None:
    """Senders rotating addresses open at most CAP tickets an hour; past it new threads
    are `250 not logged` (one ingest-log entry an hour), replies to a ticket still land;
    another inbox has its own cap."""
    desk = make_desk(server)
    first = customer_mail("r0@rotating.example", "Spam 0")
    ticket_id = desk.ticket_of_email(logged_id(desk.send(first)))["id"]
    for n in range(1, CAP):
        logged_id(desk.send(customer_mail(f"r{n}@rotating.example", f"Spam {n}")))
    for n in range(CAP, CAP + 3):
        code, text = desk.send(customer_mail(f"r{n}@rotating.example", f"Spam {n}"))
        assert code == 250 and "not logged" in text and "tickets in the last hour" in text
    with desk.api() as api:
        entries = [e for e in api.get("/api/v1/ingest-log", params={"limit": 200})
                   .json()["items"] if "tickets in the last hour" in (e.get("reason") or "")]
    assert len(entries) == 1, entries
    reply = customer_mail("r0@rotating.example", "Re: Spam 0")
    reply["In-Reply-To"] = first["Message-ID"]
    assert logged_id(desk.send(reply)) in [e["id"] for e in desk.ticket(ticket_id)["emails"]]
    other = make_desk(server)
    logged_id(other.send(customer_mail("r9@rotating.example", "Fresh")))


def test_old_sender_rows_are_pruned(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A sender row whose hour and acknowledgement interval are over is deleted when a
    new sender writes (the table does not keep every address that ever wrote)."""
    running = Server(tmp_path_factory.mktemp("team-prune")).start()
    try:
        desk = make_desk(running)
        logged_id(desk.send(customer_mail("old@client.example")))
        old = (datetime.now(UTC) - timedelta(hours=5)).replace(tzinfo=None).isoformat(" ")
        with sqlite3.connect(running.data_dir / "inboxlog.db") as db:
            db.execute("UPDATE team_inbox_senders SET window_start = ?", (old,))
        running.stop()  # a fresh process: its first new sender prunes
        running.start()
        logged_id(desk.send(customer_mail("new@client.example")))
        with sqlite3.connect(running.data_dir / "inboxlog.db") as db:
            rows = sorted(r[0] for r in db.execute("SELECT address FROM team_inbox_senders"))
        assert rows == ["new@client.example"]
    finally:
        running.stop()


def test_another_portals_copy_is_another_email(desk: Desk, server: Server) -> None:
    """The same message logged personally in another portal changes nothing here: the
    team inbox logs its own email and ticket, and neither portal sees the other's."""
    other = make_desk(server)
    original, theirs = _answer(other, "erin@client.example")
    ours = logged_id(desk.send(original))
    assert ours != theirs
    assert desk.ticket_of_email(ours)["team_inbox_id"] == desk.inbox["id"]
    with desk.api() as api:
        assert api.get(f"/api/v1/emails/{theirs}").status_code == 404
    with other.api() as api:
        assert api.get(f"/api/v1/emails/{ours}").status_code == 404
        assert api.get("/api/v1/tickets").json()["items"] == []
