"""A team inbox's mail in: the step ``core.pipeline.log_message`` takes, inside its
transaction, for mail addressed to a team inbox (docs/tickets.md, "Mail in").

Unlike the logging address, anyone may write to a team inbox: it is support@. So the
guards differ: automatic mail (``core.mail.auto_replies``) never opens, reopens or is
acknowledged; a per-sender hourly allowance is the last guard against loops and floods;
a sender whose domain fails DMARC under reject/quarantine continues no ticket; mail
claiming a portal user is held to the portal's sender-authentication policy as at the
logging address. Then the message continues the ticket it belongs to
(``core.tickets.matching``) or opens a new one, routed (``core.tickets.routing``).
Never commits.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, audit
from core._store import associate, claim_refs, store_attachments, store_raw_copy
from core.contacts import match_contacts
from core.errors import SenderAuthUnavailable, SenderNotAuthenticated
from core.mail.auto_replies import loop_reason, may_answer
from core.mail.parsing import ParsedMessage
from core.mail.threads import base_subject, claimed_ids, thread_index_key, thread_keys
from core.pipeline import IngestResult, Prepared
from core.retention import RAW_POLICY
from core.routing import contact_candidates, never_logged
from core.sender_auth import Action, Claim, SenderAuthPolicy, decide
from core.storage.blobs import BlobStore
from core.storage.models import (
    Company,
    Contact,
    Email,
    EmailContact,
    EmailSource,
    EmailTicket,
    Inbox,
    Portal,
    TeamInbox,
    TeamInboxSender,
    Thread,
    ThreadRef,
    Ticket,
    TicketContact,
    User,
    utcnow,
)
from core.tickets import access, activity, routing
from core.tickets.acknowledgements import Acknowledgement, acknowledgement
from core.tickets.activity import Kind
from core.tickets.matching import Known, Match, Status, Via, continued, subject_token
from core.types import (
    Direction,
    Envelope,
    EventType,
    IngestOutcome,
    MessageId,
    NotLoggedReason,
    Source,
    ThreadReason,
)

_INBOX_TAG = re.compile(r"^inbox-(\d{1,18})$")
SENDER_WINDOW = timedelta(hours=1)
ACK_INTERVAL = timedelta(hours=4)  # RFC 3834 3.1.1: not the same sender again soon
# New tickets one team inbox opens in an hour at most: past it, mail that would open one
# is not logged (mail continuing a ticket still is). An outsider rotating From addresses
# passes every per-sender allowance; this bounds what they cost. Generous: a busy
# support@ opens far fewer.
HOURLY_TICKETS_ENV = "INBOXLOG_TEAM_INBOX_HOURLY_TICKETS"
DEFAULT_HOURLY_TICKETS = 1000
# The ``team_inbox_senders`` row counting the inbox's refusals past that cap (not an
# address: no sender has it).
_CAP_ROW = "*"
PRUNE_EVERY = 600.0  # seconds between one process's prunings of one inbox's sender rows
_pruned: dict[int, float] = {}


def hourly_ticket_cap() -> int:
    """The inbox-wide cap on new tickets per hour (``INBOXLOG_TEAM_INBOX_HOURLY_TICKETS``)."""
    text = os.environ.get(HOURLY_TICKETS_ENV, "").strip()
    return max(1, int(text)) if text.isdigit() else DEFAULT_HOURLY_TICKETS


async def addressed_inbox(session: AsyncSession, portal: Portal,
                          envelope: Envelope) -> TeamInbox | None:
    """The team inbox of ``portal`` this copy came to (its ``inbox-<id>`` tag), or None."""
    for tag in envelope.tags:
        match = _INBOX_TAG.match(tag.lower())
        if match is None or int(match.group(1)) >= 2**63:
            continue
        inbox = await session.get(TeamInbox, int(match.group(1)))
        if inbox is not None and inbox.portal_id == portal.id:
            return inbox
    return None


def own_addresses(inbox: TeamInbox, portal: Portal, bcc_domain: str) -> frozenset[str]:
    """The addresses a team inbox's own mail comes from or goes to (lower-case)."""
    domain = bcc_domain.lower()
    found = {f"{inbox.token}@{domain}", f"{portal.bcc_token}+inbox-{inbox.id}@{domain}"}
    if inbox.address:
        found.add(inbox.address.lower())
    return frozenset(found)


def _trusted(portal: Portal, envelope: Envelope, agent: User | None) -> tuple[bool, Any]:
    """Whether the sender may continue a ticket, and the auth record for the email.
    Raises SenderNotAuthenticated / SenderAuthUnavailable for mail claiming a portal
    user that the portal's policy refuses (as at the logging address)."""
    claim = Claim.PORTAL_USER if agent is not None else Claim.CONTACT
    decision = decide(envelope.auth, SenderAuthPolicy(portal.sender_auth), claim)
    if decision.action is Action.REFUSE:
        raise SenderNotAuthenticated(decision)
    if decision.action is Action.TEMPFAIL:
        raise SenderAuthUnavailable(decision)
    record = None
    if envelope.auth is not None and portal.sender_auth != SenderAuthPolicy.OFF:
        record = {**envelope.auth.as_json(), "policy": portal.sender_auth,
                  "decision": str(decision.action)}
    return decision.action is not Action.DETACH, record


async def _counted(session: AsyncSession, inbox: TeamInbox, address: str) -> int:
    """Count one more message of ``address`` in its current hour; the count. One
    statement (an upsert returning the count), so two writers at once on PostgreSQL
    (``serve --workers``, other nodes) each add their own one: none counts from a
    value the other has already raised."""
    await _prune(session, inbox.id)
    at = utcnow()
    now = literal(at, TeamInboxSender.window_start.type)
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    over = TeamInboxSender.window_start <= at - SENDER_WINDOW  # its hour is over
    upsert = insert(TeamInboxSender).values(
        team_inbox_id=inbox.id, address=address, window_start=now, count=1,
    ).on_conflict_do_update(
        index_elements=[TeamInboxSender.team_inbox_id, TeamInboxSender.address],
        set_={"window_start": case((over, now), else_=TeamInboxSender.window_start),
              "count": case((over, 1), else_=TeamInboxSender.count + 1)},
    ).returning(TeamInboxSender.count)
    return int(await session.scalar(upsert) or 0)


async def _prune(session: AsyncSession, inbox_id: int) -> None:
    """Drop the inbox's sender rows that no longer count: their hour is over and they
    were not acknowledged within ACK_INTERVAL (at most every PRUNE_EVERY per process)."""
    now = time.monotonic()
    if now - _pruned.get(inbox_id, -PRUNE_EVERY) < PRUNE_EVERY:
        return
    _pruned[inbox_id] = now
    cutoff = utcnow() - max(SENDER_WINDOW, ACK_INTERVAL)
    await session.execute(
        delete(TeamInboxSender).where(
            TeamInboxSender.team_inbox_id == inbox_id, TeamInboxSender.window_start < cutoff,
            or_(TeamInboxSender.last_ack_at.is_(None), TeamInboxSender.last_ack_at < cutoff))
        .execution_options(synchronize_session=False))


async def _opened_this_hour(session: AsyncSession, inbox: TeamInbox, cap: int) -> int:
    """The tickets ``inbox`` opened in the last hour (counted up to ``cap``)."""
    recent = (select(Ticket.id).where(
        Ticket.portal_id == inbox.portal_id, Ticket.created_at >= utcnow() - SENDER_WINDOW,
        Ticket.team_inbox_id == inbox.id).limit(cap).subquery())
    return int(await session.scalar(select(func.count()).select_from(recent)) or 0)


async def _referenced_threads(session: AsyncSession, portal_id: int,
                              parsed: ParsedMessage) -> list[int]:
    """The threads the message's references name, nearest relative first, then the
    one its Outlook Thread-Index names even beside an In-Reply-To (Exchange rewrites the
    In-Reply-To of replies to ids of copies inboxlog never saw)."""
    keys = [k.message_id for k in thread_keys(parsed)]
    conversation = thread_index_key(parsed.thread_index)
    if conversation is not None and conversation not in keys:
        keys.append(conversation)
    if not keys:
        return []
    claimed = {message_id: thread_id for message_id, thread_id in await session.execute(
        select(ThreadRef.message_id, ThreadRef.thread_id).where(
            ThreadRef.portal_id == portal_id, ThreadRef.message_id.in_(keys)))}
    return list(dict.fromkeys(claimed[k] for k in keys if k in claimed))


async def _surviving(session: AsyncSession, ticket: Ticket) -> Ticket:
    """The ticket a merged one lives on in (merges may chain)."""
    for _ in range(20):
        if ticket.merged_into_id is None:
            break
        into = await session.get(Ticket, ticket.merged_into_id)
        if into is None:
            break
        ticket = into
    return ticket


async def _is_contact(session: AsyncSession, ticket_id: int, sender: str) -> bool:
    return await session.scalar(
        select(TicketContact.contact_id).join(Contact, Contact.id == TicketContact.contact_id)
        .where(TicketContact.ticket_id == ticket_id, Contact.email == sender).limit(1)
    ) is not None


async def _match(session: AsyncSession, inbox: TeamInbox, parsed: ParsedMessage,
                 sender: str, *, agent: bool, trusted: bool) -> Match | None:
    """The ticket this message continues, or None."""
    threads = await _referenced_threads(session, inbox.portal_id, parsed)
    by_thread: dict[int, Ticket] = {}
    if threads:
        rows = await session.scalars(select(Ticket).where(
            Ticket.portal_id == inbox.portal_id, Ticket.team_inbox_id == inbox.id,
            Ticket.thread_id.in_(threads)))
        by_thread = {t.thread_id: t for t in rows if t.thread_id is not None}
    referenced: list[Known] = []
    for thread_id in threads:
        if thread_id in by_thread:
            ticket = await _surviving(session, by_thread[thread_id])
            referenced.append(Known(ticket.id, True, await _is_contact(session, ticket.id, sender)))
    token = None
    number = subject_token(parsed.subject)
    if number is not None and 0 < number < 2**63:
        named = await session.get(Ticket, number)
        if named is not None and named.team_inbox_id == inbox.id:
            named = await _surviving(session, named)
            token = Known(named.id, named.thread_id in threads,
                          await _is_contact(session, named.id, sender))
    return continued(referenced, token, sender_is_agent=agent, trusted=trusted)


def _not_logged(session: AsyncSession, portal: Portal, envelope: Envelope,
                prepared: Prepared, code: NotLoggedReason, reason: str) -> IngestResult:
    parsed = prepared.message.parsed
    audit.record(session, portal.id, code, reason, source=Source.TEAM_INBOX.value,
                 logging_address=envelope.logging_address,
                 sender=parsed.from_.key if parsed.from_ else None,
                 envelope_sender=envelope.mail_from, message_id=prepared.message.message_id,
                 size=len(prepared.raw), team_inbox_id=audit.team_inbox_of(envelope))
    return IngestResult(IngestOutcome.NOT_LOGGED, reason=reason, source=Source.TEAM_INBOX)


async def log_team_mail(session: AsyncSession, *, portal: Portal, inbox: TeamInbox,
                        prepared: Prepared, envelope: Envelope, blobs: BlobStore,
                        bcc_domain: str) -> IngestResult:
    """Log a message that came to ``inbox`` on the ticket it continues, or on a new
    ticket; see the module docstring. Raises SenderNotAuthenticated /
    SenderAuthUnavailable (stored nothing) as ``core.pipeline.ingest`` does."""
    parsed, message_id = prepared.message.parsed, prepared.message.message_id
    assert message_id is not None
    users = await accounts.users_by_address(session, portal.id)
    sender = parsed.from_.key if parsed.from_ is not None else ""
    agent = users.get(sender)
    trusted, auth = _trusted(portal, envelope, agent)
    existing = await session.scalar(select(Email).where(
        Email.portal_id == portal.id, Email.message_id == message_id))
    if existing is not None and not await _shareable(session, inbox, existing, sender):
        if not any(s.source == Source.TEAM_INBOX.value for s in existing.sources):
            existing.sources.append(EmailSource(source=Source.TEAM_INBOX.value))
            await session.flush()
        if existing.from_email.lower() != sender:  # not theirs: no id of it to them
            return IngestResult(IngestOutcome.DUPLICATE, reason="a message with this "
                                "Message-ID is already logged", source=Source.TEAM_INBOX)
        return IngestResult(IngestOutcome.DUPLICATE, existing.id, existing.thread_id,
                            source=Source.TEAM_INBOX)
    own = own_addresses(inbox, portal, bcc_domain)
    mailbox = await session.scalar(select(Inbox.address).where(Inbox.team_inbox_id == inbox.id))
    if mailbox is not None:  # its connected mailbox's (replies go out From it)
        own = own | {mailbox.lower()}
    automatic = loop_reason(parsed, own)
    count = await _counted(session, inbox, sender or (envelope.mail_from or ""))
    if count > inbox.sender_hourly_limit:
        reason = (f"more than {inbox.sender_hourly_limit} messages from this sender in "
                  "an hour")
        if count > inbox.sender_hourly_limit + 1:  # logged once per sender and hour
            return IngestResult(IngestOutcome.NOT_LOGGED, reason=reason,
                                source=Source.TEAM_INBOX)
        return _not_logged(session, portal, envelope, prepared, NotLoggedReason.RATE_LIMITED,
                           reason)
    people, blocked = contact_candidates(parsed, Direction.INCOMING, users, bcc_domain,
                                         portal.never_log)
    people = {a: n for a, n in people.items() if a not in own}
    if never_logged(sender, portal.never_log) or (blocked and not people):
        return _not_logged(session, portal, envelope, prepared, NotLoggedReason.NEVER_LOG,
                           "on the never-log list")
    found = await _match(session, inbox, parsed, sender, agent=agent is not None,
                                  trusted=trusted)
    if found is None and automatic is not None:
        return _not_logged(session, portal, envelope, prepared, NotLoggedReason.BULK,
                           f"automatic mail ({automatic}) opens no ticket")
    if found is None and (cap := hourly_ticket_cap()) <= await _opened_this_hour(
            session, inbox, cap):
        reason = f"this inbox opened {cap} tickets in the last hour: no more for now"
        if await _counted(session, inbox, _CAP_ROW) > 1:  # logged once an hour
            return IngestResult(IngestOutcome.NOT_LOGGED, reason=reason,
                                source=Source.TEAM_INBOX)
        return _not_logged(session, portal, envelope, prepared, NotLoggedReason.RATE_LIMITED,
                           reason)
    # A help desk needs its customers on record: a ticket's contacts are made whatever
    # auto_create_contacts says (it governs personal logging); automatic mail makes none.
    contacts = await match_contacts(session, portal.id, people, create=automatic is None)
    ticket = None if found is None else await session.get(Ticket, found.ticket_id)
    thread_id = ticket.thread_id if ticket is not None else None
    if thread_id is None and existing is not None:
        thread_id = existing.thread_id  # the ticket shares the personal copy's thread
    if thread_id is None:
        thread = Thread(portal_id=portal.id, subject=base_subject(parsed.subject)[:998])
        session.add(thread)
        await session.flush()
        thread_id = thread.id
    reason = (ThreadReason.NEW if found is None
              else ThreadReason.IN_REPLY_TO if found.via is Via.THREAD
              else ThreadReason.REFERENCES)
    # Synced from the team inbox's own mailbox, or forwarded to its address.
    also = (Source.SYNC,) if envelope.source_hint is Source.SYNC else ()
    if existing is not None:
        email = existing
        email.sources.extend(EmailSource(source=s.value) for s in (Source.TEAM_INBOX, *also)
                             if s.value not in {e.source for e in email.sources})
    else:
        email = await _store(session, portal, inbox, prepared, blobs, thread_id, reason,
                             contacts, agent, automatic, auth, also=also)
    await claim_refs(session, portal.id, thread_id, claimed_ids(parsed, message_id))
    ack = None
    if ticket is None:
        ticket = await _open(session, portal, inbox, parsed, email, thread_id, contacts, agent)
        if inbox.auto_acknowledge and agent is None and may_answer(parsed, own):
            ack = await _acknowledge(session, inbox, ticket, parsed, message_id, sender,
                                     bcc_domain, mailbox)
    else:
        await _continue(session, ticket, email, contacts, agent, automatic)
    session.add(EmailTicket(email_id=email.id, ticket_id=ticket.id))
    await session.flush()
    return IngestResult(IngestOutcome.LOGGED, email.id, thread_id, source=Source.TEAM_INBOX,
                        acknowledgement=ack)


async def _shareable(session: AsyncSession, inbox: TeamInbox, existing: Email,
                     sender: str) -> bool:
    """Whether ``existing`` (the same Message-ID, logged before) is a personal copy of
    this very message that ``inbox`` should still open or continue its ticket with: a
    salesperson CC'd on the customer's mail to support@ logged it first. It stays one
    email (personal, as everyone in the portal saw it), linked to the ticket too. Not
    when it is already on one of the inbox's tickets, is another team inbox's, or is
    from someone else than this copy (a reused Message-ID)."""
    if (existing.team_inbox_id is not None or existing.deleted_at is not None
            or existing.from_email.lower() != sender or not sender):
        return False
    on_ticket = await session.scalar(
        select(EmailTicket.ticket_id).join(Ticket, Ticket.id == EmailTicket.ticket_id)
        .where(and_(EmailTicket.email_id == existing.id, Ticket.team_inbox_id == inbox.id))
        .limit(1))
    return on_ticket is None


async def _store(session: AsyncSession, portal: Portal, inbox: TeamInbox, prepared: Prepared,
                 blobs: BlobStore, thread_id: int, reason: ThreadReason,
                 contacts: list[Contact], agent: User | None, automatic: str | None,
                 auth: Any, *, also: tuple[Source, ...] = (),
                 outgoing: bool | None = None) -> Email:
    parsed = prepared.message.parsed
    now = utcnow()
    sent_at = parsed.date if parsed.date and parsed.date < now + timedelta(days=1) else now
    notes = list(parsed.defects)
    if automatic:
        notes.append(f"automatic mail: {automatic}")
    message_id = prepared.message.message_id
    assert message_id is not None
    email = Email(
        portal_id=portal.id, message_id=message_id,
        synthetic_message_id=prepared.message.synthetic_id, thread_id=thread_id,
        thread_reason=reason.value,
        direction=(Direction.OUTGOING if (agent is not None if outgoing is None else outgoing)
                   else Direction.INCOMING).value,
        user_id=agent.id if agent is not None else None,
        from_email=parsed.from_.email[:320] if parsed.from_ else "",
        from_name=parsed.from_.name[:200] if parsed.from_ else "",
        to=[{"email": a.email, "name": a.name} for a in parsed.to
            if not never_logged(a.key, portal.never_log)],
        cc=[{"email": a.email, "name": a.name} for a in parsed.cc
            if not never_logged(a.key, portal.never_log)],
        subject=parsed.subject, sent_at=sent_at, text=parsed.text,
        reply_text=prepared.message.display.reply_text, html=prepared.message.display.html,
        size=len(prepared.raw), parse_notes=notes, automatic=automatic, auth=auth,
        language=prepared.message.display.language, team_inbox_id=inbox.id,
        sources=[EmailSource(source=s.value) for s in (Source.TEAM_INBOX, *also)],
        attachments=[], contact_links=[EmailContact(contact_id=c.id) for c in contacts],
    )
    session.add(email)
    await store_attachments(session, blobs, email, parsed.attachments,
                            keep_files=portal.log_attachments)
    await session.flush()
    await store_raw_copy(session, blobs, email.id, prepared.raw, RAW_POLICY[Source.TEAM_INBOX])
    await associate(session, portal.id, email.id,
                    {c.company_id for c in contacts if c.company_id is not None}, ())
    return email


async def _add_contacts(session: AsyncSession, ticket: Ticket, contacts: list[Contact]) -> None:
    have = set(await session.scalars(select(TicketContact.contact_id).where(
        TicketContact.ticket_id == ticket.id)))
    session.add_all(TicketContact(ticket_id=ticket.id, contact_id=c.id)
                    for c in dict.fromkeys(contacts) if c.id not in have)


async def _open(session: AsyncSession, portal: Portal, inbox: TeamInbox, parsed: ParsedMessage,
                email: Email, thread_id: int, contacts: list[Contact],
                agent: User | None) -> Ticket:
    """A new ticket for this message, routed, with its log and events."""
    customer = contacts[0] if contacts else None
    ticket = Ticket(
        portal_id=portal.id, subject=base_subject(parsed.subject)[:500] or "(no subject)",
        team_inbox_id=inbox.id, thread_id=thread_id, pipeline=inbox.default_pipeline,
        stage=inbox.default_stage, status=Status.OPEN.value, priority="normal",
        contact_id=customer.id if customer else None,
        company_id=customer.company_id if customer else None, tags=[],
        language=email.language,
        updated_at=utcnow())
    session.add(ticket)
    await session.flush()
    await _add_contacts(session, ticket, contacts)
    company = (await session.get(Company, customer.company_id)
               if customer is not None and customer.company_id is not None else None)
    facts = routing.facts_of(inbox, parsed, email, customer, company, ticket.language)
    decision = await routing.route(session, inbox, ticket, facts)
    activity.log(session, ticket, Kind.CREATED, email_id=email.id,
                 actor=agent.id if agent else None,
                 detail={"cycle": 1, "rules": list(decision.outcome.matched)})
    activity.emit(session, ticket, EventType.TICKET_CREATED, email_id=email.id,
                  recipient=decision.user_id, subject=ticket.subject[:200],
                  sender=email.from_email)
    await routing.apply(session, ticket, decision)
    return ticket


async def _continue(session: AsyncSession, ticket: Ticket, email: Email,
                    contacts: list[Contact], agent: User | None, automatic: str | None) -> None:
    """Log the message on its ticket: an auto-reply changes nothing; a customer's reply
    reopens a closed ticket (a new response cycle) and makes a pending one open."""
    if automatic is not None:
        activity.log(session, ticket, Kind.AUTOMATIC, email_id=email.id,
                     detail={"reason": automatic})
        return
    if agent is not None:
        activity.log(session, ticket, Kind.AGENT_REPLY, actor=agent.id, email_id=email.id,
                     detail={"via": "mail"})
        activity.emit(session, ticket, EventType.TICKET_REPLIED, email_id=email.id,
                      by="agent", user=agent.id)
        return
    await _add_contacts(session, ticket, contacts)
    activity.log(session, ticket, Kind.CUSTOMER_MESSAGE, email_id=email.id)
    await activity.set_status(session, ticket, Status.OPEN, reason="customer_reply",
                              email_id=email.id)
    activity.emit(session, ticket, EventType.TICKET_REPLIED, email_id=email.id,
                  by="customer", sender=email.from_email)


async def _acknowledge(session: AsyncSession, inbox: TeamInbox, ticket: Ticket,
                       parsed: ParsedMessage, message_id: MessageId, sender: str,
                       bcc_domain: str, mailbox: str | None) -> Acknowledgement | None:
    """The acknowledgement of a new ticket, at most once per sender per ACK_INTERVAL,
    From the inbox's connected ``mailbox`` when it has one (it is sent through it); its
    Message-ID joins the ticket's thread, so a reply to it continues the ticket."""
    if not await _claim_acknowledgement(session, inbox.id, sender):
        return None
    ack = acknowledgement(inbox, ticket, parsed, message_id, bcc_domain, mailbox)
    assert ticket.thread_id is not None
    await claim_refs(session, inbox.portal_id, ticket.thread_id, [ack.message_id])
    return ack


async def _claim_acknowledgement(session: AsyncSession, inbox_id: int, sender: str) -> bool:
    """Whether ``sender`` may be acknowledged now (not within ACK_INTERVAL), marking it
    acknowledged if so. One conditional UPDATE ... RETURNING: of two writers at once on
    PostgreSQL the second waits for the first's row lock, then finds it acknowledged."""
    now = utcnow()
    claimed = await session.scalar(
        update(TeamInboxSender)
        .where(TeamInboxSender.team_inbox_id == inbox_id, TeamInboxSender.address == sender,
               or_(TeamInboxSender.last_ack_at.is_(None),
                   TeamInboxSender.last_ack_at <= now - ACK_INTERVAL))
        .values(last_ack_at=now)
        .returning(TeamInboxSender.address)
        .execution_options(synchronize_session=False))
    return claimed is not None


async def answered_ticket(session: AsyncSession, inbox: TeamInbox,
                          parsed: ParsedMessage) -> Ticket | None:
    """The ticket of ``inbox`` a message sent from its own mailbox answers: one its
    In-Reply-To / References / Thread-Index name the thread of, or whose ``[Ticket#N]``
    token its subject carries together with such a header (a token alone is not
    enough: the agent may have pasted it into new mail). None otherwise, and for
    automatic mail (an acknowledgement the mailbox's provider filed in Sent)."""
    if loop_reason(parsed) is not None:
        return None
    threads = await _referenced_threads(session, inbox.portal_id, parsed)
    if not threads:
        return None
    rows = {t.thread_id: t for t in await session.scalars(select(Ticket).where(
        Ticket.portal_id == inbox.portal_id, Ticket.team_inbox_id == inbox.id,
        Ticket.thread_id.in_(threads)))}
    number = subject_token(parsed.subject)
    if number is not None and 0 < number < 2**63:
        named = await session.get(Ticket, number)
        if (named is not None and named.team_inbox_id == inbox.id
                and named.thread_id in threads):
            return await _surviving(session, named)
    for thread_id in threads:  # the nearest relative first
        if thread_id in rows:
            return await _surviving(session, rows[thread_id])
    return None


async def log_mailbox_sent(session: AsyncSession, *, portal: Portal, inbox: TeamInbox,
                           prepared: Prepared, blobs: BlobStore) -> IngestResult:
    """Log a message an agent sent from the team inbox's own mailbox outside inboxlog
    (Outlook on support@; found in its Sent folder) on the ticket it answers, as an
    agent reply (``detail.via`` ``mailbox``): by the portal user its ``Sender`` (or
    From) names when they are a member of the inbox, else unattributed. Mail answering
    no ticket is not logged (the mailbox's other business). Never commits."""
    parsed, message_id = prepared.message.parsed, prepared.message.message_id
    assert message_id is not None
    existing = await session.scalar(select(Email.id).where(
        Email.portal_id == portal.id, Email.message_id == message_id))
    if existing is not None:
        return IngestResult(IngestOutcome.DUPLICATE, existing, source=Source.TEAM_INBOX)
    ticket = await answered_ticket(session, inbox, parsed)
    if ticket is None or ticket.thread_id is None:
        return IngestResult(IngestOutcome.NOT_LOGGED, reason="sent from the mailbox, "
                            "answering no ticket", source=Source.TEAM_INBOX)
    users = await accounts.users_by_address(session, portal.id)
    members = set(await access.inbox_members(session, inbox.id))
    agent = next((user for address in (parsed.sender, parsed.from_) if address is not None
                  and (user := users.get(address.key)) is not None and user.id in members),
                 None)
    recipients = {a.key for a in (*parsed.to, *parsed.cc)}
    contacts = [c for c in await session.scalars(
        select(Contact).join(TicketContact, TicketContact.contact_id == Contact.id)
        .where(TicketContact.ticket_id == ticket.id)) if c.email in recipients]
    email = await _store(session, portal, inbox, prepared, blobs, ticket.thread_id,
                         ThreadReason.IN_REPLY_TO, contacts, agent, None, None,
                         also=(Source.SYNC,), outgoing=True)
    await claim_refs(session, portal.id, ticket.thread_id, claimed_ids(parsed, message_id))
    session.add(EmailTicket(email_id=email.id, ticket_id=ticket.id))
    actor = agent.id if agent is not None else None
    activity.log(session, ticket, Kind.AGENT_REPLY, actor=actor, email_id=email.id,
                 detail={"via": "mailbox", "kind": "reply"})
    activity.emit(session, ticket, EventType.TICKET_REPLIED, email_id=email.id,
                  by="agent", user=actor, what="reply")
    await session.flush()
    return IngestResult(IngestOutcome.LOGGED, email.id, ticket.thread_id,
                        source=Source.TEAM_INBOX)
