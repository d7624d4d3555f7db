"""Sync over real IMAP: replies to logged threads only, window, checkpoints, disconnects."""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.inbox_sync.conftest import Mailbox
from tests.support.mail import deliver, logged_id, message


def _mid() -> str:
    return f"<{uuid.uuid4().hex}@mail.test>"


def _seed_thread(mailbox: Mailbox, customer: str = "ann@acme.example") -> str:
    """The user BCCs an email to a customer: a logged thread to reply to."""
    first = _mid()
    sent = message(sender=mailbox.address, to=customer, message_id=first,
                   subject="Proposal")
    logged_id(deliver(mailbox.server, sent, mailbox.account.bcc_address,
                      mail_from=mailbox.address))
    return first


def _find(mailbox: Mailbox, message_id: str) -> list[dict[str, Any]]:
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.get("/api/v1/emails", params={"message_id": message_id})
    assert response.status_code == 200
    return list(response.json()["items"])


def _sync(mailbox: Mailbox, inbox_id: int) -> dict[str, Any]:
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post(f"/api/v1/inboxes/{inbox_id}/sync")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _folder(report: dict[str, Any], role: str) -> dict[str, Any]:
    return next(f for f in report["folders"] if f["role"] == role)


def test_sync_logs_replies_to_logged_threads_and_nothing_else(mailbox: Mailbox) -> None:
    """A reply to a logged thread is logged (source sync); other mail is not even fetched."""
    first = _seed_thread(mailbox)
    reply, stranger, own = _mid(), _mid(), _mid()
    mailbox.append(message(sender="Ann <ann@acme.example>", to=mailbox.address,
                           subject="Re: Proposal", message_id=reply, in_reply_to=first))
    mailbox.append(message(sender="friend@elsewhere.example", to=mailbox.address,
                           subject="Dinner?", message_id=stranger))
    mailbox.append(message(sender=mailbox.address, to="mum@family.example",
                           subject="Sunday", message_id=own), folder="Gesendet")
    inbox = mailbox.connect()
    report = _sync(mailbox, inbox["id"])
    assert _folder(report, "sent")["name"] == "Gesendet"  # SPECIAL-USE, German name
    [logged] = _find(mailbox, reply)
    assert logged["sources"] == ["sync"] and logged["direction"] == "incoming"
    assert logged["thread_id"] == _find(mailbox, first)[0]["thread_id"]
    assert _find(mailbox, stranger) == [] and _find(mailbox, own) == []
    with mailbox.server.api(mailbox.account.user_token) as api:
        audit = api.get("/api/v1/ingest-log").json()["items"]
    assert not any(e["message_id"] in (stranger.strip("<>"), own.strip("<>")) for e in audit)
    db = sqlite3.connect(mailbox.server.data_dir / "inboxlog.db")
    rows = db.execute("select role, last_uid, uidvalidity from inbox_folders "
                      "where inbox_id = ? order by role", (inbox["id"],)).fetchall()
    db.close()
    assert rows[0][0] == "inbox" and rows[0][1] == 2 and rows[0][2]
    assert rows[1][0] == "sent" and rows[1][1] == 1


def test_known_contacts_mode_logs_mail_with_contacts(mailbox: Mailbox) -> None:
    """With inbox_log_mode known_contacts, mail from a known contact is logged too."""
    _seed_thread(mailbox, "bob@acme.example")
    with mailbox.server.api(mailbox.account.admin_token) as api:
        api.patch("/api/v1/settings", json={"inbox_log_mode": "known_contacts"}
                  ).raise_for_status()
    fresh, unknown = _mid(), _mid()
    mailbox.append(message(sender="bob@acme.example", to=mailbox.address,
                           subject="Something new", message_id=fresh))
    mailbox.append(message(sender="nobody@else.example", to=mailbox.address,
                           subject="Hello", message_id=unknown))
    inbox = mailbox.connect()
    _sync(mailbox, inbox["id"])
    assert len(_find(mailbox, fresh)) == 1
    assert _find(mailbox, unknown) == []


def test_first_sync_window_and_incremental_sync(mailbox: Mailbox) -> None:
    """Mail older than the window is skipped; a later sync reads only new UIDs."""
    first = _seed_thread(mailbox)
    old, recent, later = _mid(), _mid(), _mid()
    long_ago = datetime.now(UTC) - timedelta(days=60)
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: old",
                           message_id=old, in_reply_to=first), when=long_ago)
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: new",
                           message_id=recent, in_reply_to=first))
    inbox = mailbox.connect(first_sync_days=30)
    report = _sync(mailbox, inbox["id"])
    assert _find(mailbox, old) == [] and len(_find(mailbox, recent)) == 1
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: later",
                           message_id=later, in_reply_to=first))
    report = _sync(mailbox, inbox["id"])
    assert len(_find(mailbox, later)) == 1
    # Only UID 3 was new (the background worker may have taken it first: then none).
    assert _folder(report, "inbox")["headers_fetched"] <= 1
    assert _folder(report, "inbox")["last_uid"] == 3


def test_background_sync_logs_new_replies_without_being_asked(mailbox: Mailbox) -> None:
    """In serve, a reply arriving after connect is logged by the background IDLE worker."""
    first = _seed_thread(mailbox)
    mailbox.connect()
    time.sleep(0.5)
    reply = _mid()
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: x",
                           message_id=reply, in_reply_to=first))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _find(mailbox, reply):
        time.sleep(0.3)
    assert len(_find(mailbox, reply)) == 1


def test_password_change_disconnects_and_reconnect_resumes(mailbox: Mailbox) -> None:
    """Rejected credentials mark the inbox disconnected with an event; reconnecting
    with the new password resumes from the checkpoint."""
    first = _seed_thread(mailbox)
    one, two = _mid(), _mid()
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: 1",
                           message_id=one, in_reply_to=first))
    inbox = mailbox.connect()
    _sync(mailbox, inbox["id"])
    mailbox.dovecot.set_password(mailbox.address, "changed-by-user")
    with mailbox.server.api(mailbox.account.user_token) as api:
        refused = api.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "auth_rejected"
        state = api.get(f"/api/v1/inboxes/{inbox['id']}").json()
    assert state["status"] == "disconnected" and "rejected" in state["status_reason"]
    db = sqlite3.connect(mailbox.server.data_dir / "inboxlog.db")
    events = db.execute("select detail from events where type = 'inbox_disconnected' "
                        "and portal_id = ?", (mailbox.account.portal_id,)).fetchall()
    db.close()
    assert len(events) == 1
    mailbox.password = "changed-by-user"
    mailbox.recorder.add_user(mailbox.address, mailbox.password)
    mailbox.append(message(sender="ann@acme.example", to=mailbox.address, subject="Re: 2",
                           message_id=two, in_reply_to=first))
    again = mailbox.connect()
    assert again["id"] == inbox["id"] and again["status"] == "connected"
    report = _sync(mailbox, inbox["id"])
    assert len(_find(mailbox, two)) == 1 and len(_find(mailbox, one)) == 1
    assert _folder(report, "inbox")["headers_fetched"] <= 1  # resumed after UID 1


def test_oversized_reply_is_not_fetched_but_explained(mailbox: Mailbox) -> None:
    """A reply to a logged thread over 50 MB is not fetched; the ingest log says why."""
    first = _seed_thread(mailbox)
    big = _mid()
    reply = message(sender="Ann <ann@acme.example>", to=mailbox.address,
                    subject="Re: Proposal (the scans)", message_id=big, in_reply_to=first)
    reply.add_attachment(b"\0" * (51 * 1024 * 1024), maintype="application",
                         subtype="octet-stream", filename="scans.bin")
    mailbox.append(reply)
    inbox = mailbox.connect()
    report = _sync(mailbox, inbox["id"])
    assert _folder(report, "inbox")["bodies_fetched"] == 0
    assert _find(mailbox, big) == []
    with mailbox.server.api(mailbox.account.user_token) as api:
        entry = api.get("/api/v1/ingest-log").json()["items"][0]
    assert (entry["reason_code"], entry["message_id"]) == ("too_large", big.strip("<>"))
    assert entry["sender"] == "ann@acme.example" and entry["source"] == "sync"
