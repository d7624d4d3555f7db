"""Mail that reaches INBOX after the background sync read it and before IDLE began is
synced at once (IDLE announces only later changes): as when a node takes an inbox over
while a reply arrives."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from inbox_sync import sync
from inbox_sync.service import InboxService, ServiceOptions
from tests.inbox_sync.inprocess import LOOPBACK, PASSWORD, logged, setup_inbox
from tests.support.dovecot import Dovecot
from tests.support.mail import message


async def test_a_reply_arriving_between_sync_and_idle_is_synced_at_once(
        tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first background sync ends, a reply lands before IDLE starts: it is logged
    within seconds, not after the 25-minute IDLE."""
    runtime, _inbox, address, seed = await setup_inbox(tmp_path, dovecot)
    reply = uuid.uuid4().hex + "@mail.test"
    real_sync = sync.sync_inbox
    calls = 0

    def append_reply() -> None:
        with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
            client.login(address, PASSWORD)
            client.append("INBOX", message(sender="ann@acme.example", to=address,
                                           message_id=f"<{reply}>",
                                           in_reply_to=seed).as_bytes())

    async def sync_then_a_reply(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        report = await real_sync(*args, **kwargs)
        calls += 1
        if calls == 1:
            await asyncio.to_thread(append_reply)
        return report

    monkeypatch.setattr(sync, "sync_inbox", sync_then_a_reply)
    service = InboxService(runtime, ServiceOptions(destinations=LOOPBACK))
    try:
        await service.start()
        deadline = time.monotonic() + 15
        while not await logged(runtime, reply):
            assert time.monotonic() < deadline, "the reply waited for the IDLE to end"
            await asyncio.sleep(0.05)
        while calls < 2:  # the sync that logged it is ending
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # and no sync loop: the next one waits for news
        assert calls == 2
    finally:
        await service.stop()
        await runtime.close()
