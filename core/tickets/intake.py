"""A team inbox's mail in: the step ``core.pipeline.log_message`` takes, inside its
transaction, for mail addressed to a team inbox (docs/tickets.md, "Mail in").

Unlike the logging address, anyone may write to a team inbox: it is support@. So the
guards differ: automatic mail (``core.mail.auto_replies``) never opens, reopens or is
acknowledged; a per-sender hourly allowance is the last guard against loops and floods;
a sender whose domain fails DMARC under reject/quarantine continues no ticket; mail
claiming a portal user is held to the portal's sender-authentication policy as at the
logging address. Then the message continues the ticket it belongs to
(``core.tickets.lookup``, deciding by ``core.tickets.matching``) or opens a new one,
routed (``core.tickets.routing``); ``core.tickets.recording`` writes it down and
``core.tickets.senders`` keeps the per-sender counts. Never commits.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, audit
from core._store import claim_refs
from core.contacts import match_contacts
from core.errors import SenderAuthUnavailable, SenderNotAuthenticated
from core.mail.auto_replies import loop_reason, may_answer
from core.mail.threads import base_subject, claimed_ids
from core.pipeline import IngestResult, Prepared
from core.routing import contact_candidates, never_logged
from core.sender_auth import Action, Claim, SenderAuthPolicy, decide
from core.storage.blobs import BlobStore
from core.storage.models import (
    Contact,
    Email,
    EmailSource,
    EmailTicket,
    Inbox,
    Portal,
    TeamInbox,
    Thread,
    Ticket,
    TicketContact,
    User,
)
from core.tickets import access, activity
from core.tickets.activity import Kind
from core.tickets.lookup import answered_ticket, find_ticket
from core.tickets.matching import Via
from core.tickets.recording import acknowledge, continue_ticket, open_ticket, store_email
from core.tickets.senders import (
    ACK_INTERVAL,
    CAP_ROW,
    SENDER_WINDOW,
    count_message,
    hourly_ticket_cap,
    opened_this_hour,
)
from core.types import (
    Direction,
    Envelope,
    EventType,
    IngestOutcome,
    NotLoggedReason,
    Source,
    ThreadReason,
)

__all__ = ["ACK_INTERVAL", "SENDER_WINDOW", "addressed_inbox", "answered_ticket",
           "hourly_ticket_cap", "log_mailbox_sent", "log_team_mail", "own_addresses"]

_INBOX_TAG = re.compile(r"^inbox-(\d{1,18})$")


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
    count = await count_message(session, inbox, sender or (envelope.mail_from or ""))
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
    found = await find_ticket(session, inbox, parsed, sender, agent=agent is not None,
                              trusted=trusted)
    if found is None and automatic is not None:
        return _not_logged(session, portal, envelope, prepared, NotLoggedReason.BULK,
                           f"automatic mail ({automatic}) opens no ticket")
    if found is None and (cap := hourly_ticket_cap()) <= await opened_this_hour(
            session, inbox, cap):
        reason = f"this inbox opened {cap} tickets in the last hour: no more for now"
        if await count_message(session, inbox, CAP_ROW) > 1:  # logged once an hour
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
        email = await store_email(session, portal, inbox, prepared, blobs, thread_id,
                                  reason, contacts, agent, automatic, auth, also=also)
    await claim_refs(session, portal.id, thread_id, claimed_ids(parsed, message_id))
    ack = None
    if ticket is None:
        ticket = await open_ticket(session, portal, inbox, parsed, email, thread_id,
                                   contacts, agent)
        if inbox.auto_acknowledge and agent is None and may_answer(parsed, own):
            ack = await acknowledge(session, inbox, ticket, parsed, message_id, sender,
                                    bcc_domain, mailbox)
    else:
        await continue_ticket(session, ticket, email, contacts, agent, automatic)
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
    email = await store_email(session, portal, inbox, prepared, blobs, ticket.thread_id,
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
