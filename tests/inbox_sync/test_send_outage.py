"""The database fails after the SMTP server accepted a CRM send: the send still reads
as sent (an error would make the user send it twice), and the email is logged later,
once, from the send spool."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from inbox_sync.service import InboxService, ServiceOptions
from inbox_sync.spool import SendSpool, SpooledSend
from tests.extension_api.test_openapi import check
from tests.inbox_sync.conftest import Mailbox, new_mailbox
from tests.inbox_sync.inprocess import LOOPBACK, inbox_row, logged, setup_inbox
from tests.support import postgres
from tests.support.dovecot import SENT, Dovecot
from tests.support.mail import message
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture
def pg_inbox_server(tmp_path: Path) -> Iterator[Server]:
    """`inboxlog serve` with inbox sync, on a PostgreSQL database of its own."""
    with postgres.inboxlog_server(tmp_path / "pg-inbox",
                                  ("--inbox-poll-interval", "1")) as running:
        yield running


def _wait_for(what: str, check: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _send_while_the_database_dies(mailbox: Mailbox, body: dict[str, object]) -> httpx.Response:
    """POST the send; while the SMTP server holds the message (it has it, the sender
    does not know yet), cut PostgreSQL off, then let the server answer 250."""
    server, recorder = mailbox.server, mailbox.recorder
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(mailbox.post, "/api/v1/emails/send", body)
        recorder.wait_holding()
        asyncio.run(postgres.set_available(server.db_url, False))
        recorder.release()
        return sending.result(timeout=60)


def test_a_send_the_database_cannot_log_is_logged_later_exactly_once(
        pg_inbox_server: Server, dovecot: Dovecot, recorder: SmtpRecorder) -> None:
    """202 sent/pending with the Message-ID while PostgreSQL is down; the copy is in
    Sent; once the database is back the email appears once, as crm_send; the same spool
    entry coming back after it landed (a crash between the commit and the clean-up) is
    logged at the next start as a duplicate, not a second email."""
    mailbox = new_mailbox(dovecot, recorder, pg_inbox_server)
    mailbox.connect()
    spool = pg_inbox_server.data_dir / "send-spool"
    body = {"to": ["ann@hold.example"], "subject": "Our offer", "text": "Hi Ann",
            "track_opens": True}
    try:
        response = _send_while_the_database_dies(mailbox, body)
        assert response.status_code == 202, response.text
        sent = response.json()
        check(httpx.get(f"{pg_inbox_server.base_url}/openapi.json").json(),
              "/api/v1/emails/send", "post", 202, sent)
        assert (sent["logged"], sent["log"], sent["email"]) == (False, "pending", None)
        assert "database" in sent["log_reason"]
        assert sent["sent_folder"] == SENT and sent["sent_copy_error"] is None
        message_id = sent["message_id"]
        [pending] = list(spool.glob("*.pending"))
        saved = pending.read_bytes()
        assert message_id.encode() in saved
    finally:
        asyncio.run(postgres.set_available(pg_inbox_server.db_url, True))

    _wait_for("the pending send is logged", lambda: mailbox.find(message_id))
    [email] = mailbox.find(message_id)
    # Logged from the spool as crm_send; a sync of Sent that ran after that adds its own
    # source to the same email (which of the two came first depends on timing).
    assert "crm_send" in email["sources"] and set(email["sources"]) <= {"crm_send", "sync"}
    assert email["direction"] == "outgoing"
    _wait_for("the spool is empty", lambda: not list(spool.glob("*.pending")))
    assert len([raw for _, raw in recorder.messages() if message_id.encode() in raw]) == 1
    with mailbox.imap() as client:
        client.select_folder(SENT, readonly=True)
        assert len(client.search(["HEADER", "Message-ID", message_id])) == 1

    # As if the process had died after logging it and before removing the file.
    (spool / pending.name).write_bytes(saved)
    pg_inbox_server.stop()
    pg_inbox_server.start()
    _wait_for("the spool is empty again", lambda: not list(spool.glob("*.pending")))
    assert f"<{message_id}> duplicate" in pg_inbox_server.log()
    [again] = mailbox.find(message_id)
    # One email; the restarted sync may have read its copy in Sent back: a source more.
    assert again["id"] == email["id"] and again["sources"][0] == "crm_send"
    assert set(again["sources"]) <= {"crm_send", "sync"}


async def test_a_send_cut_off_mid_transaction_is_set_aside_not_logged(
        tmp_path: Path, dovecot: Dovecot) -> None:
    """At start-up, a spool entry still marked as being sent (the process died during
    the SMTP transaction: whether it went out is unknown) is moved to unknown/ and not
    logged; one marked as sent is logged."""
    runtime, inbox_id, address, _seed = await setup_inbox(tmp_path, dovecot)
    portal_id = (await inbox_row(runtime, inbox_id)).portal_id
    spool = SendSpool(tmp_path / "send-spool")

    def entry(subject: str) -> SpooledSend:
        message_id = f"{uuid.uuid4().hex}@ourco.example"
        raw = message(sender=address, to="ann@acme.example", subject=subject,
                      message_id=f"<{message_id}>").as_bytes()
        return SpooledSend(portal_id, address, inbox_id, message_id, None, raw)

    unknown, sent = entry("cut off"), entry("sent")
    spool.hold(unknown)
    spool.mark_sent(spool.hold(sent))
    service = InboxService(runtime, ServiceOptions(background=False, destinations=LOOPBACK))
    try:
        await service.start()
        deadline = time.monotonic() + 20
        while not await logged(runtime, sent.message_id):
            assert time.monotonic() < deadline, "the pending send was never logged"
            await asyncio.sleep(0.05)
        assert not await logged(runtime, unknown.message_id)
        assert list(spool.folder.glob("*.sending")) == []
        [aside] = list((spool.folder / "unknown").iterdir())
        assert unknown.message_id.encode() in aside.read_bytes()
        deadline = time.monotonic() + 5
        while list(spool.folder.glob("*.pending")):
            assert time.monotonic() < deadline, "the logged entry was not removed"
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await runtime.close()
