"""Private storage steps of the pipeline: blobs, attachments, raw copies, tags, refs."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.mail.parsing import Part
from core.mail.spool import SpooledFile
from core.preparation import header_block_size
from core.retention import RawPolicy
from core.storage.blobs import BlobStore, blob_size, put_many, sha256_hex
from core.storage.models import (
    Attachment,
    Base,
    Blob,
    Company,
    Deal,
    Email,
    EmailCompany,
    EmailDeal,
    EmailTicket,
    RawCopy,
    ThreadRef,
    Ticket,
)
from core.types import BlobHash, MessageId

_TAG = re.compile(r"^(deal|company|ticket)-(\d{1,18})$")


async def store_blob(
    session: AsyncSession, blobs: BlobStore, data: bytes | SpooledFile,
    digest: BlobHash | None = None,
) -> BlobHash:
    """Reference ``data`` in the blob store within the caller's transaction.

    ``digest`` is ``data``'s sha256 when the caller has it (a parsed attachment's, hashed
    outside the transaction; a large one is on disk already and is only linked).
    The row goes first, then the file: an orphan sweep deleting the same blob holds the
    row locked while it unlinks, so this either waits for it and writes the file anew,
    or fails on the foreign key and is retried (see ``retention.remove_orphan_blobs``).
    """
    digest = digest or sha256_hex(data)
    if await session.get(Blob, digest) is None:
        session.add(Blob(sha256=digest, size=blob_size(data)))
        await session.flush()
    await blobs.put(data, digest)
    return digest


MAX_STORED_ATTACHMENTS = 100
"""Attachments stored per message; the rest are listed (name, size, type), not stored."""

MAX_LISTED_ATTACHMENTS = 500
"""Attachments listed per message, stored or not; past it a part is only counted in the
email's notes. Each row re-indexes the email's filenames for search (a trigger per row),
so the cost grows with the square of the rows: 3000 rows held everyone's commit 3.4 s,
500 hold it about 0.1 s."""


def attachments_note(count: int, keep_files: bool) -> str | None:
    """The email's note when some of its ``count`` attachments are not stored or not
    listed because of the caps above (None when none are)."""
    listed = min(count, MAX_LISTED_ATTACHMENTS)
    stored = min(count, MAX_STORED_ATTACHMENTS) if keep_files else 0
    said = []
    if keep_files and listed > stored:
        said.append(f"not stored past the first {stored}: {listed - stored} listed only")
    if count > listed:
        said.append(f"not listed past the first {listed}: {count - listed} more")
    return "attachments " + "; ".join(said) if said else None

_IN_CHUNK = 500  # digests per ``IN (...)``, under every SQLite's variable limit


async def store_blobs(
    session: AsyncSession, blobs: BlobStore, parts: tuple[Part, ...]
) -> None:
    """Reference the bodies of ``parts`` (hashed while parsing) within the caller's
    transaction: one read of which blobs exist, one insert of the new rows, then the
    files in one worker thread with one fsync per directory (not a flush and two fsyncs
    per part: the transaction is everyone's group commit). Rows first, then files, for
    the reason :func:`store_blob` gives.
    """
    if not parts:
        return
    unique = {part.sha256: part.body for part in parts}
    digests = list(unique)
    known: set[str] = set()
    for start in range(0, len(digests), _IN_CHUNK):
        known.update(await session.scalars(select(Blob.sha256).where(
            Blob.sha256.in_(digests[start:start + _IN_CHUNK]))))
    new = [Blob(sha256=d, size=blob_size(body)) for d, body in unique.items() if d not in known]
    if new:
        session.add_all(new)
        await session.flush()
    await put_many(blobs, [(body, digest) for digest, body in unique.items()])


async def store_attachments(
    session: AsyncSession, blobs: BlobStore, email: Email, parts: tuple[Part, ...],
    *, keep_files: bool,
) -> None:
    """Attach ``parts`` to ``email``; without ``keep_files`` they are listed, not stored,
    and past :data:`MAX_STORED_ATTACHMENTS` too; past :data:`MAX_LISTED_ATTACHMENTS`
    not listed either (:func:`attachments_note` says so, on a new email)."""
    kept = parts[:MAX_STORED_ATTACHMENTS] if keep_files else ()
    await store_blobs(session, blobs, kept)
    for index, part in enumerate(parts[:MAX_LISTED_ATTACHMENTS]):
        email.attachments.append(Attachment(
            filename=part.filename[:500], content_type=part.content_type[:200],
            size=part.size, sha256=part.sha256,
            blob_sha256=part.sha256 if index < len(kept) else None,
            inline=part.inline, content_id=part.content_id[:998] if part.content_id else None,
        ))


def header_block(raw: bytes) -> bytes:
    """The header block of a raw message, without the empty line that ends it."""
    return raw[: header_block_size(raw)]


async def store_raw_copy(
    session: AsyncSession, blobs: BlobStore, email_id: int, raw: bytes, policy: RawPolicy
) -> None:
    """Keep the raw message (or its headers) for as long as ``policy.rule`` allows.

    A header block (a few KB) goes in the row: a blob file would cost every logged
    message a file and two fsyncs. A whole message goes to the blob store.
    """
    if not policy.full:
        session.add(RawCopy(email_id=email_id, rule=policy.rule.value,
                            content=header_block(raw)))
        return
    digest = await store_blob(session, blobs, raw)
    session.add(RawCopy(email_id=email_id, rule=policy.rule.value, blob_sha256=digest))


_TAG_TARGETS: dict[str, tuple[type[Deal] | type[Company] | type[Ticket],
                              Callable[[int, int], Base]]] = {
    "deal": (Deal, lambda email_id, deal_id: EmailDeal(email_id=email_id, deal_id=deal_id)),
    "company": (Company, lambda email_id, company_id: EmailCompany(email_id=email_id,
                                                                   company_id=company_id)),
    "ticket": (Ticket, lambda email_id, ticket_id: EmailTicket(email_id=email_id,
                                                               ticket_id=ticket_id)),
}


async def associate(
    session: AsyncSession, portal_id: int, email_id: int, company_ids: set[int],
    tags: tuple[str, ...],
) -> None:
    """Link the email to its contacts' companies and to the objects named by
    ``+deal-<id>``/``+company-<id>``/``+ticket-<id>`` tags; unknown ids are ignored."""
    session.add_all(EmailCompany(email_id=email_id, company_id=cid) for cid in company_ids)
    for kind, object_id in sorted({
        (m.group(1), int(m.group(2))) for m in map(_TAG.match, (t.lower() for t in tags)) if m
    }):
        model, link = _TAG_TARGETS[kind]
        owner = await session.scalar(select(model.portal_id).where(model.id == object_id))
        if owner != portal_id or (kind == "company" and object_id in company_ids):
            continue
        session.add(link(email_id, object_id))


async def claim_refs(
    session: AsyncSession, portal_id: int, thread_id: int, ids: list[MessageId]
) -> None:
    """Make the thread claim these Message-IDs, except those another thread has."""
    ids = list(dict.fromkeys(ids))
    taken = set(await session.scalars(select(ThreadRef.message_id).where(
        ThreadRef.portal_id == portal_id, ThreadRef.message_id.in_(ids))))
    session.add_all(ThreadRef(portal_id=portal_id, message_id=m, thread_id=thread_id)
                    for m in ids if m not in taken)
