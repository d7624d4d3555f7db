"""Forwarded email through the real SMTP port: the original is logged, on the right
contact, or the forward is logged as the user's own email with the reason recorded."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.mail.test_forwards import ANNA, EXPECTED, TOM
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

CORPUS = Path(__file__).resolve().parents[1] / "emails" / "forwards"
REAL = Path(__file__).resolve().parents[1] / "emails" / "real_forwards"
# Real-corpus samples, one per family (material nobody here wrote; see its manifest).
REAL_SAMPLES = [
    "quotequail/unwrap_02_apple_mail_en.eml",  # Apple Mail, the whole forward quoted
    "yahoo/flattened_en.eml",  # Yahoo, the header block flattened onto one line
    "outlook_2019/attribution_de.eml",  # Outlook 2019, a reply-shaped attribution
    "thunderbird/html_ja.eml",  # Thunderbird html, the header table
    "kmail/plain_ar.eml",  # KMail in Arabic, bidi isolates around the values
    "mutt/inline_en_01.eml",  # mutt, the original's own headers copied in
]


@pytest.fixture(scope="module")
def anna(server: Server) -> PortalAccount:
    """One portal for the corpus: Anna forwards, Tom is her colleague."""
    account = server.new_portal(ANNA, name="Acme Logistics")
    server.cli("admin", "add-user", "--portal", str(account.portal_id), "--email", TOM)
    return account


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_sample_is_logged_as_its_original(
    server: Server, anna: PortalAccount, name: str
) -> None:
    """Each client's forward logs the original sender, subject, date and recipients."""
    sender, subject, date, to = EXPECTED[name]
    # The samples were forwarded to a logging address of another installation.
    raw = (CORPUS / name).read_bytes().replace(b"k7f3q9@bcc.inboxlog.example",
                                               anna.bcc_address.encode())
    email_id = logged_id(deliver(server, raw, anna.bcc_address, mail_from=ANNA))
    with server.api(anna.user_token) as api:
        email = _get(api, f"/api/v1/emails/{email_id}").json()
        if sender is None:
            # Unreadable forward: the user's own email, on nobody's timeline, reason kept.
            assert email["from"]["email"] == ANNA
            assert email["sources"] == ["bcc"]
            assert email["contact_ids"] == []
            log = _get(api, "/api/v1/ingest-log").json()["items"]
            assert any(e["reason_code"] == "forward_unparsable" and e["sender"] == ANNA
                       for e in log)
            return
        assert email["from"]["email"].lower() == sender
        assert email["subject"] == subject
        if date is not None:
            assert datetime.fromisoformat(email["sent_at"]) == datetime.fromisoformat(date)
        assert [p["email"].lower() for p in email["to"]] == to
        assert email["sources"] == ["forward"]
        assert email["direction"] == "incoming"
        contact = _get(api, "/api/v1/contacts", params={"email": sender}).json()["items"]
        assert len(contact) == 1 and contact[0]["id"] in email["contact_ids"]
        assert ANNA not in [c["email"] for c in _contacts(api, email["contact_ids"])]


def _contacts(api: httpx.Client, ids: list[int]) -> list[dict[str, Any]]:
    return [_get(api, f"/api/v1/contacts/{i}").json() for i in ids]


def _get(api: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """GET as a polite client does: a 429 (this module asks a lot) waits its Retry-After."""
    for _ in range(5):
        response = api.get(url, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(min(10.0, float(response.headers.get("Retry-After", "1"))))
    return response


def test_forwarded_original_and_its_reply_share_a_thread(
    server: Server, account: PortalAccount
) -> None:
    """An attached original keeps its Message-ID, so the customer's reply joins it."""
    original_id = make_msgid(domain="customer.example")
    original = message(sender="Cleo Customer <cleo@customer.example>", to=account.user_email,
                       subject="Need a quote", message_id=original_id)
    forward = EmailMessage()
    forward["From"] = account.user_email
    forward["To"] = account.bcc_address
    forward["Subject"] = "Fwd: Need a quote"
    forward["Message-ID"] = make_msgid()
    forward.set_content("FYI, logging this.")
    forward.add_attachment(original)
    first = logged_id(deliver(server, forward, account.bcc_address))
    gmail_reply = ("Any news?\n\nOn Mon, Nov 16, 2026 at 9:30 AM Rita Rep "
                   f"<{account.user_email}> wrote:\n> FYI, logging this.\n")
    reply = message(sender="cleo@customer.example", to=account.user_email,
                    subject="Re: Need a quote", message_id=make_msgid(),
                    in_reply_to=original_id, body=gmail_reply)
    second = logged_id(deliver(server, reply, account.bcc_address, mail_from=account.user_email))
    with server.api(account.user_token) as api:
        a = api.get(f"/api/v1/emails/{first}").json()
        b = api.get(f"/api/v1/emails/{second}").json()
    assert a["message_id"] == original_id.strip("<>")
    assert a["from"]["email"] == "cleo@customer.example"
    assert b["thread_id"] == a["thread_id"] and b["thread_reason"] == "in_reply_to"
    assert b["reply_text"] == "Any news?"


def _real_expectation(name: str) -> dict[str, str | None]:
    entries = json.loads((REAL / "manifest.json").read_text())
    found = [e["expected"] for e in entries if e["file"] == name]
    assert found, f"{name} is no longer in the real corpus: pick another sample of its family"
    expected: dict[str, str | None] = found[0]
    return expected


def _sent_by(raw: bytes, user: str, logging_address: str) -> bytes:
    """``raw`` with its outer From and To those of a portal user forwarding to inboxlog."""
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(
        b"\n\n")
    head = re.sub(rb"(?mi)^From:.*(?:\r?\n[ \t].*)*", b"From: " + user.encode(), head, count=1)
    head = re.sub(rb"(?mi)^To:.*(?:\r?\n[ \t].*)*", b"To: " + logging_address.encode(), head,
                  count=1)
    return head + sep + body


@pytest.mark.parametrize("name", REAL_SAMPLES)
def test_real_forward_is_logged_as_its_original(
    server: Server, account: PortalAccount, name: str
) -> None:
    """A real client's forward, sent by a portal user, logs the original's sender, subject
    and date, read back through the HTTP API."""
    expected = _real_expectation(name)
    raw = _sent_by((REAL / name).read_bytes(), account.user_email, account.bcc_address)
    email_id = logged_id(deliver(server, raw, account.bcc_address, mail_from=account.user_email))
    with server.api(account.user_token) as api:
        email = _get(api, f"/api/v1/emails/{email_id}").json()
    assert email["from"]["email"].lower() == expected["from"]
    assert email["subject"] == expected["subject"]
    sent_at = datetime.fromisoformat(email["sent_at"])
    assert expected["date"] is not None
    want = datetime.fromisoformat(expected["date"])
    # The forward writes minutes only where its layout has no seconds (see the manifest).
    assert sent_at in (want, want.replace(second=0))
    assert email["sources"] == ["forward"]
