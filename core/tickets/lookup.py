"""Which ticket of a team inbox a message belongs to, read from the database: the
threads its headers name, the ticket a merged one lives on in, and the decision of
``core.tickets.matching`` (pure) over what was found. Never commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.mail.auto_replies import loop_reason
from core.mail.parsing import ParsedMessage
from core.mail.threads import thread_index_key, thread_keys
from core.storage.models import Contact, TeamInbox, ThreadRef, Ticket, TicketContact
from core.tickets.matching import Known, Match, continued, subject_token


async def referenced_threads(session: AsyncSession, portal_id: int,
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


async def surviving(session: AsyncSession, ticket: Ticket) -> Ticket:
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


async def find_ticket(session: AsyncSession, inbox: TeamInbox, parsed: ParsedMessage,
                      sender: str, *, agent: bool, trusted: bool) -> Match | None:
    """The ticket this message continues, or None."""
    threads = await referenced_threads(session, inbox.portal_id, parsed)
    by_thread: dict[int, Ticket] = {}
    if threads:
        rows = await session.scalars(select(Ticket).where(
            Ticket.portal_id == inbox.portal_id, Ticket.team_inbox_id == inbox.id,
            Ticket.thread_id.in_(threads)))
        by_thread = {t.thread_id: t for t in rows if t.thread_id is not None}
    referenced: list[Known] = []
    for thread_id in threads:
        if thread_id in by_thread:
            ticket = await surviving(session, by_thread[thread_id])
            referenced.append(Known(ticket.id, True, await _is_contact(session, ticket.id, sender)))
    token = None
    number = subject_token(parsed.subject)
    if number is not None and 0 < number < 2**63:
        named = await session.get(Ticket, number)
        if named is not None and named.team_inbox_id == inbox.id:
            named = await surviving(session, named)
            token = Known(named.id, named.thread_id in threads,
                          await _is_contact(session, named.id, sender))
    return continued(referenced, token, sender_is_agent=agent, trusted=trusted)


async def answered_ticket(session: AsyncSession, inbox: TeamInbox,
                          parsed: ParsedMessage) -> Ticket | None:
    """The ticket of ``inbox`` a message sent from its own mailbox answers: one its
    In-Reply-To / References / Thread-Index name the thread of, or whose ``[Ticket#N]``
    token its subject carries together with such a header (a token alone is not
    enough: the agent may have pasted it into new mail). None otherwise, and for
    automatic mail (an acknowledgement the mailbox's provider filed in Sent)."""
    if loop_reason(parsed) is not None:
        return None
    threads = await referenced_threads(session, inbox.portal_id, parsed)
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
            return await surviving(session, named)
    for thread_id in threads:  # the nearest relative first
        if thread_id in rows:
            return await surviving(session, rows[thread_id])
    return None

