"""The reverse of test_team_inbox_bounds.py's first case, through the SMTP and HTTP
ports on both backends: the customer's mail reaches support@ first (a ticket), then a
salesperson's personal copy of the same Message-ID (they were in Cc) is logged. One
email stays; the salesperson, no member of the inbox, sees it as their own logged mail
(not the ticket, not the inbox's other emails); members keep it on the ticket. A
colleague who only reuses the Message-ID (SMTP or one-click logging) adds nothing to
the inbox's email and sees nothing of it."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from tests.support.addresses import request_confirmation
from tests.support.mail import deliver, logged_id, message
from tests.support.tickets import SUPPORT, Desk, customer_mail, reply_to


def _admin_email(desk: Desk, email_id: int) -> dict[str, Any]:
    with desk.api() as api:
        response = api.get(f"/api/v1/emails/{email_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _personal_copy(desk: Desk, original: EmailMessage) -> tuple[int, str]:
    """The salesperson's mailbox redirects its copy to their logging address."""
    return deliver(desk.server, original, desk.account.bcc_address,
                   mail_from=desk.outsider["email"])


def test_the_salespersons_copy_after_support_is_theirs_too(desk: Desk) -> None:
    """support@ first (a ticket the salesperson in Cc cannot see), then their copy: the
    same email (the duplicate's answer names it), now on their contact's timeline and
    readable by them; the ticket and the customer's next mail to support@ stay hidden
    from them; the agents still have it on the ticket."""
    sales = desk.outsider
    original = customer_mail("fran@client.example", "Quote for 40 printers",
                             cc=[sales["email"]])
    shared = logged_id(desk.send(original))
    ticket = desk.ticket_of_email(shared)
    with desk.api(sales["api_token"]) as api:
        assert api.get(f"/api/v1/emails/{shared}").status_code == 404
    assert logged_id(_personal_copy(desk, original)) == shared
    later = logged_id(desk.send(reply_to(original, "fran@client.example")))
    assert set(_admin_email(desk, shared)["sources"]) == {"team_inbox", "rule"}  # a forwarding rule
    contact_id = _admin_email(desk, shared)["contact_ids"][0]
    with desk.api(sales["api_token"]) as api:
        seen = api.get(f"/api/v1/emails/{shared}")
        assert seen.status_code == 200, seen.text
        timeline = api.get(f"/api/v1/contacts/{contact_id}/timeline").json()["items"]
        assert [e["id"] for e in timeline] == [shared]
        assert api.get(f"/api/v1/tickets/{ticket['id']}").status_code == 404
        assert api.get(f"/api/v1/emails/{later}").status_code == 404
        thread = api.get(f"/api/v1/threads/{seen.json()['thread_id']}").json()
        assert [e["id"] for e in thread["emails"]] == [shared]
    agent = desk.ticket(ticket["id"], desk.agents[0]["api_token"])
    assert {shared, later} <= {e["id"] for e in agent["emails"]}
    # Their mailbox sending the copy again changes nothing.
    assert logged_id(_personal_copy(desk, original)) == shared
    with desk.api() as api:
        tickets = api.get("/api/v1/tickets",
                          params={"team_inbox_id": desk.inbox["id"]}).json()["items"]
    assert [t["id"] for t in tickets] == [ticket["id"]]


def test_a_copy_the_salesperson_wrote_is_theirs_too(desk: Desk) -> None:
    """The salesperson writes support@ themselves and BCCs their logging address, which
    logs after the inbox's copy: their own mail, readable by them."""
    sales = desk.outsider
    mail = message(sender=sales["email"], to=SUPPORT, subject="Customer 12 needs help",
                   message_id=customer_mail("x@client.example")["Message-ID"])
    shared = logged_id(desk.send(mail))
    assert logged_id(deliver(desk.server, mail, desk.account.bcc_address,
                             mail_from=sales["email"])) == shared
    with desk.api(sales["api_token"]) as api:
        assert api.get(f"/api/v1/emails/{shared}").status_code == 200


def test_a_copy_to_the_salespersons_alias_is_theirs_too(desk: Desk) -> None:
    """Cc'd on a confirmed alternate address of theirs: their mail as well."""
    sales, alias = desk.outsider, "fran.sales@ourco.example"
    token = request_confirmation(desk.server, sales["id"], alias)
    with desk.server.api(None) as api:
        assert api.post("/confirm-address", data={"token": token}).status_code == 200
    original = customer_mail("jo@client.example", "Quote", cc=[alias])
    shared = logged_id(desk.send(original))
    assert logged_id(_personal_copy(desk, original)) == shared
    with desk.api(sales["api_token"]) as api:
        assert api.get(f"/api/v1/emails/{shared}").status_code == 200


def test_reusing_the_message_id_over_smtp_adds_nothing(desk: Desk) -> None:
    """A colleague not named on the inbox's email sends a "copy" of its Message-ID to
    their logging address: the duplicate's answer as today, no source added, and the
    email, its ticket and its thread stay hidden from them."""
    sales = desk.outsider
    original = customer_mail("gus@client.example", "Password reset for account 7")
    shared = logged_id(desk.send(original))
    forged = message(sender="gus@client.example", to=sales["email"], subject="fwd",
                     message_id=str(original["Message-ID"]))
    assert logged_id(_personal_copy(desk, forged)) == shared
    own = message(sender=sales["email"], to="gus@client.example", subject="hi",
                  message_id=str(original["Message-ID"]))
    assert logged_id(deliver(desk.server, own, desk.account.bcc_address,
                             mail_from=sales["email"])) == shared
    assert _admin_email(desk, shared)["sources"] == ["team_inbox"]
    with desk.api(sales["api_token"]) as api:
        assert api.get(f"/api/v1/emails/{shared}").status_code == 404
        thread_id = _admin_email(desk, shared)["thread_id"]
        assert api.get(f"/api/v1/threads/{thread_id}").status_code == 404


def test_one_click_reuse_adds_nothing_before_the_404(desk: Desk) -> None:
    """One-click logging by a colleague not on the inbox's email (which came without a
    body): 404, and neither its source nor the copy's body or attachment is added."""
    sales = desk.outsider
    original = customer_mail("hal@client.example", "Contract")
    original.set_content("")
    shared = logged_id(desk.send(original))
    copy = message(sender="hal@client.example", to=sales["email"], subject="Contract",
                   message_id=str(original["Message-ID"]), body="planted text")
    copy.add_attachment(b"planted file", maintype="application", subtype="octet-stream",
                        filename="planted.bin")
    with desk.api(sales["api_token"]) as api:
        response = api.post("/api/v1/emails/log", content=copy.as_bytes(),
                            headers={"content-type": "message/rfc822"})
    assert response.status_code == 404, response.text
    email = _admin_email(desk, shared)
    assert email["sources"] == ["team_inbox"]
    assert "planted" not in email["text"] and email["attachments"] == []


def test_one_click_by_the_salesperson_in_cc_shows_their_email(desk: Desk) -> None:
    """The salesperson in Cc logging their copy with one click gets the email (200)."""
    sales = desk.outsider
    original = customer_mail("ida@client.example", "Invoice 88", cc=[sales["email"]])
    shared = logged_id(desk.send(original))
    with desk.api(sales["api_token"]) as api:
        response = api.post("/api/v1/emails/log", content=original.as_bytes(),
                            headers={"content-type": "message/rfc822"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == shared
    assert "extension" in _admin_email(desk, shared)["sources"]
