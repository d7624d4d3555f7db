"""The ingest pipeline: one raw message in, one logged email (or a reason why not) out.

``log_message`` is the one way in, for every adapter (SMTP, the CLI, one-click logging,
inbox sync, CRM sends): it prepares the message outside any transaction (in a thread:
``core.preparation``), then for each portal it is for opens the write, asks admission,
logs it, and records a refusal in the ingest log in that same transaction; it returns
once that committed, with a typed result per portal. ``ingest`` is the step inside the
transaction: admit (authorize the sender, find the direction, deduplicate by
Message-ID, thread, apply the privacy rule and never-log list), match contacts, store,
emit a ``logged`` event. It never commits.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import _logged_rows, accounts, audit, metrics
from core._store import (
    MAX_LISTED_ATTACHMENTS,
    MAX_STORED_ATTACHMENTS,
    associate,
    attachments_note,
    claim_refs,
    header_block,
    store_attachments,
    store_blob,
    store_blobs,
    store_raw_copy,
)
from core.admission import Admission, admit
from core.contacts import contact_links
from core.errors import (
    MessageTooLarge,
    NotFound,
    SenderAuthUnavailable,
    SenderNotAllowed,
    SenderNotAuthenticated,
    StorageUnavailable,
)
from core.mail.threads import base_subject, claimed_ids
from core.preparation import (
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    Candidate,
    Display,
    Prepared,
    header_block_size,
    prepare,
)
from core.retention import RAW_POLICY
from core.routing import never_logged
from core.sender_auth import AuthResult
from core.storage.blobs import BlobStore
from core.storage.models import (
    Email,
    EmailSource,
    Portal,
    Thread,
    ThreadRef,
    utcnow,
)
from core.tickets.access import sees_email
from core.types import (
    Channel,
    Direction,
    Envelope,
    EventType,
    IngestOutcome,
    MessageId,
    NotLoggedReason,
    Refusal,
    Source,
    ThreadReason,
)

if TYPE_CHECKING:
    from core.runtime import Runtime
    from core.tickets.acknowledgements import Acknowledgement

log = logging.getLogger(__name__)

__all__ = [
    "MAX_HEADER_BYTES", "MAX_MESSAGE_BYTES", "Arrival", "Candidate", "Delivery", "Display",
    "IngestResult", "Prepared", "Refused", "Results", "admit", "header_block_size",
    "ingest", "log_message", "prepare",
]

# What admission raises when a portal will not have a message at all (not "accepted,
# not logged"): no portal user sent it, or sender authentication refused it.
RefusalError = SenderNotAllowed | SenderNotAuthenticated | SenderAuthUnavailable


@dataclass(frozen=True)
class IngestResult:
    """A message a portal accepted: ``logged``, ``duplicate`` (already logged: a source
    was added) or ``not_logged`` (deliberately not stored: see ``reason``)."""

    outcome: IngestOutcome
    email_id: int | None = None
    thread_id: int | None = None
    reason: str | None = None
    source: Source | None = None  # how it came, as routed
    # A team inbox's acknowledgement of the ticket it opened, sent once this committed.
    acknowledgement: Acknowledgement | None = None


@dataclass(frozen=True)
class Refused:
    """A message a portal would not have: ``error`` says why (too large, no portal user
    sent it, sender authentication). The ingest log has an entry for it."""

    portal_id: int
    error: MessageTooLarge | RefusalError


@dataclass(frozen=True)
class Results:
    """What became of one message, per portal it was for, in the order of the deliveries."""

    each: tuple[IngestResult | Refused, ...]

    def only(self) -> IngestResult:
        """The result for the one portal of a single delivery; raises its refusal."""
        [result] = self.each
        if isinstance(result, Refused):
            raise result.error
        return result


@dataclass(frozen=True)
class Delivery:
    """One portal a message is for, and what the transport knew about it there."""

    portal_id: int
    envelope: Envelope = field(default_factory=Envelope)
    checks_senders: bool = False  # the portal's ``sender_auth`` policy is not ``off``


@dataclass(frozen=True)
class Arrival:
    """How a message arrived, besides its bytes: through which entry point, for which
    portals. ``authenticate`` (SMTP) checks the sender once, after the size checks and
    only when a portal's policy asks for it; its result goes on every envelope."""

    channel: Channel
    deliveries: tuple[Delivery, ...]
    authenticate: Callable[[], Awaitable[AuthResult | None]] | None = None

    @classmethod
    def for_portal(cls, channel: Channel, portal_id: int,
                   envelope: Envelope | None = None) -> Arrival:
        return cls(channel, (Delivery(portal_id, envelope or Envelope()),))


_HELD_PORTALS = "core.pipeline.portals"


async def log_message(runtime: Runtime, message: bytes | Prepared, how: Arrival) -> Results:
    """Log one message for each portal of ``how``, each in a write of its own; returns
    once those committed (on SQLite, shared with concurrent callers: group commit).

    ``message`` is the raw message, or one ``prepare`` made already (a CRM send parses
    before sending). A refusal, recorded in the portal's ingest log in the same
    transaction, is a ``Refused`` result, not an exception. Raises StorageUnavailable
    when the database is down (nothing is logged), NotFound for a portal id that does
    not exist.
    """
    raw = message if isinstance(message, bytes) else message.raw
    try:
        prepared = message if isinstance(message, Prepared) else await prepare(
            raw, spool_dir=runtime.blobs.spool_dir())
    except MessageTooLarge as exc:
        await _record_too_large(runtime, how, exc, len(raw))
        return _counted(how, Results(tuple(Refused(d.portal_id, exc) for d in how.deliveries)))
    auth = None
    if how.authenticate is not None and any(d.checks_senders for d in how.deliveries):
        # The bytes as received: DKIM hashes them.
        auth = await how.authenticate()
    results: list[IngestResult | Refused] = []
    for delivery in how.deliveries:
        envelope = delivery.envelope if auth is None else replace(delivery.envelope, auth=auth)

        async def work(session: AsyncSession, portal_id: int = delivery.portal_id,
                       envelope: Envelope = envelope) -> IngestResult | Refused:
            portal = await _portal(session, portal_id)
            try:
                # Mail to a team inbox (docs/tickets.md): anyone may write there.
                from core.tickets import intake  # it builds on this module

                if (inbox := await intake.addressed_inbox(session, portal, envelope)):
                    return await intake.log_team_mail(
                        session, portal=portal, inbox=inbox, prepared=prepared,
                        envelope=envelope, blobs=runtime.blobs,
                        bcc_domain=runtime.settings.bcc_domain)
                admission = await _admit(session, portal, prepared, envelope,
                                         runtime.settings.bcc_domain)
            except (SenderNotAllowed, SenderNotAuthenticated, SenderAuthUnavailable) as exc:
                # Admission stores nothing: the entry is all this transaction writes.
                _record_refused(session, portal.id, how.channel, prepared, envelope, exc)
                return Refused(portal.id, exc)
            return await _log_admitted(session, portal, prepared, envelope, runtime.blobs,
                                       admission)

        result = await runtime.db.run(work)
        if isinstance(result, IngestResult) and result.acknowledgement is not None:
            from core.tickets.acknowledgements import send_later

            send_later(runtime, result.acknowledgement)
        results.append(result)
    return _counted(how, Results(tuple(results)))


async def _portal(session: AsyncSession, portal_id: int) -> Portal:
    """The portal, read once per shared transaction: held for the rest of it (the
    session's identity map keeps objects only while something refers to them, and the
    next message of the batch would read it again), by a select built once (SQLAlchemy
    remembers a statement object's cache key; ``session.get`` builds its select at each
    call). Raises NotFound."""
    held: dict[int, Portal] = session.info.setdefault(_HELD_PORTALS, {})
    portal = held.get(portal_id)
    if portal is None or inspect(portal).expired_attributes:
        portal = (await session.execute(_PORTAL, {"portal_id": portal_id})).scalar()
        if portal is None:
            raise NotFound(f"no portal {portal_id}")
        held[portal_id] = portal
    return portal


_PORTAL = select(Portal).where(Portal.id == bindparam("portal_id"))


def _counted(how: Arrival, results: Results) -> Results:
    for result in results.each:
        if isinstance(result, Refused):
            metrics.INGESTED.labels("refused", how.channel.value).inc()
        else:
            source = result.source.value if result.source else how.channel.value
            metrics.INGESTED.labels(result.outcome.value, source).inc()
    return results


def _refusal_entry(error: MessageTooLarge | RefusalError) -> Refusal:
    if isinstance(error, SenderNotAuthenticated | SenderAuthUnavailable):
        code = (NotLoggedReason.AUTH_UNAVAILABLE if isinstance(error, SenderAuthUnavailable)
                else NotLoggedReason.NOT_AUTHENTICATED)
        decision = error.decision
        # The check that failed, then why.
        return Refusal(code, f"{decision.failed_check or 'auth'}: {decision.reason}")
    if isinstance(error, MessageTooLarge):
        return Refusal(NotLoggedReason.TOO_LARGE, error.message)
    return Refusal(NotLoggedReason.NOT_A_USER, error.message)


def _record_refused(session: AsyncSession, portal_id: int, channel: Channel,
                    prepared: Prepared, envelope: Envelope, error: RefusalError) -> None:
    entry = _refusal_entry(error)
    parsed = prepared.message.parsed
    audit.record(session, portal_id, entry.code, entry.reason, source=channel.value,
                 logging_address=envelope.logging_address,
                 sender=parsed.from_.key if parsed.from_ else None,
                 envelope_sender=envelope.mail_from, message_id=prepared.message.message_id,
                 size=len(prepared.raw), team_inbox_id=audit.team_inbox_of(envelope))


async def _record_too_large(runtime: Runtime, how: Arrival, error: MessageTooLarge,
                            size: int, headers: Candidate | None = None) -> None:
    """The ingest log entry of a message too large to parse, for each of its portals.
    Best effort: the refusal stands even when the database cannot take the entry."""
    entry = _refusal_entry(error)
    sender = headers.parsed.from_ if headers is not None else None

    async def work(session: AsyncSession) -> None:
        for delivery in how.deliveries:
            if await session.get(Portal, delivery.portal_id) is None:
                continue
            audit.record(session, delivery.portal_id, entry.code, entry.reason,
                         source=how.channel.value,
                         logging_address=delivery.envelope.logging_address,
                         sender=sender.key if sender is not None else None,
                         envelope_sender=delivery.envelope.mail_from,
                         message_id=headers.message_id if headers is not None else None,
                         size=size, team_inbox_id=audit.team_inbox_of(delivery.envelope))

    try:
        await runtime.db.run(work)
    except StorageUnavailable:
        log.warning("could not record a refused message in the ingest log", exc_info=True)


async def record_oversized(runtime: Runtime, how: Arrival, size: int, *,
                           reason: str = "message exceeds the size limit",
                           headers: Candidate | None = None) -> Results:
    """A message too large to be received whole (SMTP DATA past the limit; a synced
    message not fetched, judged from ``headers``): refused for every portal of ``how``
    with an ingest log entry, as ``log_message`` refuses one."""
    error = MessageTooLarge(reason)
    await _record_too_large(runtime, how, error, size, headers)
    return _counted(how, Results(tuple(Refused(d.portal_id, error) for d in how.deliveries)))


@dataclass
class _Ingest:
    """One ingest call's inputs and decision, so the steps need not pass them around."""

    session: AsyncSession
    portal: Portal
    prepared: Prepared
    envelope: Envelope
    blobs: BlobStore
    admission: Admission

    @property
    def chosen(self) -> Candidate:
        return self.admission.chosen

    def audit(self, code: NotLoggedReason, reason: str) -> None:
        parsed = self.prepared.message.parsed
        audit.record(
            self.session, self.portal.id, code, reason,
            source=self.admission.route.source.value,
            logging_address=self.envelope.logging_address,
            sender=parsed.from_.key if parsed.from_ else None,
            envelope_sender=self.envelope.mail_from, message_id=self.chosen.message_id,
            size=len(self.prepared.raw), team_inbox_id=audit.team_inbox_of(self.envelope),
        )

    async def add_source(self, email: Email) -> None:
        """A second arrival of a logged message: record how it came, and fill in what
        the first copy lacked (a body, HTML, attachments, names)."""
        source = self.admission.route.source
        if any(s.source == source for s in email.sources):
            return
        email.sources.append(EmailSource(source=source.value))
        parsed, display = self.chosen.parsed, self.chosen.display
        if not email.text.strip() and parsed.text.strip():
            email.text, email.reply_text = parsed.text, display.reply_text
        if not email.html and display.html:
            email.html = display.html
        if not email.from_name and parsed.from_ is not None:
            email.from_name = parsed.from_.name
        message_id = self.chosen.message_id
        if email.synthetic_message_id and message_id and not self.chosen.synthetic_id:
            # The copy of a tracked send logged before its Message-ID was known.
            email.message_id, email.synthetic_message_id = message_id, False
            await claim_refs(self.session, email.portal_id, email.thread_id, [message_id])
        if not email.attachments and parsed.attachments:
            await store_attachments(self.session, self.blobs, email, parsed.attachments,
                                    keep_files=self.portal.log_attachments)
        await store_raw_copy(self.session, self.blobs, email.id, self.prepared.raw,
                             RAW_POLICY[source])
        await self.session.flush()


async def _admit(session: AsyncSession, portal: Portal, prepared: Prepared,
                 envelope: Envelope, bcc_domain: str) -> Admission:
    return await admit(session, portal, prepared.message, envelope, bcc_domain,
                       original=prepared.original, forward_failure=prepared.forward_failure)


async def ingest(
    session: AsyncSession,
    *,
    portal: Portal,
    prepared: Prepared,
    envelope: Envelope,
    blobs: BlobStore,
    bcc_domain: str,
) -> IngestResult:
    """Log one message for ``portal`` in the caller's transaction (``log_message`` is the
    way in; this is its step inside the write, for callers that hold one already).

    Raises SenderNotAllowed, SenderNotAuthenticated or SenderAuthUnavailable, having
    stored nothing, when the portal will not have it (``log_message`` records those).
    A message whose Message-ID is already logged gets the new source added and answers
    ``duplicate``; every deliberate refusal answers ``not_logged`` and leaves an audit
    entry.
    """
    admission = await _admit(session, portal, prepared, envelope, bcc_domain)
    return await _log_admitted(session, portal, prepared, envelope, blobs, admission)


async def _log_admitted(
    session: AsyncSession, portal: Portal, prepared: Prepared, envelope: Envelope,
    blobs: BlobStore, admission: Admission,
) -> IngestResult:
    run = _Ingest(session, portal, prepared, envelope, blobs, admission)
    source = admission.route.source
    if admission.refusal is not None:
        run.audit(admission.refusal.code, admission.refusal.reason)
        return IngestResult(IngestOutcome.NOT_LOGGED, reason=admission.refusal.reason,
                            source=source)
    if admission.existing is not None:
        if await _theirs_too(session, admission):  # else it stays as it is: no source
            await run.add_source(admission.existing)
        return IngestResult(IngestOutcome.DUPLICATE, admission.existing.id,
                            admission.existing.thread_id, source=source)
    if admission.forward_unread:
        run.audit(NotLoggedReason.FORWARD_UNPARSABLE,
                  f"logged as the user's own email: {admission.forward_unread}")

    parsed, message_id = admission.chosen.parsed, admission.chosen.message_id
    assert message_id is not None
    # Bulk and automatic mail never creates contacts; it may still match existing ones.
    contacts = await contact_links(
        session, portal.id, admission.people,
        create=portal.auto_create_contacts and admission.automatic is None,
    )
    if admission.thread is not None:
        await _merge_threads(session, portal.id, admission.thread.thread_id, admission.merged)
    claims = list(dict.fromkeys(claimed_ids(parsed, message_id)))
    # Which of them a thread has already: admission looked them up with the thread keys.
    taken = (admission.claimed if admission.claimed is not None
             else await _claimed(session, portal.id, claims))
    companies = {c.company_id for c in contacts if c.company_id is not None}
    email_id, thread_id = await _logged_rows.write(session, await _new_email(
        run, [c.id for c in contacts],
        # With tags, ``associate`` links the companies too (a tag may name one of them).
        () if envelope.tags else tuple(companies),
        tuple(m for m in claims if m not in taken)))
    _link_tracked_send(admission, email_id)
    if envelope.tags:
        await associate(session, portal.id, email_id, companies, envelope.tags)
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what the ORM still holds: a tracked send's link, tag links
    return IngestResult(IngestOutcome.LOGGED, email_id, thread_id, source=source)


async def _theirs_too(session: AsyncSession, admission: Admission) -> bool:
    """Whether the arriving user may have the logged ``admission.existing`` logged for
    them too. A team inbox's email they are no member of only when it is their mail as
    well: the same sender, and they wrote it or are in its To/Cc as support@'s copy had
    them, by any of their confirmed addresses (a salesperson in Cc whose copy arrives
    after the inbox's). It then becomes
    personal too, as when their copy comes first (``intake._shareable``): everyone sees
    it, it stays on the ticket, the inbox's other emails stay hidden. Anyone else
    reusing its Message-ID adds nothing to it (one-click logging then answers 404)."""
    email, user = admission.existing, admission.route.user
    assert email is not None
    if email.team_inbox_id is None or await sees_email(session, email, user.id):
        return True
    sender = admission.chosen.parsed.from_
    named = {email.from_email.lower(), *(str(a.get("email", "")).lower()
                                         for a in (*email.to, *email.cc)
                                         if isinstance(a, dict))}
    if sender is None or sender.key != email.from_email.lower() or email.deleted_at:
        return False
    users = await accounts.users_by_address(session, email.portal_id)  # their aliases
    if not any(a == user.email.lower() or (a in users and users[a].id == user.id)
               for a in named):
        return False
    email.team_inbox_id = None
    return True


async def _claimed(session: AsyncSession, portal_id: int, ids: list[MessageId]) -> set[str]:
    """Those of ``ids`` a thread of the portal claims already."""
    return set(await session.scalars(select(ThreadRef.message_id).where(
        ThreadRef.portal_id == portal_id, ThreadRef.message_id.in_(ids))))


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


def _link_tracked_send(admission: Admission, email_id: int) -> None:
    """The first copy of a tracked send to be logged becomes its email."""
    if admission.route.direction is not Direction.OUTGOING:
        return
    for send in admission.tracked:
        if send.email_id is None and send.user_id == admission.route.user.id:
            send.email_id = email_id
            return


async def _new_email(run: _Ingest, contact_ids: list[int], company_ids: tuple[int, ...],
                     refs: tuple[MessageId, ...]) -> _logged_rows.NewEmail:
    """The rows of the email ``run`` logs (``core._logged_rows``); the blobs of its
    attachments and full raw copy are stored on the way (rows first, then files)."""
    admission, prepared, chosen, portal = run.admission, run.prepared, run.chosen, run.portal
    parsed, how = chosen.parsed, admission.route
    now = utcnow()
    # A date more than a day ahead is a broken clock, not the future: use arrival time.
    sent_at = parsed.date if parsed.date and parsed.date < now + timedelta(days=1) else now
    notes = list(parsed.defects)
    if admission.forward_unread:
        notes.append(f"forward not parsed: {admission.forward_unread}")
    if admission.automatic:
        notes.append(f"automatic mail: {admission.automatic}")
    assert chosen.message_id is not None
    from_ = parsed.from_
    email = {
        "portal_id": portal.id, "message_id": chosen.message_id,
        "synthetic_message_id": chosen.synthetic_id,
        "thread_reason": (admission.thread.reason if admission.thread is not None
                          else ThreadReason.NEW).value,
        "direction": how.direction.value, "user_id": how.user.id,
        "from_email": from_.email[:320] if from_ else "",
        "from_name": from_.name[:200] if from_ else "",
        # Never-log addresses are not kept, not even as a recipient of a logged email.
        "to": [{"email": a.email, "name": a.name} for a in parsed.to
               if not never_logged(a.key, portal.never_log)],
        "cc": [{"email": a.email, "name": a.name} for a in parsed.cc
               if not never_logged(a.key, portal.never_log)],
        "subject": parsed.subject, "sent_at": sent_at, "text": parsed.text,
        "reply_text": chosen.display.reply_text, "html": chosen.display.html,
        "size": len(prepared.raw), "parse_notes": notes, "automatic": admission.automatic,
        "auth": admission.auth, "language": chosen.display.language,
        "created_at": now,
    }
    # Past the cap a part is listed, not stored (like any part of a portal that does not
    # log attachments): thousands of tiny parts must not hold everyone's commit. Past
    # the listing cap a part is only counted in the notes.
    kept = parsed.attachments[:MAX_STORED_ATTACHMENTS] if portal.log_attachments else ()
    if note := attachments_note(len(parsed.attachments), portal.log_attachments):
        notes.append(note)
    await store_blobs(run.session, run.blobs, kept)
    attachments = []
    for index, part in enumerate(parsed.attachments[:MAX_LISTED_ATTACHMENTS]):
        attachments.append({
            "filename": part.filename[:500], "content_type": part.content_type[:200],
            "size": part.size, "sha256": part.sha256,
            "blob_sha256": part.sha256 if index < len(kept) else None,
            "inline": part.inline,
            "content_id": part.content_id[:998] if part.content_id else None,
        })
    policy = RAW_POLICY[how.source]
    raw_copy: dict[str, object] = {"rule": policy.rule.value, "created_at": now}
    if policy.full:
        raw_copy["blob_sha256"] = await store_blob(run.session, run.blobs, prepared.raw)
    else:
        # A header block (a few KB) goes in the row: a blob file would cost every
        # logged message a file and two fsyncs.
        raw_copy["content"] = header_block(prepared.raw)
    user_id = how.user.id
    events = [{"portal_id": portal.id, "user_id": user_id, "type": EventType.LOGGED.value,
               "at": now, "detail": {"source": how.source.value,
                                     "subject": parsed.subject[:200]}}]
    if how.direction is Direction.INCOMING and admission.thread is not None:
        events.append({"portal_id": portal.id, "user_id": user_id,
                       "type": EventType.REPLY.value, "at": now,
                       "detail": {"thread_id": admission.thread.thread_id,
                                  "from": email["from_email"]}})
    return _logged_rows.NewEmail(
        portal.id, email, how.source.value,
        thread_id=admission.thread.thread_id if admission.thread is not None else None,
        subject=base_subject(parsed.subject)[:998], contact_ids=tuple(contact_ids),
        company_ids=company_ids, raw_copy=raw_copy, attachments=tuple(attachments),
        refs=refs, events=tuple(events))
