"""A CRM send whose outcome is uncertain, in process against the real Dovecot, the real
SMTP test server and (for outages) a real PostgreSQL: the server never answers the
message, the HTTP client goes away mid-send, the spool cannot mark a send as sent, the
logged email cannot be read back. Never a duplicate invited, never a log promised that
nothing will write."""

from __future__ import annotations

import asyncio
import errno
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from imapclient import IMAPClient

from core.inboxes import SendRequest, SendResult
from core.runtime import Runtime
from extension_api.app import create_app
from inbox_sync.service import InboxService, ServiceOptions
from tests.extension_api.test_openapi import check
from tests.inbox_sync.inprocess import (
    LOOPBACK,
    PASSWORD,
    inbox_row,
    logged,
    setup_inbox,
    user_token,
)
from tests.support import postgres
from tests.support.dovecot import SENT, Dovecot
from tests.support.smtp_recorder import SmtpRecorder

SEND = "/api/v1/emails/send"


@dataclass
class Sender:
    """An in-process service whose inbox sends through the SMTP test server."""

    runtime: Runtime
    service: InboxService
    inbox_id: int
    portal_id: int
    user_id: int
    address: str
    dovecot: Dovecot

    @property
    def spool(self) -> Path:
        return self.runtime.settings.data_dir / "send-spool"

    def spooled(self, pattern: str) -> list[Path]:
        return sorted(self.spool.glob(pattern))

    def in_sent(self, message_id: str) -> int:
        client = IMAPClient("127.0.0.1", self.dovecot.imap_port, ssl=False, timeout=10)
        with client:
            client.login(self.address, PASSWORD)
            client.select_folder(SENT, readonly=True)
            return len(client.search(["HEADER", "Message-ID", message_id]))


async def _sender(tmp_path: Path, dovecot: Dovecot, recorder: SmtpRecorder, *,
                  db_url: str = "", timeout: float = 30) -> Sender:
    runtime, inbox_id, address, _seed = await setup_inbox(
        tmp_path, dovecot, smtp_port=recorder.port, db_url=db_url)
    recorder.add_user(address, PASSWORD)
    inbox = await inbox_row(runtime, inbox_id)
    service = InboxService(runtime, ServiceOptions(
        background=False, timeout=timeout, backoff_first=0.2, backoff_max=1,
        destinations=LOOPBACK))
    await service.start()
    return Sender(runtime, service, inbox_id, inbox.portal_id, inbox.user_id, address,
                  dovecot)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await postgres.create_database()
    yield url
    await postgres.drop_database(url)


@pytest.fixture
async def released(recorder: SmtpRecorder) -> AsyncIterator[SmtpRecorder]:
    """The SMTP test server, with any message it still holds let through afterwards."""
    yield recorder
    holding = recorder.folder / "holding"
    if holding.exists():
        recorder.release()
    await _wait_for("the SMTP server holds nothing", lambda: not holding.exists())


async def _wait_for(what: str, check: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _received(recorder: SmtpRecorder, marker: str) -> list[bytes]:
    return [raw for _env, raw in recorder.messages() if marker.encode() in raw]


def _api(runtime: Runtime, connector: Any, token: str) -> httpx.AsyncClient:
    app = create_app(runtime)
    app.state.inboxes = connector
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                             headers={"Authorization": f"Bearer {token}"}, timeout=60)


async def _document(api: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await api.get("/openapi.json")).json())


async def test_a_send_the_server_never_confirms_is_set_aside_not_logged(
        tmp_path: Path, dovecot: Dovecot, released: SmtpRecorder) -> None:
    """The SMTP server takes the message and holds its reply past the client's time-out:
    504 send_unconfirmed saying it may have been sent, with its Message-ID; the spool
    entry is set aside in unknown/ (not removed), nothing is logged or copied to Sent.
    The server then accepts it: it did go out, so an error inviting a resend would have
    sent it twice."""
    recorder = released
    sender = await _sender(tmp_path, dovecot, recorder, timeout=2)
    token = await user_token(sender.runtime, sender.inbox_id)
    try:
        async with _api(sender.runtime, sender.service, token) as api:
            sending = asyncio.create_task(api.post(SEND, json={
                "to": ["ann@hold.example"], "subject": "Our offer", "text": "Hi Ann"}))
            await asyncio.to_thread(recorder.wait_holding)
            response = await sending
            assert response.status_code == 504, response.text
            check(await _document(api), SEND, "post", 504, response.json())
        error = response.json()["error"]
        assert error["code"] == "send_unconfirmed"
        assert "may have been sent" in error["message"]
        assert "Sent folder" in error["message"] and "before sending it again" in error["message"]
        found = re.search(r"<([^>]+)>", error["message"])
        assert found, error["message"]
        message_id = found.group(1)

        assert sender.spooled("*.sending") == [] and sender.spooled("*.pending") == []
        [aside] = sender.spooled("unknown/*")
        assert message_id.encode() in aside.read_bytes()

        recorder.release()
        await _wait_for("the server accepted it",
                        lambda: len(_received(recorder, message_id)) == 1)
        assert not await logged(sender.runtime, message_id)
        assert sender.in_sent(message_id) == 0
        assert aside.exists()  # the retry of pending sends never touches it
    finally:
        await sender.service.stop()
        await sender.runtime.close()


async def test_a_send_whose_caller_goes_away_still_finishes_and_is_logged(
        tmp_path: Path, dovecot: Dovecot, released: SmtpRecorder) -> None:
    """The request is cancelled (the HTTP client went away) while the server holds the
    message; the server then accepts it: the send still marks it sent, copies it to
    Sent and logs it, and the spool is left empty (not a "being sent" entry that the
    next start would set aside, unlogged)."""
    recorder = released
    sender = await _sender(tmp_path, dovecot, recorder)
    subject = f"Offer {uuid.uuid4().hex}"
    try:
        sending = asyncio.create_task(sender.service.send(
            sender.portal_id, sender.user_id,
            SendRequest(to=("ann@hold.example",), subject=subject, text="Hi Ann")))
        await asyncio.to_thread(recorder.wait_holding)
        sending.cancel()
        await asyncio.sleep(0.2)
        recorder.release()
        with pytest.raises(asyncio.CancelledError):
            await sending

        [raw] = _received(recorder, subject)
        message_id = str(message_from_bytes(raw, policy=policy.default)["Message-ID"]).strip("<>")
        assert await logged(sender.runtime, message_id)
        assert sender.in_sent(message_id) == 1
        assert sender.spooled("*.sending") == [] and sender.spooled("*.pending") == []
        assert sender.spooled("unknown/*") == []
    finally:
        await sender.service.stop()
        await sender.runtime.close()


@pytest.mark.parametrize("failures", [1, 2], ids=["fails-once", "fails-twice"])
async def test_a_send_the_spool_cannot_mark_as_sent_never_claims_pending(
        tmp_path: Path, dovecot: Dovecot, released: SmtpRecorder, pg_url: str,
        failures: int) -> None:
    """The spool's rename to .pending fails (EIO, from a failing spool object) and
    PostgreSQL is cut off while the server holds the message. Failing once, the retry
    marks it and the answer's "pending" is true: logged once the database is back.
    Failing twice, the entry stays .sending, which no retry reads, so the answer says
    "failed" with the reason, never "pending"."""
    recorder = released
    sender = await _sender(tmp_path, dovecot, recorder, db_url=pg_url)
    spool = sender.service.spool
    real_mark_sent = spool.mark_sent
    calls = 0

    def mark_sent(path: Path) -> Path:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real_mark_sent(path)

    spool.mark_sent = mark_sent  # type: ignore[method-assign]
    try:
        sending = asyncio.create_task(sender.service.send(
            sender.portal_id, sender.user_id,
            SendRequest(to=("ann@hold.example",), subject="Our offer", text="Hi Ann")))
        await asyncio.to_thread(recorder.wait_holding)
        await postgres.set_available(pg_url, False)
        recorder.release()
        result: SendResult = await sending
        message_id = result.message_id
        assert len(_received(recorder, message_id)) == 1
        if failures == 1:
            assert (result.log, result.email_id) == ("pending", None)
            [pending] = sender.spooled("*.pending")
            assert message_id.encode() in pending.read_bytes()
        else:
            assert (result.log, result.email_id) == ("failed", None)
            assert "could not be kept to log later" in (result.log_reason or "")
            assert "database unavailable" in (result.log_reason or "")
            assert sender.spooled("*.pending") == []
            [left] = sender.spooled("*.sending")  # set aside at the next start
            assert message_id.encode() in left.read_bytes()
        await postgres.set_available(pg_url, True)
        if failures == 1:
            deadline = time.monotonic() + 20
            while not await logged(sender.runtime, message_id):
                assert time.monotonic() < deadline, "the pending send was never logged"
                await asyncio.sleep(0.1)
            await _wait_for("the spool is empty", lambda: not sender.spooled("*.pending"))
        else:
            assert not await logged(sender.runtime, message_id)
    finally:
        await postgres.set_available(pg_url, True)
        await sender.service.stop()
        await sender.runtime.close()


class _CutAfterSend:
    """The real connector; PostgreSQL is cut off as soon as a send returned (it was
    logged), before the endpoint reads the email back."""

    def __init__(self, service: InboxService, db_url: str) -> None:
        self.service, self.db_url = service, db_url

    async def send(self, portal_id: int, user_id: int, request: SendRequest) -> SendResult:
        result = await self.service.send(portal_id, user_id, request)
        await postgres.set_available(self.db_url, False)
        return result


async def test_a_logged_send_that_cannot_be_read_back_is_a_202_not_a_201_without_email(
        tmp_path: Path, dovecot: Dovecot, recorder: SmtpRecorder, pg_url: str) -> None:
    """Sent and logged, then the database goes before the email is read back for the
    answer: 202 with log "logged", the email_id, email null and a log_reason saying it
    cannot be read now; a 201 always carries its email (the document says so too)."""
    sender = await _sender(tmp_path, dovecot, recorder, db_url=pg_url)
    token = await user_token(sender.runtime, sender.inbox_id)
    try:
        async with _api(sender.runtime, _CutAfterSend(sender.service, pg_url), token) as api:
            document = await _document(api)
            response = await api.post(SEND, json={
                "to": ["ann@acme.example"], "subject": "Our offer", "text": "Hi Ann"})
        assert response.status_code == 202, response.text
        sent = response.json()
        check(document, SEND, "post", 202, sent)
        assert (sent["log"], sent["logged"], sent["email"]) == ("logged", True, None)
        assert sent["email_id"] is not None
        assert "cannot be read back" in sent["log_reason"]
        with pytest.raises(AssertionError):
            check(document, SEND, "post", 201, sent)  # a 201 without its email
        await postgres.set_available(pg_url, True)
        assert await logged(sender.runtime, sent["message_id"])
    finally:
        await postgres.set_available(pg_url, True)
        await sender.service.stop()
        await sender.runtime.close()
