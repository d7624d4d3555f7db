"""The ingest pipeline: one raw message in, one logged email (or a reason why not) out.

``prepare`` parses outside any transaction (CPU work, run in a thread); ``ingest``
runs inside the caller's transaction: authorize the sender, find the direction,
deduplicate by Message-ID, thread, match contacts, store, emit a ``logged`` event.
It never commits: the entry point does, and only then acknowledges the message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, audit
from core._store import associate, claim_refs, store_attachments, store_raw_copy
from core.attachments import BlobStore
from core.audit import NotLoggedReason
from core.contacts import match_contacts
from core.errors import MessageTooLarge
from core.models import (
    Contact,
    Email,
    EmailContact,
    EmailSource,
    Event,
    Portal,
    Thread,
    ThreadRef,
    utcnow,
)
from core.parsing import ParsedMessage, parse_message, sanitize_html, synthetic_message_id
from core.retention import RAW_POLICY
from core.routing import Privacy, Route, contact_candidates, route
from core.threading import ThreadKey, base_subject, thread_keys
from core.types import Direction, Envelope, MessageId, Source, ThreadReason

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
# Python's header parser is quadratic in header size; refuse before parsing.
MAX_HEADER_BYTES = 256 * 1024


@dataclass(frozen=True)
class Prepared:
    """A message parsed and checked, ready for ``ingest``."""

    raw: bytes
    parsed: ParsedMessage
    message_id: MessageId
    synthetic_id: bool


@dataclass(frozen=True)
class IngestResult:
    """``outcome`` is ``logged``, ``duplicate`` (already logged: a source was added) or
    ``not_logged`` (accepted, deliberately not stored: see ``reason``)."""

    outcome: str
    email_id: int | None = None
    thread_id: int | None = None
    reason: str | None = None


def header_block_size(raw: bytes) -> int:
    """Bytes before the first empty line (the whole message when there is none)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def _prepare_sync(raw: bytes) -> Prepared:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    if header_block_size(raw[: MAX_HEADER_BYTES + 4]) > MAX_HEADER_BYTES:
        raise MessageTooLarge(f"header block exceeds {MAX_HEADER_BYTES} bytes")
    parsed = parse_message(raw)
    if parsed.message_id:
        return Prepared(raw, parsed, parsed.message_id, False)
    return Prepared(raw, parsed, synthetic_message_id(parsed), True)


async def prepare(raw: bytes) -> Prepared:
    """Check the size limits and parse, in a worker thread. Raises MessageTooLarge."""
    return await asyncio.to_thread(_prepare_sync, raw)


async def _find_thread(
    session: AsyncSession, portal_id: int, keys: list[ThreadKey]
) -> tuple[int, ThreadReason] | None:
    if not keys:
        return None
    rows = await session.execute(
        select(ThreadRef.message_id, ThreadRef.thread_id).where(
            ThreadRef.portal_id == portal_id,
            ThreadRef.message_id.in_([k.message_id for k in keys]),
        )
    )
    found = {message_id: thread_id for message_id, thread_id in rows}
    for key in keys:
        if key.message_id in found:
            return found[key.message_id], key.reason
    return None


async def _thread_contact_ids(session: AsyncSession, thread_id: int) -> set[int]:
    rows = await session.scalars(
        select(EmailContact.contact_id)
        .join(Email, Email.id == EmailContact.email_id)
        .where(Email.thread_id == thread_id)
    )
    return set(rows)


@dataclass(frozen=True)
class Admission:
    """Whether a message will be logged, decided from its headers alone.

    ``refusal`` is set when it will not be; ``existing`` when it is logged already.
    """

    route: Route
    existing: Email | None
    thread: tuple[int, ThreadReason] | None
    people: dict[str, str]
    refusal: tuple[NotLoggedReason, str] | None

    @property
    def will_log(self) -> bool:
        return self.refusal is None


async def admit(
    session: AsyncSession, portal: Portal, parsed: ParsedMessage, envelope: Envelope,
    bcc_domain: str, *, message_id: MessageId | None = None,
) -> Admission:
    """Decide, without storing anything, whether ``ingest`` would log this message.

    Needs only the headers, so a connected inbox can fetch bodies just for what will
    be logged. Raises SenderNotAllowed like ``ingest``.
    """
    users = await accounts.users_by_address(session, portal.id)
    how = route(parsed, envelope, users, inbox_log_mode=portal.inbox_log_mode)
    message_id = message_id or parsed.message_id
    existing = None if message_id is None else await session.scalar(
        select(Email).where(Email.portal_id == portal.id, Email.message_id == message_id))
    if existing is not None and existing.deleted_at is not None:
        return Admission(how, existing, None, {}, (
            NotLoggedReason.DELETED, "this message was deleted; restore it to see it again"))
    found = await _find_thread(session, portal.id, thread_keys(parsed))
    people, blocked = contact_candidates(parsed, how.direction, users, bcc_domain,
                                         portal.never_log)
    refusal = None if existing is not None else await _refusal(
        session, portal.id, how.privacy, found is not None, people, blocked)
    return Admission(how, existing, found, people, refusal)


async def _refusal(
    session: AsyncSession, portal_id: int, privacy: Privacy, in_thread: bool,
    people: dict[str, str], blocked: bool,
) -> tuple[NotLoggedReason, str] | None:
    """Why a new message must not be logged, or None."""
    if blocked and not people:
        return NotLoggedReason.NEVER_LOG, "on the never-log list"
    if in_thread or privacy is Privacy.NONE:
        return None
    if privacy is Privacy.THREAD_OR_CONTACT and people and await session.scalar(
            select(Contact.id).where(Contact.portal_id == portal_id,
                                     Contact.email.in_(people)).limit(1)) is not None:
        return None
    if privacy is Privacy.THREAD_OR_CONTACT:
        return NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread and no known contact"
    return NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread"


@dataclass
class _Ingest:
    """One ingest call's inputs, so the steps below need not pass them around."""

    session: AsyncSession
    portal: Portal
    prepared: Prepared
    envelope: Envelope
    blobs: BlobStore
    bcc_domain: str

    def not_logged(self, code: NotLoggedReason, reason: str, source: Source) -> IngestResult:
        parsed = self.prepared.parsed
        audit.record(
            self.session, self.portal.id, code, reason, source=source.value,
            logging_address=self.envelope.logging_address,
            sender=parsed.from_.key if parsed.from_ else None,
            envelope_sender=self.envelope.mail_from, message_id=self.prepared.message_id,
            size=len(self.prepared.raw),
        )
        return IngestResult("not_logged", reason=reason)

    async def add_source(self, email: Email, source: Source) -> None:
        if any(s.source == source for s in email.sources):
            return
        email.sources.append(EmailSource(source=source.value))
        await store_raw_copy(self.session, self.blobs, email.id, self.prepared.raw,
                             RAW_POLICY[source])
        await self.session.flush()


async def ingest(
    session: AsyncSession,
    *,
    portal: Portal,
    prepared: Prepared,
    envelope: Envelope,
    blobs: BlobStore,
    bcc_domain: str,
) -> IngestResult:
    """Log one message for ``portal`` in the caller's transaction.

    Raises SenderNotAllowed when no portal user sent or forwarded it (the caller records
    that in the audit log, since this transaction is rolled back). A message whose
    Message-ID is already logged gets the new source added and answers ``duplicate``;
    every deliberate refusal answers ``not_logged`` and leaves an audit entry.
    """
    run = _Ingest(session, portal, prepared, envelope, blobs, bcc_domain)
    parsed = prepared.parsed
    admission = await admit(session, portal, parsed, envelope, bcc_domain,
                            message_id=prepared.message_id)
    how = admission.route
    existing = admission.existing
    if admission.refusal is not None:
        code, reason = admission.refusal
        return run.not_logged(code, reason, how.source)
    if existing is not None:
        await run.add_source(existing, how.source)
        return IngestResult("duplicate", existing.id, existing.thread_id)

    found = admission.thread
    contacts = await match_contacts(session, portal.id, admission.people,
                                    create=portal.auto_create_contacts)

    # Re-using an old email to write to new people is a new conversation.
    if (found is not None and how.direction is Direction.OUTGOING and contacts
            and not {c.id for c in contacts} & await _thread_contact_ids(session, found[0])):
        found = None
    if found is None:
        thread = Thread(portal_id=portal.id, subject=base_subject(parsed.subject)[:998])
        session.add(thread)
        await session.flush()
        thread_id, reason = thread.id, ThreadReason.NEW
    else:
        thread_id, reason = found

    email = await _store_email(run, how, thread_id, reason, [c.id for c in contacts])
    await associate(session, portal.id, email.id,
                    {c.company_id for c in contacts if c.company_id is not None}, envelope.tags)
    await claim_refs(session, portal.id, thread_id,
                     [prepared.message_id, *parsed.in_reply_to, *parsed.references])
    session.add(Event(
        portal_id=portal.id, user_id=how.user.id, type="logged", email_id=email.id,
        detail={"source": how.source.value, "subject": parsed.subject[:200]},
    ))
    await session.flush()
    return IngestResult("logged", email.id, thread_id)


async def _store_email(
    run: _Ingest, how: Route, thread_id: int, reason: ThreadReason, contact_ids: list[int]
) -> Email:
    parsed = run.prepared.parsed
    now = utcnow()
    # A date more than a day ahead is a broken clock, not the future: use arrival time.
    sent_at = parsed.date if parsed.date and parsed.date < now + timedelta(days=1) else now
    email = Email(
        portal_id=run.portal.id, message_id=run.prepared.message_id,
        synthetic_message_id=run.prepared.synthetic_id, thread_id=thread_id,
        thread_reason=reason.value, direction=how.direction.value, user_id=how.user.id,
        from_email=parsed.from_.email if parsed.from_ else "",
        from_name=parsed.from_.name if parsed.from_ else "",
        to=[{"email": a.email, "name": a.name} for a in parsed.to],
        cc=[{"email": a.email, "name": a.name} for a in parsed.cc],
        subject=parsed.subject, sent_at=sent_at, text=parsed.text,
        html=sanitize_html(parsed.html) if parsed.html else "",
        size=len(run.prepared.raw), parse_notes=list(parsed.defects),
        sources=[EmailSource(source=how.source.value)], attachments=[],
        contact_links=[EmailContact(contact_id=cid) for cid in contact_ids],
    )
    run.session.add(email)
    await store_attachments(run.session, run.blobs, email, parsed.attachments,
                            keep_files=run.portal.log_attachments)
    await run.session.flush()
    await store_raw_copy(run.session, run.blobs, email.id, run.prepared.raw,
                         RAW_POLICY[how.source])
    return email
