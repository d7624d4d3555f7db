"""Sending through the user's SMTP server, with the copy in Sent and the email logged."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy

import httpx

from tests.inbox_sync.conftest import Mailbox
from tests.support.server import ClockedServer


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


def test_tracked_crm_send_counts_opens_and_clicks(mailbox: Mailbox) -> None:
    """With tracking asked, the sent HTML has a signed pixel and signed links; hitting
    them counts on the logged email, and its logged copy shows the original link."""
    mailbox.connect()
    body = {"to": ["tia@tracked.example"], "subject": "Tracked", "text": "see html",
            "html": '<p><a href="https://shop.example/deal">the deal</a></p>',
            "track_opens": True, "track_clicks": True}
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post("/api/v1/emails/send", json=body)
    assert response.status_code == 201, response.text
    email = response.json()["email"]
    raw = next(raw for _, raw in mailbox.recorder.messages()
               if email["message_id"].encode() in raw)
    html = message_from_bytes(raw, policy=policy.default).get_body(("html",)).get_content()
    pixel = re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1)
    link = re.search(r'href="([^"]+/t/c/[^"]+)"', html).group(1)
    reader = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
              "X-Forwarded-For": "203.0.113.80"}
    clock = mailbox.server
    assert isinstance(clock, ClockedServer)
    clock.move_clock(2 * 3600)  # a person reads it two hours later, not at delivery
    try:
        assert httpx.get(pixel, headers=reader).status_code == 200
        clicked = httpx.get(link, headers=reader, follow_redirects=False)
    finally:
        clock.move_clock(0)
    assert clicked.headers["location"] == "https://shop.example/deal"
    deadline = time.monotonic() + 10
    with mailbox.server.api(mailbox.account.user_token) as api:
        while True:
            logged = api.get(f"/api/v1/emails/{email['id']}").json()
            if logged["tracking"]["clicks"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert (logged["tracking"]["opens"], logged["tracking"]["clicks"]) == (1, 1)
    assert 'href="https://shop.example/deal"' in logged["html"]
