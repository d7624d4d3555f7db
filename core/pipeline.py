"""The ingest pipeline: one raw message in, one logged email (or a reason why not) out.

``prepare`` parses outside any transaction (CPU work, run in a thread): the message,
the original inside a forward, its bulk markers. ``ingest`` runs inside the caller's
transaction: admit (authorize the sender, find the direction, deduplicate by
Message-ID, thread, apply the privacy rule and never-log list), match contacts, store,
emit a ``logged`` event. It never commits: the entry point does, and only then
acknowledges the message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core._store import associate, claim_refs, store_attachments, store_raw_copy
from core.admission import Admission, Display, Forwarded, admit
from core.audit import NotLoggedReason
from core.contacts import match_contacts
from core.errors import MessageTooLarge
from core.mail.forwards import ForwardedOriginal, extract_forward
from core.mail.parsing import ParsedMessage, parse_message, sanitize_html, synthetic_message_id
from core.mail.quotes import reply_text
from core.mail.threads import base_subject, claimed_ids
from core.retention import RAW_POLICY
from core.routing import never_logged
from core.storage.blobs import BlobStore
from core.storage.models import (
    Email,
    EmailContact,
    EmailSource,
    Event,
    Portal,
    Thread,
    ThreadRef,
    utcnow,
)
from core.tracking import strip_tracking
from core.types import Direction, Envelope, MessageId, Source, ThreadReason

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
# Python's header parser is quadratic in header size; refuse before parsing.
MAX_HEADER_BYTES = 256 * 1024
MAX_MESSAGE_ID = 998

__all__ = ["Admission", "IngestResult", "Prepared", "admit", "ingest", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """A message parsed and checked, ready for ``ingest``."""

    raw: bytes
    parsed: ParsedMessage
    message_id: MessageId
    synthetic_id: bool
    display: Display
    forwarded: Forwarded | None = None
    forward_failure: str | None = None  # it looks like a forward, but could not be read

    def display_of(self, parsed: ParsedMessage) -> Display:
        """The display parts of the message or, for a forward, of its original."""
        if self.forwarded is not None and parsed is self.forwarded.parsed:
            return self.forwarded.display
        return self.display


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


def _display(parsed: ParsedMessage) -> Display:
    # CPU-heavy (regexes over every line, an HTML sanitizer): done here, in a thread,
    # not inside the write transaction.
    html = sanitize_html(strip_tracking(parsed.html)) if parsed.html else ""
    # Stored as "" (and read back as the text) when nothing is quoted: the text once.
    reply = reply_text(parsed.text)
    return Display("" if reply == parsed.text else reply, html)


def _original_as_message(original: ForwardedOriginal, outer: ParsedMessage) -> Forwarded:
    parsed = dataclasses.replace(
        outer, message_id=original.message_id, in_reply_to=original.in_reply_to,
        references=original.references, from_=original.from_, sender=None, reply_to=(),
        to=original.to, cc=original.cc, resent_from=(), subject=original.subject,
        date=original.date, text=original.text, html=original.html,
        attachments=original.attachments, headers=(), thread_index=None,
        defects=(*outer.defects, f"original recovered from a {original.format} forward"),
    )
    if original.message_id:
        return Forwarded(parsed, original.message_id, False, _display(parsed))
    return Forwarded(parsed, synthetic_message_id(parsed), True, _display(parsed))


def _prepare_sync(raw: bytes, spool_dir: Path) -> Prepared:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    if header_block_size(raw[: MAX_HEADER_BYTES + 4]) > MAX_HEADER_BYTES:
        raise MessageTooLarge(f"header block exceeds {MAX_HEADER_BYTES} bytes")
    parsed = parse_message(raw, spool_dir=spool_dir)
    message_id = parsed.message_id or synthetic_message_id(parsed)
    if len(message_id) > MAX_MESSAGE_ID:
        # RFC 5322 caps a line at 998 octets; a longer id is junk, but a stable one.
        message_id = MessageId(hashlib.sha256(message_id.encode()).hexdigest()[:40]
                               + "@long-id.inboxlog")
    forward = extract_forward(parsed, raw)
    forwarded = (_original_as_message(forward.original, parsed)
                 if forward.original is not None else None)
    return Prepared(raw, parsed, message_id, parsed.message_id is None, _display(parsed),
                    forwarded, forward.reason)


async def prepare(raw: bytes, *, spool_dir: Path | None = None) -> Prepared:
    """Check the size limits and parse, in a worker thread. Raises MessageTooLarge.

    Large attachments are decoded to files in ``spool_dir`` (default: the system's temp
    directory), hashed and fsynced there, not held in memory; give the blob store's
    ``spool_dir()`` and storing them is a link. They go when the result does.
    """
    where = spool_dir if spool_dir is not None else Path(tempfile.gettempdir())
    return await asyncio.to_thread(_prepare_sync, raw, where)


@dataclass
class _Ingest:
    """One ingest call's inputs and decision, so the steps need not pass them around."""

    session: AsyncSession
    portal: Portal
    prepared: Prepared
    envelope: Envelope
    blobs: BlobStore
    admission: Admission

    def audit(self, code: NotLoggedReason, reason: str) -> None:
        parsed = self.prepared.parsed
        audit.record(
            self.session, self.portal.id, code, reason,
            source=self.admission.route.source.value,
            logging_address=self.envelope.logging_address,
            sender=parsed.from_.key if parsed.from_ else None,
            envelope_sender=self.envelope.mail_from, message_id=self.admission.message_id,
            size=len(self.prepared.raw),
        )

    async def add_source(self, email: Email) -> None:
        """A second arrival of a logged message: record how it came, and fill in what
        the first copy lacked (a body, HTML, attachments, names)."""
        source = self.admission.route.source
        if any(s.source == source for s in email.sources):
            return
        email.sources.append(EmailSource(source=source.value))
        parsed = self.admission.parsed
        display = self.prepared.display_of(parsed)
        if not email.text.strip() and parsed.text.strip():
            email.text, email.reply_text = parsed.text, display.reply_text
        if not email.html and display.html:
            email.html = display.html
        if not email.from_name and parsed.from_ is not None:
            email.from_name = parsed.from_.name
        message_id = self.admission.message_id
        if email.synthetic_message_id and message_id and not self.prepared.synthetic_id:
            # The copy of a tracked send logged before its Message-ID was known.
            email.message_id, email.synthetic_message_id = message_id, False
            await claim_refs(self.session, email.portal_id, email.thread_id, [message_id])
        if not email.attachments and parsed.attachments:
            await store_attachments(self.session, self.blobs, email, parsed.attachments,
                                    keep_files=self.portal.log_attachments)
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
    admission = await admit(session, portal, prepared.parsed, envelope, bcc_domain,
                            message_id=prepared.message_id, forwarded=prepared.forwarded)
    run = _Ingest(session, portal, prepared, envelope, blobs, admission)
    if admission.refusal is not None:
        code, reason = admission.refusal
        run.audit(code, reason)
        return IngestResult("not_logged", reason=reason)
    if admission.existing is not None:
        await run.add_source(admission.existing)
        return IngestResult("duplicate", admission.existing.id, admission.existing.thread_id)
    if prepared.forward_failure and admission.route.source is Source.BCC:
        run.audit(NotLoggedReason.FORWARD_UNPARSABLE,
                  f"logged as the user's own email: {prepared.forward_failure}")

    parsed = admission.parsed
    # Bulk and automatic mail never creates contacts; it may still match existing ones.
    contacts = await match_contacts(
        session, portal.id, admission.people,
        create=portal.auto_create_contacts and admission.automatic is None,
    )
    if admission.thread is None:
        thread = Thread(portal_id=portal.id, subject=base_subject(parsed.subject)[:998])
        session.add(thread)
        await session.flush()
        thread_id, reason = thread.id, ThreadReason.NEW
    else:
        thread_id, reason = admission.thread
        await _merge_threads(session, portal.id, thread_id, admission.merged)

    email = await _store_email(run, thread_id, reason, [c.id for c in contacts])
    await associate(session, portal.id, email.id,
                    {c.company_id for c in contacts if c.company_id is not None}, envelope.tags)
    assert admission.message_id is not None
    await claim_refs(session, portal.id, thread_id, claimed_ids(parsed, admission.message_id))
    _link_tracked_send(admission, email)
    session.add(Event(
        portal_id=portal.id, user_id=admission.route.user.id, type="logged", email_id=email.id,
        detail={"source": admission.route.source.value, "subject": parsed.subject[:200]},
    ))
    if admission.route.direction is Direction.INCOMING and admission.thread is not None:
        session.add(Event(
            portal_id=portal.id, user_id=admission.route.user.id, type="reply",
            email_id=email.id, detail={"thread_id": thread_id, "from": email.from_email},
        ))
    await session.flush()
    return IngestResult("logged", email.id, thread_id)


async def _merge_threads(
    session: AsyncSession, portal_id: int, into: int, threads: tuple[int, ...]
) -> None:
    """Move the emails and claimed Message-IDs of ``threads`` to thread ``into``, and
    remove the threads left empty (``Admission.merged``: one conversation whose parts
    arrived out of order)."""
    if not threads:
        return
    await session.execute(update(Email).where(
        Email.portal_id == portal_id, Email.thread_id.in_(threads)).values(thread_id=into))
    await session.execute(update(ThreadRef).where(
        ThreadRef.portal_id == portal_id, ThreadRef.thread_id.in_(threads)
    ).values(thread_id=into))
    await session.execute(delete(Thread).where(
        Thread.portal_id == portal_id, Thread.id.in_(threads)))


def _link_tracked_send(admission: Admission, email: Email) -> None:
    """The first copy of a tracked send to be logged becomes its email."""
    if admission.route.direction is not Direction.OUTGOING:
        return
    for send in admission.tracked:
        if send.email_id is None and send.user_id == admission.route.user.id:
            send.email_id = email.id
            return


async def _store_email(
    run: _Ingest, thread_id: int, reason: ThreadReason, contact_ids: list[int]
) -> Email:
    admission, prepared = run.admission, run.prepared
    parsed, how = admission.parsed, admission.route
    now = utcnow()
    # A date more than a day ahead is a broken clock, not the future: use arrival time.
    sent_at = parsed.date if parsed.date and parsed.date < now + timedelta(days=1) else now
    notes = list(parsed.defects)
    if prepared.forward_failure and how.source is Source.BCC:
        notes.append(f"forward not parsed: {prepared.forward_failure}")
    if admission.automatic:
        notes.append(f"automatic mail: {admission.automatic}")
    assert admission.message_id is not None
    email = Email(
        portal_id=run.portal.id, message_id=admission.message_id,
        synthetic_message_id=(prepared.forwarded.synthetic_id if prepared.forwarded
                              and parsed is prepared.forwarded.parsed
                              else prepared.synthetic_id),
        thread_id=thread_id, thread_reason=reason.value, direction=how.direction.value,
        user_id=how.user.id,
        from_email=parsed.from_.email[:320] if parsed.from_ else "",
        from_name=parsed.from_.name[:200] if parsed.from_ else "",
        # Never-log addresses are not kept, not even as a recipient of a logged email.
        to=[{"email": a.email, "name": a.name} for a in parsed.to
            if not never_logged(a.key, run.portal.never_log)],
        cc=[{"email": a.email, "name": a.name} for a in parsed.cc
            if not never_logged(a.key, run.portal.never_log)],
        subject=parsed.subject, sent_at=sent_at, text=parsed.text,
        reply_text=prepared.display_of(parsed).reply_text,
        html=prepared.display_of(parsed).html,
        size=len(prepared.raw), parse_notes=notes, automatic=admission.automatic,
        auth=admission.auth,
        sources=[EmailSource(source=how.source.value)], attachments=[],
        contact_links=[EmailContact(contact_id=cid) for cid in contact_ids],
    )
    run.session.add(email)
    await store_attachments(run.session, run.blobs, email, parsed.attachments,
                            keep_files=run.portal.log_attachments)
    await run.session.flush()
    await store_raw_copy(run.session, run.blobs, email.id, prepared.raw, RAW_POLICY[how.source])
    return email
