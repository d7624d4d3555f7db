"""Threading and bulk mail through the real SMTP port, and fixing threads by hand."""

from __future__ import annotations

import base64
from email.utils import make_msgid
from typing import Any

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

# An Outlook Thread-Index: 6 bytes of FILETIME and a 16-byte conversation GUID; each
# reply appends a 5-byte block.
CONVERSATION = bytes.fromhex("01db38f1a2b3") + bytes(range(16))
ROOT_INDEX = base64.b64encode(CONVERSATION).decode()
REPLY_INDEX = base64.b64encode(CONVERSATION + b"\x00\x01\x02\x03\x04").decode()


def _get(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/emails/{email_id}")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body


def test_outlook_thread_index_threads_a_reply_without_references(
    server: Server, account: PortalAccount
) -> None:
    """With no In-Reply-To or References, Thread-Index ties an Outlook reply to its thread."""
    root = message(sender=account.user_email, to="olga@outlookco.example",
                   message_id=make_msgid())
    root["Thread-Index"] = ROOT_INDEX
    root_id = logged_id(deliver(server, root, account.bcc_address))
    reply = message(sender="olga@outlookco.example", to=account.user_email,
                    subject="RE: Quarterly numbers", message_id=make_msgid())
    reply["Thread-Index"] = REPLY_INDEX
    reply_id = logged_id(deliver(server, reply, account.bcc_address, mail_from=account.user_email))
    first, second = _get(server, account, root_id), _get(server, account, reply_id)
    assert second["thread_id"] == first["thread_id"]
    assert second["thread_reason"] == "thread_index"


def test_address_in_in_reply_to_does_not_merge_threads(
    server: Server, account: PortalAccount
) -> None:
    """Two unrelated emails whose In-Reply-To holds the contact's address stay apart."""
    ids = []
    for subject in ("Invoice 17", "Lunch on Friday?"):
        msg = message(sender=account.user_email, to="Pat <pat@addrco.example>",
                      subject=subject, message_id=make_msgid())
        msg["In-Reply-To"] = "<pat@addrco.example>"
        ids.append(logged_id(deliver(server, msg, account.bcc_address)))
    first, second = (_get(server, account, i) for i in ids)
    assert first["thread_id"] != second["thread_id"]
    assert second["thread_reason"] == "new"


def test_reply_from_a_colleague_of_the_contact_joins_and_gets_a_contact(
    server: Server, account: PortalAccount
) -> None:
    """A reply from another address at the same company joins the thread as a new contact."""
    root_id = make_msgid()
    root = logged_id(deliver(server, message(sender=account.user_email, to="ron@samecorp.example",
                                             message_id=root_id), account.bcc_address))
    reply = logged_id(deliver(server, message(
        sender="Sue <sue@samecorp.example>", to=account.user_email, cc=["ron@samecorp.example"],
        subject="Re: Quarterly numbers", message_id=make_msgid(), in_reply_to=root_id,
    ), account.bcc_address, mail_from=account.user_email))
    first, second = _get(server, account, root), _get(server, account, reply)
    assert second["thread_id"] == first["thread_id"]
    with server.api(account.user_token) as api:
        sue = api.get("/api/v1/contacts", params={"email": "sue@samecorp.example"}).json()
        ron = api.get("/api/v1/contacts", params={"email": "ron@samecorp.example"}).json()
    assert sue["items"][0]["id"] in second["contact_ids"]
    assert sue["items"][0]["company_id"] == ron["items"][0]["company_id"] is not None


def test_auto_reply_in_a_thread_creates_no_contact_and_outside_is_not_logged(
    server: Server, account: PortalAccount
) -> None:
    """An out-of-office reply in a logged thread is logged without creating a contact; one
    tied to no thread is refused as bulk mail, and the audit log says so."""
    root_id = make_msgid()
    logged_id(deliver(server, message(sender=account.user_email, to="vic@autoco.example",
                                      message_id=root_id), account.bcc_address))
    ooo = message(sender="Auto Responder <autoresponder@autoco.example>",
                  to=account.user_email, subject="Automatic reply: Quarterly numbers",
                  message_id=make_msgid(), in_reply_to=root_id)
    ooo["Auto-Submitted"] = "auto-replied"
    email = _get(server, account, logged_id(deliver(server, ooo, account.bcc_address,
                                                    mail_from=account.user_email)))
    assert any("automatic" in note for note in email["notes"])
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/contacts", params={"email": "autoresponder@autoco.example"})
        assert found.json()["items"] == []
    newsletter = message(sender="news@shop.example", to=account.user_email,
                         message_id=make_msgid())
    newsletter["List-Id"] = "Deals <deals.shop.example>"
    code, text = deliver(server, newsletter, account.bcc_address, mail_from=account.user_email)
    assert code == 250 and text.startswith("2.0.0 not logged: automatic mail")
    with server.api(account.user_token) as api:
        entry = api.get("/api/v1/ingest-log").json()["items"][0]
    assert entry["reason_code"] == "bulk"


def test_move_an_email_between_threads_and_split_it_off(
    server: Server, account: PortalAccount
) -> None:
    """POST /emails/{id}/thread moves an email (reason manual) or splits it onto a new one."""
    a = logged_id(deliver(server, message(sender=account.user_email, to="wes@move.example",
                                          subject="Topic A", message_id=make_msgid()),
                          account.bcc_address))
    b = logged_id(deliver(server, message(sender=account.user_email, to="wes@move.example",
                                          subject="Topic B", message_id=make_msgid()),
                          account.bcc_address))
    thread_a = _get(server, account, a)["thread_id"]
    thread_b = _get(server, account, b)["thread_id"]
    with server.api(account.user_token) as api:
        moved = api.post(f"/api/v1/emails/{b}/thread", json={"thread_id": thread_a})
        assert moved.status_code == 200
        assert (moved.json()["thread_id"], moved.json()["thread_reason"]) == (thread_a, "manual")
        assert api.get(f"/api/v1/threads/{thread_b}").status_code == 404  # left empty: gone
        thread = api.get(f"/api/v1/threads/{thread_a}").json()
        assert sorted(e["id"] for e in thread["emails"]) == sorted([a, b])
        split = api.post(f"/api/v1/emails/{b}/thread", json={"thread_id": None}).json()
        assert split["thread_id"] not in (thread_a, thread_b)
        assert api.get(f"/api/v1/threads/{split['thread_id']}").json()["subject"] == "Topic B"
        assert api.post(f"/api/v1/emails/{b}/thread", json={"thread": 1}).status_code == 422
        assert api.post(f"/api/v1/emails/{b}/thread",
                        json={"thread_id": "x"}).status_code == 422
    other = server.new_portal("x@otherportal.example")
    with server.api(other.user_token) as api:
        assert api.post(f"/api/v1/emails/{b}/thread", json={"thread_id": None}).status_code == 404
    with server.api(account.user_token) as api:
        assert api.post(f"/api/v1/emails/{b}/thread",
                        json={"thread_id": 2**62}).status_code == 404


def test_auto_reply_loop_cannot_flood_a_thread(server: Server, account: PortalAccount) -> None:
    """Past 3 automatic emails a day from one sender in a thread, the rest are refused."""
    root_id = make_msgid()
    logged_id(deliver(server, message(sender=account.user_email, to="loop@autoloop.example",
                                      message_id=root_id), account.bcc_address))
    replies = []
    for n in range(5):
        auto = message(sender="loop@autoloop.example", to=account.user_email,
                       subject="Out of Office: Quarterly numbers", message_id=make_msgid(),
                       in_reply_to=root_id, body=f"I am away ({n}).")
        auto["Auto-Submitted"] = "auto-replied"
        replies.append(deliver(server, auto, account.bcc_address, mail_from=account.user_email))
    assert [code for code, _ in replies] == [250] * 5
    assert [text.startswith("2.0.0 logged") for _, text in replies] == [True] * 3 + [False] * 2
    assert replies[4][1] == "2.0.0 not logged: automatic mail: more than 3 a day in this thread"
