"""Sending against real limits: a full mailbox (Dovecot's quota plugin) and SMTP
refusals (421 throttling, 452 4.2.2 mailbox full, one recipient of several refused)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inbox_sync.conftest import Mailbox, new_mailbox
from tests.support.dovecot import SENT, Dovecot
from tests.support.mail import message
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder


def _received(mailbox: Mailbox, message_id: str) -> list[tuple[dict[str, Any], bytes]]:
    return [(env, raw) for env, raw in mailbox.recorder.messages()
            if message_id.encode() in raw]


def _in_sent(mailbox: Mailbox) -> int:
    with mailbox.imap() as client:
        return int(client.select_folder(SENT, readonly=True)[b"EXISTS"])


def _logged_events(mailbox: Mailbox) -> int:
    events = mailbox.get("/api/v1/events", after=0)["items"]
    return sum(1 for e in events if e["type"] == "logged")


def test_a_full_mailbox_loses_the_sent_copy_not_the_email(
        dovecot: Dovecot, recorder: SmtpRecorder, inbox_server: Server) -> None:
    """Over its quota, the mailbox refuses the Sent copy (NO [OVERQUOTA]), but the email
    went out: it is logged as crm_send, the answer says the copy failed because the
    mailbox is full, and the inbox shows mailbox_full (a sync does not hide it). Once
    space is freed, the next send files its copy and the inbox is connected again."""
    mailbox = new_mailbox(dovecot, recorder, inbox_server, quota_kb=10)
    mailbox.append(message(sender="news@elsewhere.example", to=mailbox.address,
                           body="x" * 9000))  # 9 of the 10 KiB
    inbox = mailbox.connect()
    offer = {"to": ["ann@acme.example"], "subject": "Our offer", "text": "Hi Ann,\n" * 400}

    sent = mailbox.send(offer, 201)
    assert (sent["logged"], sent["log"]) == (True, "logged")
    assert sent["email"]["sources"] == ["crm_send"]
    assert sent["email"]["message_id"] == sent["message_id"]
    assert sent["sent_folder"] is None and sent["sent_copy_error_code"] == "mailbox_full"
    assert f"the copy to the Sent folder {SENT} failed: the mailbox is full" in \
        sent["sent_copy_error"]
    assert "[OVERQUOTA]" in sent["sent_copy_error"]
    assert len(_received(mailbox, sent["message_id"])) == 1
    assert _in_sent(mailbox) == 0
    state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
    assert state["status"] == "mailbox_full" and "[OVERQUOTA]" in state["status_reason"]
    assert mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync").status_code == 200
    assert mailbox.get(f"/api/v1/inboxes/{inbox['id']}")["status"] == "mailbox_full"

    with mailbox.imap() as client:  # the user makes room
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
    again = mailbox.send(offer, 201)
    assert again["sent_folder"] == SENT and again["sent_copy_error"] is None
    assert again["sent_copy_error_code"] is None
    assert _in_sent(mailbox) == 1
    state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
    assert (state["status"], state["status_reason"]) == ("connected", "")


@pytest.mark.parametrize(("to", "status", "code", "reply"), [
    (["ann@throttled.example"], 429, "throttled", "421 4.7.0 Try again later"),
    # Accepted for bob, then 421 and the server hangs up before DATA: nothing was sent.
    (["bob@acme.example", "ann@throttled.example"], 429, "throttled", "421 4.7.0"),
    (["ann@full.example"], 507, "mailbox_full", "452 4.2.2 Mailbox full"),
], ids=["421", "421-after-an-accepted-recipient", "452-mailbox-full"])
def test_smtp_throttling_and_a_full_mailbox_refuse_the_send(
        mailbox: Mailbox, to: list[str], status: int, code: str, reply: str) -> None:
    """SMTP 421 (throttling) and 452 4.2.2 (mailbox full) answer the send with that kind
    of error and the server's own reply; nothing is sent, copied to Sent or logged."""
    mailbox.connect()
    received, logged = len(mailbox.recorder.messages()), _logged_events(mailbox)
    response = mailbox.post("/api/v1/emails/send",
                            {"to": to, "subject": "Offer", "text": "Hi"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and reply in error["message"]
    if status == 429:
        assert response.headers["Retry-After"]
    assert len(mailbox.recorder.messages()) == received
    assert _in_sent(mailbox) == 0
    assert _logged_events(mailbox) == logged
    assert mailbox.get("/api/v1/contacts", email=to[-1])["items"] == []


def test_a_send_refused_for_one_recipient_went_to_the_others(mailbox: Mailbox) -> None:
    """Accepted for some recipients only, the message was sent: it is logged and copied,
    and the answer lists the refused recipient with the server's reply (an error would
    make the user send it again to those who have it)."""
    mailbox.connect()
    sent = mailbox.send({"to": ["ann@acme.example", "ghost@refused.example"],
                         "subject": "Offer", "text": "Hi"}, 201)
    assert sent["refused_recipients"] == [
        {"address": "ghost@refused.example", "reply": "550 5.1.1 no such user here"}]
    assert sent["email"]["sources"] == ["crm_send"] and sent["sent_folder"] == SENT
    [(envelope, _raw)] = _received(mailbox, sent["message_id"])
    assert envelope["rcpt_tos"] == ["ann@acme.example"]
