"""The ingest pipeline: one raw message in, one logged email (or a reason why not) out.

``prepare`` parses outside any transaction (CPU work, run in a thread); ``ingest``
runs inside the caller's transaction: authorize the sender, find the direction,
deduplicate by Message-ID, thread, match contacts, store, emit a ``logged`` event.
It never commits: the entry point does, and only then acknowledges the message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts
from core.attachments import BlobStore, sha256_hex
from core.contacts import match_contacts
from core.errors import MessageTooLarge, SenderNotAllowed
from core.models import (
    Attachment,
    Base,
    Blob,
    Company,
    Deal,
    Email,
    EmailCompany,
    EmailContact,
    EmailDeal,
    EmailSource,
    EmailTicket,
    Event,
    Portal,
    Thread,
    ThreadRef,
    Ticket,
    User,
    utcnow,
)
from core.parsing import Address, ParsedMessage, parse_message, sanitize_html, synthetic_message_id
from core.threading import ThreadKey, base_subject, thread_keys
from core.types import Direction, Envelope, MessageId, Source, ThreadReason

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
# Python's header parser is quadratic in header size; refuse before parsing.
MAX_HEADER_BYTES = 256 * 1024
# Headers naming the mailbox a forwarding rule forwarded from.
_FORWARDING_HEADERS = ("X-Forwarded-For", "X-Forwarded-To", "X-Original-To", "Delivered-To")
_TAG = re.compile(r"^(deal|company|ticket)-(\d{1,18})$")


@dataclass(frozen=True)
class Prepared:
    """A message parsed and checked, ready for ``ingest``."""

    raw_size: int
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
        return Prepared(len(raw), parsed, parsed.message_id, False)
    return Prepared(len(raw), parsed, synthetic_message_id(parsed), True)


async def prepare(raw: bytes) -> Prepared:
    """Check the size limits and parse, in a worker thread. Raises MessageTooLarge."""
    return await asyncio.to_thread(_prepare_sync, raw)


@dataclass(frozen=True)
class _Route:
    user: User
    source: Source
    direction: Direction
    needs_thread: bool  # the privacy rule: log only when it ties to a logged thread


def _route(prepared: Prepared, envelope: Envelope, users: dict[str, User]) -> _Route:
    """Who logged this and how; raises SenderNotAllowed when no portal user did."""
    parsed = prepared.parsed
    if parsed.from_ is not None and parsed.from_.key in users:
        source = envelope.source_hint or Source.BCC
        return _Route(users[parsed.from_.key], source, Direction.OUTGOING, needs_thread=False)
    forwarders = [envelope.mail_from or "", *(a.key for a in parsed.resent_from)]
    for name in _FORWARDING_HEADERS:
        forwarders.extend(v.strip().strip("<>").lower() for v in _header_values(parsed, name))
    for address in forwarders:
        if address.lower() in users:
            source = envelope.source_hint or Source.RULE
            return _Route(users[address.lower()], source, Direction.INCOMING, needs_thread=True)
    sender = parsed.from_.email if parsed.from_ else "(no From)"
    raise SenderNotAllowed(f"{sender} is not a user of this account")


def _header_values(parsed: ParsedMessage, name: str) -> list[str]:
    return [v for k, v in parsed.headers if k.lower() == name.lower()]


def _people(
    parsed: ParsedMessage, direction: Direction, users: dict[str, User],
    bcc_domain: str, never_log: list[str],
) -> tuple[dict[str, str], bool]:
    """Contact candidates (address -> name) and whether the never-log list removed any."""
    addresses: list[Address] = [*parsed.to, *parsed.cc]
    if direction is Direction.INCOMING and parsed.from_ is not None:
        addresses.insert(0, parsed.from_)
    blocked = {entry.lower() for entry in never_log}
    people: dict[str, str] = {}
    removed = False
    for address in addresses:
        key = address.key
        domain = key.rpartition("@")[2]
        if "@" not in key or key in users or domain == bcc_domain.lower():
            continue
        if key in blocked or domain in blocked:
            removed = True
            continue
        people.setdefault(key, address.name)
    return people, removed


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


async def _claim_refs(
    session: AsyncSession, portal_id: int, thread_id: int, ids: list[MessageId]
) -> None:
    ids = list(dict.fromkeys(ids))
    taken = set(
        await session.scalars(
            select(ThreadRef.message_id).where(
                ThreadRef.portal_id == portal_id, ThreadRef.message_id.in_(ids)
            )
        )
    )
    session.add_all(
        ThreadRef(portal_id=portal_id, message_id=m, thread_id=thread_id)
        for m in ids if m not in taken
    )


_TAG_TARGETS: dict[str, tuple[type[Deal] | type[Company] | type[Ticket],
                              Callable[[int, int], Base]]] = {
    "deal": (Deal, lambda email_id, deal_id: EmailDeal(email_id=email_id, deal_id=deal_id)),
    "company": (Company, lambda email_id, company_id: EmailCompany(email_id=email_id,
                                                                   company_id=company_id)),
    "ticket": (Ticket, lambda email_id, ticket_id: EmailTicket(email_id=email_id,
                                                               ticket_id=ticket_id)),
}


async def _associate_tags(
    session: AsyncSession, portal_id: int, email_id: int, tags: tuple[str, ...],
    already: set[int],
) -> None:
    """Link the objects named by ``+deal-<id>`` style tags; unknown ids are ignored.

    ``already`` holds the company ids the email is linked to through its contacts.
    """
    for kind, object_id in sorted({
        (m.group(1), int(m.group(2))) for m in map(_TAG.match, (t.lower() for t in tags)) if m
    }):
        model, link = _TAG_TARGETS[kind]
        owner = await session.scalar(select(model.portal_id).where(model.id == object_id))
        if owner != portal_id:
            continue
        if kind == "company" and object_id in already:
            continue
        session.add(link(email_id, object_id))


async def _store_attachments(
    session: AsyncSession, blobs: BlobStore, portal: Portal, email: Email, parsed: ParsedMessage
) -> None:
    for part in parsed.attachments:
        digest = sha256_hex(part.content)
        stored = None
        if portal.log_attachments:
            await blobs.put(part.content)
            if await session.get(Blob, digest) is None:
                session.add(Blob(sha256=digest, size=len(part.content)))
            stored = digest
        email.attachments.append(Attachment(
            filename=part.filename[:500], content_type=part.content_type[:200],
            size=len(part.content), sha256=digest, blob_sha256=stored,
            inline=part.inline, content_id=part.content_id,
        ))


async def _add_source(session: AsyncSession, email: Email, source: Source) -> None:
    if all(s.source != source for s in email.sources):
        email.sources.append(EmailSource(source=source.value))
        await session.flush()


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

    Raises SenderNotAllowed when no portal user sent or forwarded it. A message whose
    Message-ID is already logged gets the new source added and answers ``duplicate``.
    """
    parsed = prepared.parsed
    users = await accounts.users_by_address(session, portal.id)
    route = _route(prepared, envelope, users)

    existing = await session.scalar(
        select(Email).where(Email.portal_id == portal.id, Email.message_id == prepared.message_id)
    )
    if existing is not None:
        await _add_source(session, existing, route.source)
        return IngestResult("duplicate", existing.id, existing.thread_id)

    found = await _find_thread(session, portal.id, thread_keys(parsed))
    if route.needs_thread and found is None:
        return IngestResult("not_logged", reason="not part of a logged thread")

    people, removed = _people(parsed, route.direction, users, bcc_domain, portal.never_log)
    if removed and not people:
        return IngestResult("not_logged", reason="all recipients are on the never-log list")
    contacts = await match_contacts(
        session, portal.id, people, create=portal.auto_create_contacts
    )

    # Re-using an old email to write to new people is a new conversation.
    if (found is not None and route.direction is Direction.OUTGOING and contacts
            and not {c.id for c in contacts} & await _thread_contact_ids(session, found[0])):
        found = None
    if found is None:
        thread = Thread(portal_id=portal.id, subject=base_subject(parsed.subject)[:998])
        session.add(thread)
        await session.flush()
        thread_id, reason = thread.id, ThreadReason.NEW
    else:
        thread_id, reason = found

    now = utcnow()
    sent_at = parsed.date if parsed.date and parsed.date < now + timedelta(days=1) else now
    email = Email(
        portal_id=portal.id, message_id=prepared.message_id,
        synthetic_message_id=prepared.synthetic_id, thread_id=thread_id,
        thread_reason=reason.value, direction=route.direction.value, user_id=route.user.id,
        from_email=parsed.from_.email if parsed.from_ else "",
        from_name=parsed.from_.name if parsed.from_ else "",
        to=[{"email": a.email, "name": a.name} for a in parsed.to],
        cc=[{"email": a.email, "name": a.name} for a in parsed.cc],
        subject=parsed.subject, sent_at=sent_at, text=parsed.text,
        html=sanitize_html(parsed.html) if parsed.html else "",
        size=prepared.raw_size, parse_notes=list(parsed.defects),
        sources=[EmailSource(source=route.source.value)], attachments=[],
        contact_links=[EmailContact(contact_id=c.id) for c in contacts],
    )
    session.add(email)
    await _store_attachments(session, blobs, portal, email, parsed)
    await session.flush()

    company_ids = {c.company_id for c in contacts if c.company_id is not None}
    session.add_all(EmailCompany(email_id=email.id, company_id=cid) for cid in company_ids)
    await _associate_tags(session, portal.id, email.id, envelope.tags, company_ids)
    await _claim_refs(
        session, portal.id, thread_id,
        [prepared.message_id, *parsed.in_reply_to, *parsed.references],
    )
    session.add(Event(
        portal_id=portal.id, user_id=route.user.id, type="logged", email_id=email.id,
        detail={"source": route.source.value, "subject": parsed.subject[:200]},
    ))
    await session.flush()
    return IngestResult("logged", email.id, thread_id)
