"""Incremental, resumable sync of one mailbox's INBOX and Sent folders.

Per folder: UIDs past the checkpoint (``last_uid`` under ``uidvalidity``) are read in
batched UID ranges. For each batch the header blocks are fetched and shown to
``core.admission`` (its pre-filter, then ``admit``); bodies are fetched only for the
messages that will be logged, and each goes through ``pipeline.log_message`` in its own
transaction (Message-ID makes that idempotent). The checkpoint moves after every batch,
so a crash redoes at most one batch and logs nothing twice. Memory is bounded by the
batch size, not the folder size.

A team inbox's mailbox (``Inbox.team_inbox_id``, support@) is synced the same way, with
the other selection of a shared address: every INBOX message goes to the team inbox's
intake (``core.tickets.intake``: tickets opened, continued, loops recognised, as for
forwarded mail), its envelope tagged ``inbox-<id>`` as a forward to the team inbox's
address is. In Sent, what is already logged is recognised (the copies of replies sent
from inboxlog); mail an agent sent from the mailbox itself (Outlook on support@) that
answers a ticket's thread (``intake.answered_ticket``, from its headers) is fetched and
logged on that ticket as an agent reply; anything else is not fetched. A Message-ID
already logged is never fetched again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import inboxes, pipeline
from core.admission import Admission, admit
from core.errors import CoreError, MessageTooLarge, SenderNotAllowed
from core.inboxes import FolderReport, InboxError, SyncReport
from core.mail.parsing import parse_message
from core.preparation import Candidate
from core.runtime import Runtime
from core.storage.models import Email, Inbox, InboxFolder, Portal, TeamInbox, User, utcnow
from core.sync_filter import worth_admitting
from core.tickets import intake
from core.types import (
    Channel,
    Envelope,
    FolderRole,
    InboxStatus,
    IngestOutcome,
    Source,
)
from inbox_sync.errors import connection_ended
from inbox_sync.folders import sync_targets
from inbox_sync.imap import Header, ImapSession

log = logging.getLogger(__name__)

BATCH_UIDS = 500
# Bodies fetched per round trip: at most this many, and about this many bytes.
BODY_BATCH = 25
BODY_BATCH_BYTES = 20 * 1024 * 1024

@dataclass(frozen=True)
class SyncOptions:
    batch_uids: int = BATCH_UIDS
    # Test hook: called after each committed batch (a crash there must lose nothing).
    after_batch: Callable[[str, int], None] | None = None


async def sync_inbox(runtime: Runtime, inbox_id: int, imap: ImapSession,
                     options: SyncOptions | None = None) -> SyncReport:
    """Sync INBOX and Sent once. A folder that fails is reported and skipped; a lost
    connection (InboxError ``unreachable``, ``throttled``) or a server breaking a limit
    (``remote_protocol_violation``, also when the run exceeds its byte or time budget)
    stops the whole run."""
    with imap.sync_budget():
        return await _sync_inbox(runtime, inbox_id, imap, options or SyncOptions())


async def _sync_inbox(runtime: Runtime, inbox_id: int, imap: ImapSession,
                      options: SyncOptions) -> SyncReport:
    async with runtime.db.read() as session:
        inbox = await session.get(Inbox, inbox_id)
        if inbox is None:
            raise CoreError(f"inbox {inbox_id} is gone")
        window = inbox.first_sync_days
        team = _TeamMailbox(inbox.team_inbox_id, inbox.address) if (
            inbox.team_inbox_id is not None) else None
        user = None if inbox.user_id is None else await session.get(User, inbox.user_id)
        assert user is not None or team is not None
        user_address = user.email if user is not None else inbox.address
    targets = sync_targets(await imap.run(imap.folders))
    report = SyncReport(inbox_id, InboxStatus.CONNECTED)
    for role in (FolderRole.INBOX, FolderRole.SENT):
        target = targets.get(role)
        if target is None:
            report.folders.append(FolderReport(role, "", error=f"no {role} folder found"))
            continue
        folder_report = FolderReport(role, target.name)
        report.folders.append(folder_report)
        async with runtime.db.transaction() as session:
            checkpoint = await inboxes.folder_checkpoint(session, inbox_id, role, target.name)
            checkpoint_id = checkpoint.id
        try:
            await _sync_folder(runtime, inbox_id, checkpoint_id, imap, user_address, window,
                               folder_report, options, team)
            error = ""
        except InboxError as exc:
            if connection_ended(exc):
                raise
            error = exc.message
        except CoreError as exc:
            error = exc.message
        if error:
            log.warning("inbox %d: folder %s failed: %s", inbox_id, target.name, error)
            folder_report.error = error
        async with runtime.db.transaction() as session:
            row = await session.get(InboxFolder, checkpoint_id)
            if row is not None:
                row.error = error
    async with runtime.db.transaction() as session:
        row_inbox = await inboxes.note_synced(session, inbox_id)
        if row_inbox is not None:
            report.status = InboxStatus(row_inbox.status)
    return report


@dataclass(frozen=True)
class _TeamMailbox:
    """The team inbox a mailbox is synced into, and the mailbox's address."""

    team_inbox_id: int
    address: str

    def envelope(self) -> Envelope:
        return Envelope(rcpt_tos=(self.address,), logging_address=self.address,
                        source_hint=Source.SYNC, tags=(f"inbox-{self.team_inbox_id}",))


async def _sync_folder(runtime: Runtime, inbox_id: int, checkpoint_id: int, imap: ImapSession,
                       user_address: str, window_days: int, report: FolderReport,
                       options: SyncOptions, team: _TeamMailbox | None = None) -> None:
    async with runtime.db.read() as session:
        checkpoint = await session.get(InboxFolder, checkpoint_id)
        assert checkpoint is not None
    state = await imap.run(imap.examine, checkpoint.name)
    last_uid = checkpoint.last_uid
    first_scan = checkpoint.synced_at is None or checkpoint.uidvalidity != state.uidvalidity
    if checkpoint.uidvalidity != state.uidvalidity:
        last_uid = 0  # the server renumbered the folder: start over (logging is idempotent)
    elif (state.highest_modseq is not None and state.highest_modseq == checkpoint.highest_modseq
          and checkpoint.synced_at is not None):
        report.last_uid = last_uid  # CONDSTORE: nothing changed since last time
        return
    high = state.uidnext - 1 if state.uidnext else await imap.run(imap.max_uid)
    since: date | None = (utcnow() - timedelta(days=window_days)).date() if first_scan else None
    for low in range(last_uid + 1, high + 1, options.batch_uids):
        top = min(low + options.batch_uids - 1, high)
        uids = await imap.run(imap.search_range, low, top, since)
        if uids and team is not None:
            await _sync_team_batch(runtime, inbox_id, imap, team, uids, report)
        elif uids:
            await _sync_batch(runtime, inbox_id, imap, user_address, uids, report)
        async with runtime.db.transaction() as session:
            row = await session.get(InboxFolder, checkpoint_id)
            assert row is not None
            row.uidvalidity, row.last_uid = state.uidvalidity, top
        report.last_uid = top
        if options.after_batch is not None:
            options.after_batch(report.role, top)
    async with runtime.db.transaction() as session:
        row = await session.get(InboxFolder, checkpoint_id)
        assert row is not None
        row.uidvalidity, row.last_uid = state.uidvalidity, max(high, last_uid)
        row.highest_modseq, row.synced_at = state.highest_modseq, utcnow()
    report.last_uid = max(high, last_uid)


async def _sync_batch(runtime: Runtime, inbox_id: int, imap: ImapSession, user_address: str,
                      uids: list[int], report: FolderReport) -> None:
    headers = await imap.run(imap.fetch_headers, uids)
    report.headers_fetched += len(headers)
    envelope = Envelope(on_behalf_of=user_address, source_hint=Source.SYNC)
    wanted = await _select(runtime, inbox_id, headers, envelope)
    await _log_in_rounds(runtime, inbox_id, imap, headers, wanted, envelope, report)


async def _log_in_rounds(runtime: Runtime, inbox_id: int, imap: ImapSession,
                         headers: list[Header], wanted: list[int], envelope: Envelope,
                         report: FolderReport) -> None:
    """Fetch and log the ``wanted`` UIDs' bodies in small rounds: memory stays bounded
    even when big messages qualify."""
    chunk: list[int] = []
    chunk_bytes = 0
    sizes = {h.uid: h.size for h in headers}
    for uid in wanted:
        chunk.append(uid)
        chunk_bytes += sizes[uid]
        if len(chunk) >= BODY_BATCH or chunk_bytes >= BODY_BATCH_BYTES:
            await _log_bodies(runtime, inbox_id, imap, chunk, envelope, report)
            chunk, chunk_bytes = [], 0
    if chunk:
        await _log_bodies(runtime, inbox_id, imap, chunk, envelope, report)


async def _sync_team_batch(runtime: Runtime, inbox_id: int, imap: ImapSession,
                           team: _TeamMailbox, uids: list[int], report: FolderReport) -> None:
    """A team mailbox's batch: INBOX's messages not logged yet all go to the team inbox
    (too large ones leave an ingest-log entry instead); Sent's are only recognised."""
    headers = [h for h in await imap.run(imap.fetch_headers, uids) if h.header]
    report.headers_fetched += len(headers)
    parsed = await asyncio.to_thread(lambda: [parse_message(h.header) for h in headers])
    ids = [p.message_id for p in parsed]
    answers: list[int] = []  # Sent: mail an agent sent from the mailbox itself
    async with runtime.db.read() as session:
        portal = await _portal(session, inbox_id)
        named = {i for i in ids if i}
        known = set(await session.scalars(select(Email.message_id).where(
            Email.portal_id == portal.id, Email.message_id.in_(named)))) if named else set()
        if report.role == FolderRole.SENT:
            desk = await session.get(TeamInbox, team.team_inbox_id)
            for header, message in zip(headers, parsed, strict=True):
                if (desk is not None and message.message_id not in known
                        and header.size <= pipeline.MAX_MESSAGE_BYTES
                        and await intake.answered_ticket(session, desk, message) is not None):
                    answers.append(header.uid)
    envelope = team.envelope()
    arrival = pipeline.Arrival.for_portal(Channel.SYNC, portal.id, envelope)
    wanted: list[int] = []
    for header, message_id in zip(headers, ids, strict=True):
        if message_id and message_id in known:
            report.already_logged += 1
        elif report.role != FolderRole.INBOX:
            continue  # Sent: only what answers a ticket (``answers``), logged below
        elif header.size > pipeline.MAX_MESSAGE_BYTES:
            await pipeline.record_oversized(
                runtime, arrival, header.size,
                headers=Candidate.of_headers(parse_message(header.header)),
                reason=f"{header.size} bytes: over the {pipeline.MAX_MESSAGE_BYTES}-byte "
                "limit, not fetched")
        else:
            wanted.append(header.uid)
    await _log_in_rounds(runtime, inbox_id, imap, headers, wanted, envelope, report)
    for low in range(0, len(answers), BODY_BATCH):
        await _log_sent_answers(runtime, portal.id, team.team_inbox_id, imap,
                                answers[low:low + BODY_BATCH], report)


async def _log_sent_answers(runtime: Runtime, portal_id: int, team_inbox_id: int,
                            imap: ImapSession, uids: list[int], report: FolderReport) -> None:
    """Log what agents sent from the team mailbox itself on the tickets it answers
    (``core.tickets.intake.log_mailbox_sent``), each in its own write."""
    bodies = await imap.run(imap.fetch_bodies, uids)
    report.bodies_fetched += len(bodies)
    for uid in uids:
        raw = bodies.pop(uid, b"")
        if not raw:
            continue
        try:
            prepared = await pipeline.prepare(raw, spool_dir=runtime.blobs.spool_dir())
        except MessageTooLarge:
            continue
        del raw

        async def work(session: AsyncSession,
                       prepared: pipeline.Prepared = prepared) -> pipeline.IngestResult:
            portal = await session.get(Portal, portal_id)
            desk = await session.get(TeamInbox, team_inbox_id)
            if portal is None or desk is None:
                raise CoreError(f"team inbox {team_inbox_id} is gone")
            return await intake.log_mailbox_sent(session, portal=portal, inbox=desk,
                                                 prepared=prepared, blobs=runtime.blobs)

        result = await runtime.db.run(work)
        if result.outcome is IngestOutcome.LOGGED:
            report.logged += 1
        elif result.outcome is IngestOutcome.DUPLICATE:
            report.already_logged += 1


async def _select(runtime: Runtime, inbox_id: int, headers: list[Header],
                  envelope: Envelope) -> list[int]:
    """UIDs whose message will be logged, decided from the headers alone, by core: the
    pre-filter (``sync_filter.worth_admitting``), then ``admit`` for those it leaves.

    A message that would be logged but is over the size limit is not fetched; it leaves
    an audit entry instead, so its absence can be explained.
    """
    wanted: list[int] = []
    too_large: list[tuple[Header, Admission]] = []
    headers = [h for h in headers if h.header]
    async with runtime.db.read() as session:
        portal = await _portal(session, inbox_id)
        worth = await worth_admitting(session, portal, [h.header for h in headers])
        candidates = [h for h, keep in zip(headers, worth, strict=True) if keep]
        parsed = await asyncio.to_thread(
            lambda: [(h, parse_message(h.header)) for h in candidates])
        for header, message in parsed:
            try:
                admission = await admit(session, portal, Candidate.of_headers(message),
                                        envelope, runtime.settings.bcc_domain)
            except SenderNotAllowed:
                continue
            if admission.will_log and header.size > pipeline.MAX_MESSAGE_BYTES:
                too_large.append((header, admission))
            elif admission.will_log:
                wanted.append(header.uid)
    arrival = pipeline.Arrival.for_portal(Channel.SYNC, portal.id, envelope)
    for header, admission in too_large:
        await pipeline.record_oversized(
            runtime, arrival, header.size, headers=admission.chosen,
            reason=f"{header.size} bytes: over the {pipeline.MAX_MESSAGE_BYTES}-byte "
            "limit, not fetched")
    return wanted


async def _portal(session: AsyncSession, inbox_id: int) -> Portal:
    inbox = await session.get(Inbox, inbox_id)
    assert inbox is not None
    portal = await session.get(Portal, inbox.portal_id)
    assert portal is not None
    return portal


async def _log_bodies(runtime: Runtime, inbox_id: int, imap: ImapSession, uids: list[int],
                      envelope: Envelope, report: FolderReport) -> None:
    bodies = await imap.run(imap.fetch_bodies, uids)
    report.bodies_fetched += len(bodies)
    async with runtime.db.read() as session:
        portal_id = (await _portal(session, inbox_id)).id
    arrival = pipeline.Arrival.for_portal(Channel.SYNC, portal_id, envelope)
    for uid in uids:
        raw = bodies.pop(uid, b"")
        if not raw:
            continue
        results = await pipeline.log_message(runtime, raw, arrival)
        del raw
        [result] = results.each
        if isinstance(result, pipeline.Refused):
            continue  # too large after all, or no user's: the ingest log says which
        if result.outcome is IngestOutcome.LOGGED:
            report.logged += 1
        elif result.outcome is IngestOutcome.DUPLICATE:
            report.already_logged += 1
