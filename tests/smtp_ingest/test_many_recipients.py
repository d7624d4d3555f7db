"""An email to thousands of people: it is logged with all of them, creates at most
MAX_NEW_CONTACTS contacts, and holds no other tenant's mail meanwhile."""

from __future__ import annotations

import threading
import time
from email.utils import make_msgid
from typing import Any

import httpx

from core.contacts import MAX_NEW_CONTACTS, ContactStep, contact_steps
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

# What 6,000 addresses took before contacts were capped and made in bulk: 11.5 s of every
# tenant's SMTP on this machine. The bound is far above what the capped run takes (a
# fraction of a second) so that a loaded CI cannot fail it, and far below the old stall.
PROMPT = 4.0


def test_only_the_first_unknown_people_become_contacts() -> None:
    """Past ``max_new`` new contacts the unknown addresses are skipped; known ones are
    all kept, wherever they are."""
    people = {"a@x.example": "A", "k@x.example": "", "b@x.example": "B", "c@x.example": "C",
              "j@x.example": "J"}
    known = {"k@x.example": "Kay", "j@x.example": ""}
    assert contact_steps(people, known, create=True, max_new=1) == [
        ContactStep("a@x.example", True, "A"),
        ContactStep("k@x.example", False, None),
        ContactStep("j@x.example", False, "J"),
    ]


def _raw(sender: str, to: list[str], subject: str) -> bytes:
    # Built by hand: the email package folds a 6,000-address header slowly.
    return (f"From: {sender}\r\nTo: " + ",\r\n ".join(to)
            + f"\r\nSubject: {subject}\r\nMessage-ID: {make_msgid()}\r\n"
            "Date: Mon, 16 Nov 2026 09:30:00 +0100\r\n\r\nHello all.\r\n").encode()


def _contacts(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = api.get("/api/v1/contacts", params=params).json()
        items += page["items"]
        if page["cursor"] is None:
            return items
        params["after"] = page["cursor"]


def test_thousands_of_recipients_create_at_most_the_cap(server: Server) -> None:
    """6,000 To addresses BCC'd to portal A: 250 and logged with every address, the
    first MAX_NEW_CONTACTS made contacts (with their companies) and linked; portal B's
    mail sent meanwhile is answered promptly."""
    a = server.new_portal("rep@a-tenant.example", name="A")
    b = server.new_portal("rep@b-tenant.example", name="B")
    to = [f"p{i}@d{i % 700}.example" for i in range(6000)]
    reply: list[tuple[int, str]] = []
    big = threading.Thread(target=lambda: reply.append(
        deliver(server, _raw(a.user_email, to, "Everyone"), a.bcc_address)))
    slowest = 0.0
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        big.start()
        sent = 0
        while big.is_alive() or sent == 0:
            start = time.monotonic()
            logged_id(deliver(server, message(sender=b.user_email, to="cust@cust.example",
                                              message_id=make_msgid()),
                              b.bcc_address, smtp=smtp))
            slowest = max(slowest, time.monotonic() - start)
            sent += 1
        big.join()
    email_id = logged_id(reply[0])
    assert slowest < PROMPT, f"portal B waited {slowest:.1f} s"

    with server.api(a.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
        contacts = _contacts(api)
        company = api.get(f"/api/v1/companies/{contacts[1]['company_id']}").json()
    assert len(email["to"]) == 6000
    assert [c["email"] for c in contacts] == to[:MAX_NEW_CONTACTS]
    assert sorted(email["contact_ids"]) == sorted(c["id"] for c in contacts)
    assert (company["domain"], company["name"]) == ("d1.example", "D1")
    with server.api(b.user_token) as api:
        assert [c["email"] for c in _contacts(api)] == ["cust@cust.example"]


def _log(server: Server, account: PortalAccount, to: list[str]) -> dict[str, Any]:
    email_id = logged_id(deliver(server, _raw(account.user_email, to, "More"),
                                 account.bcc_address))
    with server.api(account.user_token) as api:
        email: dict[str, Any] = api.get(f"/api/v1/emails/{email_id}").json()
    return email


def test_known_contacts_are_all_linked_past_the_cap(server: Server) -> None:
    """Contacts made by earlier emails are linked however many there are; the cap only
    limits the new ones."""
    account = server.new_portal("rep@known.example", name="Known")
    known = [f"k{i}@known-co.example" for i in range(2 * MAX_NEW_CONTACTS)]
    _log(server, account, known[:MAX_NEW_CONTACTS])
    _log(server, account, known[MAX_NEW_CONTACTS:])
    fresh = [f"n{i}@new-co.example" for i in range(2 * MAX_NEW_CONTACTS)]
    email = _log(server, account, [*fresh, *known])
    assert len(email["contact_ids"]) == 3 * MAX_NEW_CONTACTS
    with server.api(account.user_token) as api:
        emails = {c["email"] for c in _contacts(api)}
    assert emails == {*known, *fresh[:MAX_NEW_CONTACTS]}
