"""Retention: which raw copies are kept beside logged email, and purging what expired.

Rules, per portal (SPEC "Retention"):

=====================  ==============================================  ==================
rule                   what                                            kept
=====================  ==============================================  ==================
sync_headers           raw headers of synced inbox mail                7 days
extension_full         full raw copy of extension-logged email         1 day
crm_send_headers       raw headers of email sent via a connected inbox 1 year
header_metadata        raw headers of one-to-one email (BCC, forward,  current and previous
                       forwarding rule)                                calendar month
deleted_emails         an email deleted by a user, restorable          90 days
ingest_log             audit entries of mail not logged               30 days
acknowledgements       a team inbox's acknowledgement (its recipient   7 days after it
                       and whole message), once sent or given up       was settled
web_links              sign-in, reset, invitation and set-up links     until spent or
                       (extension codes: a second lifetime past their  expired
                       expiry, so a replay is still recognised)
web_sessions           signed-in browsers                              until they end
=====================  ==============================================  ==================

The logged email itself (what a timeline shows) stays until a user deletes it. Blobs
no attachment or raw copy uses any more are removed last, file and row together.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import extension_grants, sessions, web_accounts
from core.storage.blobs import BlobStore
from core.storage.db import Database
from core.storage.models import (
    AcknowledgementOutbox,
    Attachment,
    Blob,
    Email,
    IngestLogEntry,
    RawCopy,
    Thread,
    TrackedSend,
)
from core.types import Source


class RawRule(enum.StrEnum):
    SYNC_HEADERS = "sync_headers"
    EXTENSION_FULL = "extension_full"
    CRM_SEND_HEADERS = "crm_send_headers"
    HEADER_METADATA = "header_metadata"


@dataclass(frozen=True)
class RawPolicy:
    rule: RawRule
    full: bool  # the whole message, or only its header block


RAW_POLICY: dict[Source, RawPolicy] = {
    Source.SYNC: RawPolicy(RawRule.SYNC_HEADERS, full=False),
    Source.EXTENSION: RawPolicy(RawRule.EXTENSION_FULL, full=True),
    Source.CRM_SEND: RawPolicy(RawRule.CRM_SEND_HEADERS, full=False),
    Source.BCC: RawPolicy(RawRule.HEADER_METADATA, full=False),
    Source.FORWARD: RawPolicy(RawRule.HEADER_METADATA, full=False),
    Source.RULE: RawPolicy(RawRule.HEADER_METADATA, full=False),
    Source.TEAM_INBOX: RawPolicy(RawRule.HEADER_METADATA, full=False),
}

DELETED_EMAIL_DAYS = 90
INGEST_LOG_DAYS = 30
ACKNOWLEDGEMENT_DAYS = 7  # after it was sent or given up (unsent rows are still due)


def _start_of_previous_month(now: datetime) -> datetime:
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


RAW_CUTOFF: dict[RawRule, Callable[[datetime], datetime]] = {
    RawRule.SYNC_HEADERS: lambda now: now - timedelta(days=7),
    RawRule.EXTENSION_FULL: lambda now: now - timedelta(days=1),
    RawRule.CRM_SEND_HEADERS: lambda now: now - timedelta(days=365),
    RawRule.HEADER_METADATA: _start_of_previous_month,
}


def restorable_until(deleted_at: datetime) -> datetime:
    return deleted_at + timedelta(days=DELETED_EMAIL_DAYS)


# Rows removed per write transaction by the purge: the write lock (on SQLite, every
# tenant's mail waits on it) is held for one chunk, however much has expired.
PURGE_CHUNK = 500


async def yield_write_lock(started: float) -> None:
    """Between two chunks, leave the write lock free as long as the last one (begun at
    ``started``, monotonic) held it: a writer in another process, whose SQLite busy
    wait polls every 25-100 ms, gets its turn instead of losing each race to the next
    chunk (measured: a 1.9 s stall of another portal's mail during a purge without)."""
    await asyncio.sleep(time.monotonic() - started)


async def purge_expired(db: Database, now: datetime) -> dict[str, int]:
    """Delete what every rule says has expired at ``now``; counts per rule.

    In write transactions of at most ``PURGE_CHUNK`` rows each (deleted emails: per
    portal); a crash part-way leaves less to do at the next run. Blob files are not
    touched here: see ``remove_orphan_blobs``, which runs after this.
    """
    counts: dict[str, int] = {}
    for rule, cutoff in RAW_CUTOFF.items():
        counts[rule.value] = await _delete_in_chunks(
            db, RawCopy, RawCopy.rule == rule.value, RawCopy.created_at < cutoff(now))
    counts["deleted_emails"] = await _purge_deleted_emails(
        db, now - timedelta(days=DELETED_EMAIL_DAYS))
    counts["ingest_log"] = await _delete_in_chunks(
        db, IngestLogEntry, IngestLogEntry.at < now - timedelta(days=INGEST_LOG_DAYS))
    settled = now - timedelta(days=ACKNOWLEDGEMENT_DAYS)
    counts["acknowledgements"] = await _delete_in_chunks(
        db, AcknowledgementOutbox,
        or_(AcknowledgementOutbox.sent_at < settled, AcknowledgementOutbox.given_up_at < settled))
    async with db.transaction() as session:
        counts["web_links"] = (await web_accounts.purge_ended_links(session, now)
                               + await extension_grants.purge_spent_codes(session, now))
        counts["web_sessions"] = await sessions.purge_ended(session, now)
    return counts


_Chunked = type[RawCopy] | type[IngestLogEntry] | type[AcknowledgementOutbox]


async def _delete_in_chunks(db: Database, model: _Chunked, *where: ColumnElement[bool]) -> int:
    removed = after = 0
    while True:  # onwards from the last chunk's key: the whole table is walked once
        started = time.monotonic()
        async with db.transaction() as session:
            ids = list(await session.scalars(select(model.id).where(model.id > after, *where)
                                             .order_by(model.id).limit(PURGE_CHUNK)))
            if ids:
                await session.execute(delete(model).where(model.id.in_(ids)))
        removed += len(ids)
        if len(ids) < PURGE_CHUNK:
            return removed
        after = ids[-1]
        await yield_write_lock(started)


async def _purge_deleted_emails(db: Database, deleted_before: datetime) -> int:
    expired = (Email.deleted_at.is_not(None), Email.deleted_at < deleted_before)
    async with db.read() as session:
        portals = list((await session.scalars(
            select(Email.portal_id).where(*expired).distinct())).all())
    removed = 0
    for portal_id in portals:
        after = 0
        while True:
            started = time.monotonic()
            async with db.transaction() as session:
                ids = list((await session.scalars(
                    select(Email.id).where(Email.portal_id == portal_id, Email.id > after,
                                           *expired)
                    .order_by(Email.id).limit(PURGE_CHUNK))).all())
                removed += await delete_emails(session, ids)
            if len(ids) < PURGE_CHUNK:
                break
            after = ids[-1]
            await yield_write_lock(started)
    return removed


async def delete_emails(session: AsyncSession, email_ids: list[int]) -> int:
    """Remove emails for good (their links, attachments rows, raw copies and events go
    with them by cascade, and their tracked sends), and the threads they leave empty."""
    if not email_ids:
        return 0
    thread_ids = set((await session.scalars(
        select(Email.thread_id).where(Email.id.in_(email_ids)))).all())
    for start in range(0, len(email_ids), 500):
        # A tracked send goes with its logged email (its links then answer 404 for good).
        await session.execute(delete(TrackedSend).where(
            TrackedSend.email_id.in_(email_ids[start:start + 500])))
        await session.execute(delete(Email).where(Email.id.in_(email_ids[start:start + 500])))
    if thread_ids:
        await session.execute(delete(Thread).where(
            Thread.id.in_(thread_ids), ~exists().where(Email.thread_id == Thread.id)))
    return len(email_ids)


# True for a blob row that an attachment or a raw copy still points at.
_BLOB_IN_USE = or_(exists().where(Attachment.blob_sha256 == Blob.sha256),
                   exists().where(RawCopy.blob_sha256 == Blob.sha256))


async def orphan_blobs(session: AsyncSession, limit: int = 10_000) -> list[str]:
    rows = await session.scalars(
        select(Blob.sha256).where(~_BLOB_IN_USE).limit(limit))
    return list(rows)


async def remove_orphan_blobs(db: Database, blobs: BlobStore) -> int:
    """Delete blobs nothing references, each in a transaction that locks its row.

    The lock orders this against an ingest adding the same content: the ingest either
    sees the row gone and writes the file anew, or its attachment's foreign key waits
    for this transaction and is retried. A file is unlinked only while its row is
    locked and unreferenced.
    """
    async with db.read() as session:
        candidates = await orphan_blobs(session)
    removed = 0
    for digest in candidates:
        async with db.transaction() as session:
            locked = await session.scalar(
                select(Blob.sha256).where(Blob.sha256 == digest, ~_BLOB_IN_USE)
                .with_for_update())
            if locked is None:
                continue
            await blobs.delete(digest)
            await session.execute(delete(Blob).where(Blob.sha256 == digest))
            removed += 1
    return removed


# A blob file this young may belong to a transaction still under way.
STRAY_FILE_SECONDS = 3600


async def remove_stray_files(db: Database, blobs: BlobStore,
                             min_age: float = STRAY_FILE_SECONDS) -> int:
    """Delete blob files that have no blob row: written for a transaction that then
    failed or never committed (a crash, a dead database).

    Each is removed in a transaction that first claims its digest with a row of its
    own, then rolls back: an ingest storing the same content right now holds that key
    (PostgreSQL makes the claim wait for it, then fail), or on SQLite cannot be
    writing at all; one that comes later finds no file and writes it anew.
    """
    async def known(digests: list[str]) -> set[str]:
        async with db.read() as session:
            return set(await session.scalars(select(Blob.sha256).where(
                Blob.sha256.in_(digests))))

    files = await asyncio.to_thread(lambda: list(blobs.files_older_than(min_age)))
    strays: list[str] = []
    for start in range(0, len(files), 500):
        batch = files[start:start + 500]
        have = await known(batch)
        strays += [d for d in batch if d not in have]
    removed = 0
    for digest in strays:
        try:
            async with db.transaction() as session:
                session.add(Blob(sha256=digest, size=0))
                await session.flush()
                await blobs.delete(digest)
                removed += 1
                raise _ClaimReleased
        except _ClaimReleased:
            pass
        except IntegrityError:
            continue  # stored for real meanwhile
    return removed


class _ClaimReleased(Exception):
    """Rolls back the row that claimed a stray file's digest while it was removed."""


async def purge(db: Database, blobs: BlobStore, now: datetime | None = None) -> dict[str, int]:
    """Apply every retention rule at ``now`` (default: the current time)."""
    counts = await purge_expired(db, now or datetime.now(UTC))
    counts["blobs"] = await remove_orphan_blobs(db, blobs)
    counts["blobs"] += await remove_stray_files(db, blobs)
    return counts
