"""A team inbox's message written down: its email row, the ticket it opens (routed,
with its log and event) or continues, and the acknowledgement of a new ticket. The
steps of ``core.tickets.intake`` after it decided to log the message. Never commits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core._store import associate, claim_refs, store_attachments, store_raw_copy
from core.mail.parsing import ParsedMessage
from core.mail.threads import base_subject
from core.pipeline import Prepared
from core.retention import RAW_POLICY
from core.routing import never_logged
from core.storage.blobs import BlobStore
from core.storage.models import (
    Company,
    Contact,
    Email,
    EmailContact,
    EmailSource,
    Portal,
    TeamInbox,
    Ticket,
    TicketContact,
    User,
    utcnow,
)
from core.tickets import activity, routing
from core.tickets.acknowledgements import Acknowledgement, acknowledgement
from core.tickets.activity import Kind
from core.tickets.matching import Status
from core.tickets.senders import claim_acknowledgement
from core.types import Direction, EventType, MessageId, Source, ThreadReason


async def store_email(session: AsyncSession, portal: Portal, inbox: TeamInbox,
                      prepared: Prepared, blobs: BlobStore, thread_id: int,
                      reason: ThreadReason, contacts: list[Contact], agent: User | None,
                      automatic: str | None, auth: Any, *, also: tuple[Source, ...] = (),
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


async def open_ticket(session: AsyncSession, portal: Portal, inbox: TeamInbox,
                      parsed: ParsedMessage, email: Email, thread_id: int,
                      contacts: list[Contact], agent: User | None) -> Ticket:
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


async def continue_ticket(session: AsyncSession, ticket: Ticket, email: Email,
                          contacts: list[Contact], agent: User | None,
                          automatic: str | None) -> None:
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


async def acknowledge(session: AsyncSession, inbox: TeamInbox, ticket: Ticket,
                      parsed: ParsedMessage, message_id: MessageId, sender: str,
                      bcc_domain: str, mailbox: str | None) -> Acknowledgement | None:
    """The acknowledgement of a new ticket, at most once per sender per ACK_INTERVAL,
    From the inbox's connected ``mailbox`` when it has one (it is sent through it); its
    Message-ID joins the ticket's thread, so a reply to it continues the ticket."""
    if not await claim_acknowledgement(session, inbox.id, sender):
        return None
    ack = acknowledgement(inbox, ticket, parsed, message_id, bcc_domain, mailbox)
    assert ticket.thread_id is not None
    await claim_refs(session, inbox.portal_id, ticket.thread_id, [ack.message_id])
    return ack

