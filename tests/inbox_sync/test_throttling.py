"""Provider throttling against a real limit: Dovecot's mail_max_userip_connections.

This Dovecot allows one connection per user and IP, and refuses the next with
``NO [LIMIT] Maximum number of connections from user+IP exceeded``, as providers cap
concurrent IMAP connections (Gmail at 15). The user's own mail client holds the one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from core.storage.models import Event
from inbox_sync.service import InboxService, ServiceOptions
from tests.inbox_sync.conftest import Mailbox, new_mailbox
from tests.inbox_sync.inprocess import LOOPBACK, PASSWORD, inbox_row, logged, setup_inbox
from tests.support.dovecot import Dovecot
from tests.support.mail import message
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture(scope="module")
def limited() -> Iterator[Dovecot]:
    running = Dovecot([], [], max_userip_connections=1).start()
    yield running
    running.stop()


def _hold(dovecot: Dovecot, address: str, password: str, within: float = 10) -> IMAPClient:
    """The user's own mail client, logged in: it takes the one connection allowed.
    Retried for a moment, since a session just ended may still count."""
    deadline = time.monotonic() + within
    while True:
        client = IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10)
        try:
            client.login(address, password)
            return client
        except Exception:
            client.shutdown()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _take_over(dovecot: Dovecot, address: str, password: str) -> IMAPClient:
    """End the user's sessions and hold the one connection allowed, until Dovecot counts
    that one alone: its count lags the sessions (it is told of them asynchronously),
    so a worker reconnecting at that moment can slip in beside it on a busy machine."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        dovecot.kick(address)
        try:
            holder = _hold(dovecot, address, password, within=1)
        except Exception:
            continue  # the worker was back first: end its session again
        time.sleep(0.2)
        if dovecot.sessions(address) == 1:
            return holder
        holder.logout()
    raise AssertionError("never held the only connection")


def _let_go(dovecot: Dovecot, holder: IMAPClient, address: str) -> None:
    """The user's client logs out; return once Dovecot no longer counts its session.
    (Dovecot hears of the end a moment later: a login just after the logout could
    still be refused [LIMIT].) The limit is one, so the user's sessions counted now are
    the holder's alone."""
    held = dovecot.session_pids(address)
    holder.logout()
    dovecot.wait_ended(address, held)


def _refusals(dovecot: Dovecot, address: str) -> int:
    """How many logins Dovecot refused for one connection too many."""
    return sum(1 for line in dovecot.log().splitlines()
               if "Maximum number of connections" in line and f"user=<{address}>" in line)


def test_connect_and_sync_say_throttled_and_recover(
        limited: Dovecot, recorder: SmtpRecorder, inbox_server: Server) -> None:
    """Connecting while the user's client holds the only connection answers 429
    throttled with the provider's words; a sync refused the same way marks the inbox
    throttled, not disconnected; once the connection is free both work."""
    mailbox: Mailbox = new_mailbox(limited, recorder, inbox_server)
    holder = _hold(limited, mailbox.address, mailbox.password)
    try:
        response = mailbox.post("/api/v1/inboxes", mailbox.connect_body())
        assert response.status_code == 429, response.text
        assert response.headers["Retry-After"]
        error = response.json()["error"]
        assert error["code"] == "throttled" and "[LIMIT]" in error["message"]
        assert mailbox.get("/api/v1/inboxes")["items"] == []
    finally:
        _let_go(limited, holder, mailbox.address)

    inbox = mailbox.connect()  # the background worker now holds the one connection
    first = mailbox.seed_thread()
    reply = f"<{uuid.uuid4().hex}@mail.test>"
    # inboxlog's connection ends (the provider restarts, say) and the user's client
    # takes the free one before inboxlog's worker is back (it waits 5 s first).
    holder = _take_over(limited, mailbox.address, mailbox.password)
    try:
        holder.append("INBOX", message(sender="ann@acme.example", to=mailbox.address,
                                       message_id=reply, in_reply_to=first).as_bytes())
        response = mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "throttled"
        state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
        assert state["status"] == "throttled" and "[LIMIT]" in state["status_reason"]
    finally:
        _let_go(limited, holder, mailbox.address)

    response = mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync")
    assert response.status_code == 200, response.text
    assert mailbox.get(f"/api/v1/inboxes/{inbox['id']}")["status"] == "connected"
    assert len(mailbox.find(reply)) == 1
    events = mailbox.get("/api/v1/events", after=0)["items"]
    assert not [e for e in events if e["type"] == "inbox_disconnected"]


async def test_a_throttled_worker_backs_off_and_is_never_disconnected(
        tmp_path: Path, limited: Dovecot) -> None:
    """The background worker, refused with [LIMIT], sets the inbox throttled, retries
    with growing pauses (not in a tight loop), is not disconnected even with
    disconnect_after 0, and syncs as soon as the connection is free."""
    runtime, inbox_id, address, seed = await setup_inbox(tmp_path, limited)
    reply = uuid.uuid4().hex + "@mail.test"
    holder = _hold(limited, address, PASSWORD)
    holder.append("INBOX", message(sender="ann@acme.example", to=address,
                                   message_id=f"<{reply}>", in_reply_to=seed).as_bytes())
    service = InboxService(runtime, ServiceOptions(backoff_first=0.2, backoff_max=30,
                                                   disconnect_after=timedelta(0),
                                                   destinations=LOOPBACK))
    try:
        await service.start()
        deadline = time.monotonic() + 10
        while (await inbox_row(runtime, inbox_id)).status != "throttled":
            assert time.monotonic() < deadline, "the inbox never became throttled"
            await asyncio.sleep(0.05)
        assert "[LIMIT]" in (await inbox_row(runtime, inbox_id)).status_reason
        before = _refusals(limited, address)
        await asyncio.sleep(2.5)
        # Pauses of 0.2, 0.4, 0.8, 1.6 s: a few attempts, not one every 0.2 s.
        retries = _refusals(limited, address) - before
        assert 1 <= retries <= 4, retries
        assert (await inbox_row(runtime, inbox_id)).status == "throttled"

        holder.logout()
        deadline = time.monotonic() + 30
        while (await inbox_row(runtime, inbox_id)).status != "connected":
            assert time.monotonic() < deadline, "the worker never got back to sync"
            await asyncio.sleep(0.1)
        assert await logged(runtime, reply)
        async with runtime.db.read() as session:
            events = await session.scalar(select(func.count()).select_from(Event).where(
                Event.type == "inbox_disconnected"))
        assert events == 0
    finally:
        await service.stop()
        await runtime.close()
        with contextlib.suppress(Exception):
            holder.logout()
