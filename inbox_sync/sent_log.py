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

from sqlalchemy.ext.asyncio import AsyncSession

from core import pipeline
from core.errors import CoreError, StorageUnavailable
from core.runtime import Runtime
from core.storage.models import Portal, TrackedSend, utcnow
from core.types import Envelope, Source
from inbox_sync.spool import SendSpool, SpooledSend

log = logging.getLogger(__name__)


async def log_sent(runtime: Runtime, entry: SpooledSend,
                   prepared: pipeline.Prepared | None = None) -> pipeline.IngestResult:
    """Log one sent message in its own transaction; ``prepared`` saves parsing it again.

    Raises StorageUnavailable when the database is down, CoreError when it can never be
    logged (its portal is gone).
    """
    prepared = prepared or await pipeline.prepare(
        entry.raw, spool_dir=runtime.blobs.spool_dir())
    envelope = Envelope(on_behalf_of=entry.user_email, source_hint=Source.CRM_SEND)

    async def work(session: AsyncSession) -> pipeline.IngestResult:
        portal = await session.get(Portal, entry.portal_id)
        if portal is None:
            raise CoreError(f"portal {entry.portal_id} is gone")
        result = await pipeline.ingest(session, portal=portal, prepared=prepared,
                                       envelope=envelope, blobs=runtime.blobs,
                                       bcc_domain=runtime.settings.bcc_domain)
        # The pipeline linked the tracked send to this email by its pixel.
        if entry.tracked_send_id is not None:
            tracked = await session.get(TrackedSend, entry.tracked_send_id)
            if tracked is not None and tracked.sent_at is None:
                tracked.sent_at = utcnow()
        return result

    return await runtime.db.run(work)


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
