"""Sending through the user's SMTP server, with the copy in Sent and the email logged."""

from __future__ import annotations

from email import message_from_bytes, policy

from tests.inbox_sync.conftest import Mailbox


def test_send_delivers_copies_to_sent_and_logs(mailbox: Mailbox) -> None:
    """The SMTP server receives the message, Sent holds a copy, the email is crm_send."""
    mailbox.connect()
    body = {"to": ["ann@acme.example"], "bcc": ["boss@ourco.example"],
            "subject": "Our offer", "text": "Hi Ann,\nthe offer.", "track_opens": True}
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post("/api/v1/emails/send", json=body)
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["sent_folder"] == "Gesendet" and sent["sent_copy_error"] is None
    email = sent["email"]
    assert email["sources"] == ["crm_send"] and email["direction"] == "outgoing"
    received = [(env, raw) for env, raw in mailbox.recorder.messages()
                if email["message_id"].encode() in raw]
    assert len(received) == 1
    envelope, raw = received[0]
    assert envelope["mail_from"] == mailbox.address
    assert sorted(envelope["rcpt_tos"]) == ["ann@acme.example", "boss@ourco.example"]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert "Bcc" not in parsed and parsed["Subject"] == "Our offer"
    assert b"/t/o/" in raw  # the open pixel, since track_opens was asked
    with mailbox.imap() as client:
        client.select_folder("Gesendet", readonly=True)
        found = client.search(["HEADER", "Message-ID", email["message_id"]])
        assert len(found) == 1
        assert b"\\Seen" in client.get_flags(found)[found[0]]


def test_a_refused_send_logs_nothing(mailbox: Mailbox) -> None:
    """When the SMTP server refuses, the API says why and nothing is logged or copied."""
    mailbox.connect()
    body = {"to": ["ghost@refused.example"], "subject": "Lost", "text": "..."}
    before = len(mailbox.recorder.messages())
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post("/api/v1/emails/send", json=body)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "send_rejected"
        assert "550" in response.json()["error"]["message"]
        contacts = api.get("/api/v1/contacts", params={"email": "ghost@refused.example"})
        assert contacts.json()["items"] == []
    assert len(mailbox.recorder.messages()) == before
    with mailbox.imap() as client:
        assert client.select_folder("Gesendet", readonly=True)[b"EXISTS"] == 0


def test_send_needs_a_connected_inbox(mailbox: Mailbox) -> None:
    """Without an inbox the send answers 422 and says to connect one."""
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post("/api/v1/emails/send",
                            json={"to": ["a@b.example"], "subject": "x", "text": "y"})
    assert response.status_code == 422
    assert "connect an inbox" in response.json()["error"]["message"]
