"""One folder the server refuses to open never fails the whole sync (real Dovecot)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from inbox_sync.service import InboxService, ServiceOptions
from tests.inbox_sync.conftest import Mailbox
from tests.inbox_sync.inprocess import LOOPBACK, PASSWORD, inbox_row, logged, setup_inbox
from tests.support.dovecot import Dovecot
from tests.support.mail import message


def _folder(state: dict[str, Any], role: str) -> dict[str, Any]:
    return next(f for f in state["folders"] if f["role"] == role)


@pytest.mark.parametrize(("failing", "role", "other"), [("INBOX", "inbox", "sent"),
                                                        ("Gesendet", "sent", "inbox")])
def test_a_failing_folder_is_reported_and_the_other_is_still_synced(
        mailbox: Mailbox, failing: str, role: str, other: str) -> None:
    """With one folder's Maildir unreadable (Dovecot answers NO to EXAMINE), the other
    folder's reply is logged, the inbox shows the folder failing with the server's
    reason, and once it can be read again the next sync logs what it held."""
    first = mailbox.seed_thread()
    replies = {"inbox": f"<{uuid.uuid4().hex}@mail.test>",
               "sent": f"<{uuid.uuid4().hex}@mail.test>"}
    mailbox.append(message(sender="Ann <ann@acme.example>", to=mailbox.address,
                           subject="Re: Proposal", message_id=replies["inbox"],
                           in_reply_to=first))
    mailbox.append(message(sender=mailbox.address, to="ann@acme.example",
                           subject="Re: Proposal", message_id=replies["sent"],
                           in_reply_to=first), folder="Gesendet")

    with mailbox.dovecot.unreadable(mailbox.address, failing):
        inbox = mailbox.connect()
        response = mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["status"] == "connected"
        assert failing in _folder(report, role)["error"]
        assert _folder(report, other)["error"] is None
        assert len(mailbox.find(replies[other])) == 1
        assert mailbox.find(replies[role]) == []

        state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
        assert state["status"] == "connected"
        broken, fine = _folder(state, role), _folder(state, other)
        assert broken["status"] == "failing" and broken["name"] == failing
        assert f"opening the folder {failing}" in broken["error"]
        assert "[SERVERBUG]" in broken["error"]  # the server's own words
        assert broken["synced_at"] is None
        assert (fine["status"], fine["error"]) == ("ok", "")
        assert fine["synced_at"] is not None

    report = mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync").json()
    assert _folder(report, role)["error"] is None
    [logged] = mailbox.find(replies[role])
    assert logged["sources"] == ["sync"]
    state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
    assert [(f["role"], f["status"], f["error"]) for f in state["folders"]] == \
        [("inbox", "ok", ""), ("sent", "ok", "")]
    assert len(mailbox.find(replies[other])) == 1


async def test_the_background_worker_goes_on_around_a_failing_inbox(
        tmp_path: Path, dovecot: Dovecot) -> None:
    """A worker whose INBOX cannot be opened polls instead of IDLE, keeps logging from
    Sent, and does not take the refusal for an unreachable server: even with
    disconnect_after 0 the inbox stays connected."""
    runtime, inbox_id, address, seed = await setup_inbox(tmp_path, dovecot)
    own_reply = uuid.uuid4().hex + "@mail.test"
    with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(address, PASSWORD)
        client.append("INBOX", message(sender="ann@acme.example", to=address,
                                       in_reply_to=seed).as_bytes())
        client.append("Gesendet", message(sender=address, to="ann@acme.example",
                                          message_id=f"<{own_reply}>",
                                          in_reply_to=seed).as_bytes())
    service = InboxService(runtime, ServiceOptions(poll_interval=0.3, backoff_first=0.2,
                                                   disconnect_after=timedelta(0),
                                                   destinations=LOOPBACK))
    try:
        with dovecot.unreadable(address, "INBOX"):
            await service.start()
            deadline = time.monotonic() + 20
            while not await logged(runtime, own_reply):
                assert time.monotonic() < deadline, "the reply in Sent was never logged"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # several rounds of poll and sync
            inbox = await inbox_row(runtime, inbox_id)
            assert (inbox.status, inbox.unreachable_since) == ("connected", None)
            [folder] = [f for f in inbox.folders if f.role == "inbox"]
            assert "[SERVERBUG]" in folder.error
    finally:
        await service.stop()
        await runtime.close()
