"""Explicit logging wins: what a user logs is never refused by the bulk heuristics, which
still keep it from creating contacts and still rate-limit forwarding rules."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

LIST = "Dev list <dev@lists.example>"
LIST_HEADERS = {
    "List-Id": "Development of Widgets <dev.lists.example>",
    "List-Unsubscribe": "<mailto:dev-leave@lists.example>",
    "Precedence": "list",
}


def _list_mail(sender: str, n: int, parents: list[str],
               subject: str = "[dev] Widget 2.0 release plan") -> EmailMessage:
    """Message ``n`` of a list thread, replying to ``parents[-1]`` (References: all)."""
    msg = message(sender=sender, to=LIST, subject=f"Re: {subject}" if parents else subject,
                  message_id=make_msgid(domain="lists.example"), body=f"Point {n}.",
                  date=f"Tue, 17 Nov 2026 {9 + n // 6:02d}:{n % 6 * 10:02d}:00 +0000")
    if parents:
        msg["In-Reply-To"] = parents[-1]
        msg["References"] = " ".join(parents)
    for name, value in LIST_HEADERS.items():
        msg[name] = value
    return msg


def _log(api: httpx.Client, msg: EmailMessage) -> httpx.Response:
    return api.post("/api/v1/emails/log", content=msg.as_bytes(),
                    headers={"Content-Type": "message/rfc822"})


def _contacts(api: httpx.Client, address: str) -> list[dict[str, Any]]:
    return list(api.get("/api/v1/contacts", params={"email": address}).json()["items"])


def test_one_click_logging_keeps_a_whole_list_thread(
    server: Server, account: PortalAccount
) -> None:
    """Ten list messages (List-Id, Precedence: list), seven from one sender on one day,
    logged by one click each and replies first: all logged, one thread, no contact."""
    thread: list[EmailMessage] = []
    ids: list[str] = []
    for n in range(10):
        sender = "Bob Builder <bob@widgets.example>" if n % 3 else f"dev{n}@widgets.example"
        thread.append(_list_mail(sender, n, list(ids)))
        ids.append(thread[-1]["Message-ID"])
    with server.api(account.user_token) as api:
        responses = [_log(api, msg) for msg in reversed(thread)]
        assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
        emails = [api.get(f"/api/v1/emails/{r.json()['id']}").json() for r in responses]
        assert len({e["thread_id"] for e in emails}) == 1
        assert all("automatic mail: mailing list" in e["notes"] for e in emails)
        assert all(e["sources"] == ["extension"] for e in emails)
        assert _contacts(api, "bob@widgets.example") == []  # bulk mail creates no contact
        again = _log(api, thread[4])
        assert again.status_code == 200 and again.json()["id"] == emails[5]["id"]
        listed = api.get(f"/api/v1/threads/{emails[0]['thread_id']}").json()
        assert len(listed["emails"]) == 10


def test_one_click_logging_of_automatic_mail_outside_any_thread(
    server: Server, account: PortalAccount
) -> None:
    """An auto-reply and a no-reply notification, tied to nothing, are logged on request."""
    ooo = message(sender="Vic Away <vic@away.example>", to=account.user_email,
                  subject="Automatic reply: Quarterly numbers", message_id=make_msgid())
    ooo["Auto-Submitted"] = "auto-replied"
    note = message(sender="Billing <no-reply@saas.example>", to=account.user_email,
                   subject="Your invoice", message_id=make_msgid())
    note["X-Mailer"] = "SendGrid"
    with server.api(account.user_token) as api:
        for msg in (ooo, note):
            response = _log(api, msg)
            assert response.status_code == 201, response.text
        assert _contacts(api, "vic@away.example") == []


def test_bcc_of_bulk_looking_mail_is_logged(server: Server, account: PortalAccount) -> None:
    """The user's own mail BCC'd with every bulk marker, five in one thread: all logged."""
    ids: list[str] = []
    replies = []
    for n in range(5):
        msg = message(sender=account.user_email, to="Cara <cara@client.example>",
                      subject="Newsletter" if not ids else "Re: Newsletter",
                      message_id=make_msgid(), body=f"Issue {n}.")
        if ids:
            msg["In-Reply-To"], msg["References"] = ids[-1], " ".join(ids)
        for name, value in {**LIST_HEADERS, "Precedence": "bulk",
                            "X-Mailer": "Mailchimp Mailer", "Auto-Submitted": "auto-generated",
                            "X-Auto-Response-Suppress": "All"}.items():
            msg[name] = value
        ids.append(msg["Message-ID"])
        replies.append(deliver(server, msg, account.bcc_address))
    email_ids = [logged_id(reply) for reply in replies]
    with server.api(account.user_token) as api:
        emails = [api.get(f"/api/v1/emails/{i}").json() for i in email_ids]
        assert len({e["thread_id"] for e in emails}) == 1
        assert {e["direction"] for e in emails} == {"outgoing"}
        assert len(_contacts(api, "cara@client.example")) == 1


def test_forwarded_automatic_mail_is_never_rate_limited(
    server: Server, account: PortalAccount
) -> None:
    """Five no-reply notifications of one thread, each forwarded to the logging address
    as an attachment: all logged in one thread, and the no-reply sender is no contact."""
    ids: list[str] = []
    email_ids = []
    for n in range(5):
        original = message(sender="Tracker <noreply@tracker.example>", to=account.user_email,
                           subject="Ticket 42 updated", message_id=make_msgid(),
                           body=f"Status change {n}.")
        if ids:
            original["In-Reply-To"], original["References"] = ids[-1], " ".join(ids)
        ids.append(original["Message-ID"])
        forward = EmailMessage()
        forward["From"] = account.user_email
        forward["To"] = account.bcc_address
        forward["Subject"] = "Fwd: Ticket 42 updated"
        forward["Message-ID"] = make_msgid()
        forward.set_content("For the record.")
        forward.add_attachment(original)
        email_ids.append(logged_id(deliver(server, forward, account.bcc_address)))
    with server.api(account.user_token) as api:
        emails = [api.get(f"/api/v1/emails/{i}").json() for i in email_ids]
        assert len({e["thread_id"] for e in emails}) == 1
        assert {tuple(e["sources"]) for e in emails} == {("forward",)}
        assert all("automatic mail: no-reply sender" in e["notes"] for e in emails)
        assert _contacts(api, "noreply@tracker.example") == []


def test_forwarding_rule_is_still_rate_limited_and_creates_no_contacts(
    server: Server, account: PortalAccount
) -> None:
    """A list thread the user logged by one click; a forwarding rule then brings more of
    it: three a day from one sender are logged, the rest refused; list mail tied to no
    logged thread is not stored; no contact is created."""
    root = _list_mail("Ann Lead <ann@widgets.example>", 0, [])
    with server.api(account.user_token) as api:
        assert _log(api, root).status_code == 201
    replies, parents = [], [root["Message-ID"]]
    for n in range(1, 6):
        reply = _list_mail("Bob Builder <bob@widgets.example>", n, parents)
        parents.append(reply["Message-ID"])
        replies.append(deliver(server, reply, account.bcc_address, mail_from=account.user_email))
    assert [code for code, _ in replies] == [250] * 5
    assert [text.startswith("2.0.0 logged") for _, text in replies] == [True] * 3 + [False] * 2
    assert replies[3][1] == "2.0.0 not logged: automatic mail: more than 3 a day in this thread"
    stray = _list_mail("Cleo <cleo@widgets.example>", 0, [], "[dev] Unrelated")
    code, text = deliver(server, stray, account.bcc_address, mail_from=account.user_email)
    assert (code, text) == (250, "2.0.0 not logged: automatic mail (mailing list) "
                                 "outside a logged thread")
    with server.api(account.user_token) as api:
        assert _contacts(api, "bob@widgets.example") == []
        assert _contacts(api, "ann@widgets.example") == []
        log = api.get("/api/v1/ingest-log").json()["items"]
        assert sum(e["reason_code"] == "bulk" and e["source"] == "rule" for e in log) == 3
        # The user may still log the refused ones by hand.
        skipped = _list_mail("Bob Builder <bob@widgets.example>", 9, parents)
        assert _log(api, skipped).status_code == 201
