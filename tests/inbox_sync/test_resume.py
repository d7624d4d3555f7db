"""In-process sync against Dovecot: a crash mid-sync resumes with no duplicates; an
unreachable server ends as a disconnected inbox."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.inboxes import Endpoint, InboxError
from core.storage.models import Email, Event, Inbox, InboxFolder
from inbox_sync import sync
from inbox_sync.imap import ImapSession
from inbox_sync.service import InboxService, ServiceOptions
from tests.inbox_sync.inprocess import LOOPBACK, setup_inbox
from tests.support.dovecot import Dovecot
from tests.support.mail import message
from tests.support.server import free_port


class Crash(Exception):
    pass


async def test_crash_mid_sync_resumes_without_duplicates(tmp_path: Path,
                                                         dovecot: Dovecot) -> None:
    """After a crash between batches, the next sync continues at the checkpoint and
    every reply is logged exactly once."""
    runtime, inbox_id, address, seed = await setup_inbox(tmp_path, dovecot)
    imap = ImapSession.open(Endpoint("127.0.0.1", dovecot.imap_port, "none"), address, "pw",
                            destinations=LOOPBACK)
    for n in range(5):
        imap.client.append("INBOX", message(
            sender="ann@acme.example", to=address, subject=f"Re: {n}",
            message_id=f"<reply-{n}-{uuid.uuid4().hex}@mail.test>", in_reply_to=seed,
        ).as_bytes())

    def crash_after_first(role: str, uid: int) -> None:
        if role == "inbox" and uid == 2:
            raise Crash

    try:
        with pytest.raises(Crash):
            await sync.sync_inbox(runtime, inbox_id, imap,
                                  sync.SyncOptions(batch_uids=2, after_batch=crash_after_first))
        async with runtime.db.read() as session:
            checkpoint = await session.scalar(select(InboxFolder).where(
                InboxFolder.inbox_id == inbox_id, InboxFolder.role == "inbox"))
            assert checkpoint is not None and checkpoint.last_uid == 2
        report = await sync.sync_inbox(runtime, inbox_id, imap, sync.SyncOptions(batch_uids=2))
        folder = next(f for f in report.folders if f.role == "inbox")
        assert folder.headers_fetched == 3 and folder.logged == 3 and folder.last_uid == 5
        again = await sync.sync_inbox(runtime, inbox_id, imap, sync.SyncOptions(batch_uids=2))
        assert next(f for f in again.folders if f.role == "inbox").headers_fetched == 0
        async with runtime.db.read() as session:
            count = await session.scalar(select(func.count()).select_from(Email))
        assert count == 6  # the seed and five replies, once each
    finally:
        imap.close()
        await runtime.close()


async def test_unreachable_server_is_disconnected_after_the_grace_time(
        tmp_path: Path, dovecot: Dovecot) -> None:
    """With disconnect_after elapsed, a refused connection marks the inbox disconnected
    and emits inbox_disconnected."""
    runtime, inbox_id, _address, _seed = await setup_inbox(tmp_path, dovecot, free_port())
    service = InboxService(runtime, ServiceOptions(background=False,
                                                   disconnect_after=timedelta(0),
                                                   destinations=LOOPBACK))
    try:
        async with runtime.db.read() as session:
            portal_id = (await session.get(Inbox, inbox_id)).portal_id  # type: ignore[union-attr]
        with pytest.raises(InboxError) as failure:
            await service.sync_now(portal_id, inbox_id)
        assert failure.value.code == "connection_refused"
        async with runtime.db.read() as session:
            inbox = await session.get(Inbox, inbox_id)
            assert inbox is not None and inbox.status == "disconnected"
            assert "unreachable since" in inbox.status_reason
            events = list(await session.scalars(select(Event).where(
                Event.type == "inbox_disconnected")))
            assert len(events) == 1 and events[0].detail["inbox_id"] == inbox_id
    finally:
        await service.stop()
        await runtime.close()
