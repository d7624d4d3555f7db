"""Logging CRM sends (source ``crm_send``): right after the SMTP server accepted one,
or later from the send spool when the database could not take it then.

A later attempt at a message already logged is a ``duplicate`` outcome, never a second
email: Message-ID is the idempotency key. So the spool file is removed only after the
log committed, and a crash between the two costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from core import pipeline
from core.errors import CoreError, StorageUnavailable
from core.runtime import Runtime
from core.storage.models import TrackedSend, utcnow
from core.types import Channel, Envelope, Source
from inbox_sync.spool import SendSpool, SpooledSend

log = logging.getLogger(__name__)


async def log_sent(runtime: Runtime, entry: SpooledSend,
                   prepared: pipeline.Prepared | None = None) -> pipeline.IngestResult:
    """Log one sent message; ``prepared`` saves parsing it again. Then its tracked send,
    which the pipeline linked to the email by its pixel, is marked sent (a retry after
    a crash in between is a duplicate that marks it).

    Raises StorageUnavailable when the database is down, CoreError when it can never be
    logged (its portal is gone, it is refused).
    """
    envelope = Envelope(on_behalf_of=entry.user_email, source_hint=Source.CRM_SEND)
    results = await pipeline.log_message(
        runtime, prepared or entry.raw,
        pipeline.Arrival.for_portal(Channel.CRM_SEND, entry.portal_id, envelope))
    result = results.only()
    if entry.tracked_send_id is not None:
        async with runtime.db.transaction() as session:
            tracked = await session.get(TrackedSend, entry.tracked_send_id)
            if tracked is not None and tracked.sent_at is None:
                tracked.sent_at = utcnow()
    return result


class PendingLogs:
    """Logs the spool's sent-but-not-logged messages in the background: at start-up,
    when woken (a send could not log), and every ``scan_every`` seconds; while the
    database is down, with exponential backoff from ``first`` to ``most`` seconds."""

    def __init__(self, runtime: Runtime, spool: SendSpool, busy: Callable[[Path], bool], *,
                 first: float, most: float, scan_every: float) -> None:
        self.runtime, self.spool = runtime, spool
        self.busy = busy  # a send in progress is logging this file itself
        self.first, self.most, self.scan_every = first, most, scan_every
        self.wake = asyncio.Event()

    async def run_once(self) -> bool:
        """Try every pending message once; True when none is left to retry."""
        clean = True
        for path in await asyncio.to_thread(self.spool.pending):
            if self.busy(path):
                continue
            try:
                entry = await asyncio.to_thread(self.spool.read, path)
            except FileNotFoundError:
                continue  # logged meanwhile
            except (OSError, ValueError, KeyError) as exc:
                log.error("send spool: %s is unreadable (%s); moved aside", path.name, exc)
                await asyncio.to_thread(self.spool.set_aside, path)
                continue
            try:
                result = await log_sent(self.runtime, entry)
            except StorageUnavailable:
                return False  # the database is still down: the rest would fail the same way
            except CoreError as exc:
                log.warning("send spool: <%s> can never be logged: %s", entry.message_id,
                            exc.message)
            except Exception:
                log.exception("send spool: logging <%s> failed; will retry", entry.message_id)
                clean = False
                continue
            else:
                log.info("send spool: <%s> %s", entry.message_id, result.outcome)
            await asyncio.to_thread(self.spool.remove, path)
        return clean

    async def run_forever(self) -> None:
        delay = self.first
        while True:
            self.wake.clear()
            try:
                clean = await self.run_once()
            except OSError:
                log.exception("send spool: cannot read the spool directory")
                clean = False
            if clean:
                delay, wait = self.first, self.scan_every
            else:
                wait, delay = delay, min(delay * 2, self.most)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
