"""Agents reply to a ticket, or forward it, from inboxlog (docs/ticket-replies.md).

The message is From the team inbox's address (``support@acme.com``, else its own
``<token>@<bcc domain>``), with ``In-Reply-To`` the customer's latest message and
``References`` the ticket's conversation up to it, so the customer's client threads it
and their answer comes back onto the ticket; the subject carries ``[Ticket#N]`` for
clients that rewrite the headers. The inbox's shared signature follows the text; a
forward carries the forwarded message's stored files. When the team inbox has a
connected mailbox of its own (``core.inboxes.team_mailbox``), the message goes through
that mailbox's SMTP server (the connector's ``TeamMailer``, with the limits and the
uncertain-send answer of CRM sends) From its address, and its copy is appended to the
mailbox's Sent folder once it is logged (so the Sent folder's sync finds it logged and
recognises it); else through the operator's relay (``core.outbound_mail``), as
inboxlog's own mail goes.

Order: the collision check and the composing are one write (the agent's presence turns
``replying``); then the relay takes the message; only then is it logged on the ticket, in
one write: the email (the team inbox's, outgoing, the agent's), its Message-ID claimed
by the ticket's thread, the ``agent_reply`` activity (what SLAs read) and the
``ticket_replied`` event. Nothing is logged for a message the relay (or the mailbox's
server) refused, nor for one whose sending is uncertain (``send_unconfirmed``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, inboxes
from core._store import claim_refs
from core.errors import InvalidInput, NotFound, RelayFailed, StorageUnavailable
from core.inboxes import InboxError, MailboxSendFailed
from core.outbound_mail import OutboundMail
from core.pipeline import Prepared, prepare
from core.storage.blobs import BlobStore
from core.storage.models import (
    Contact,
    Email,
    EmailTicket,
    Portal,
    TeamInbox,
    Ticket,
    User,
    utcnow,
)
from core.tickets import activity, canned, presence, service
from core.tickets.activity import Kind
from core.tickets.matching import Status, with_token
from core.tickets.presence import Present, State
from core.tickets.recording import store_email
from core.types import Direction, EventType, InboxErrorCode, MessageId, ThreadReason

if TYPE_CHECKING:
    from core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_TEXT = 100_000
MAX_FORWARDED = 25 * 1024 * 1024  # what common relays and mailboxes take in one message
MAX_RECIPIENTS = 20
_REFERENCES = 20  # the newest Message-IDs of the conversation a reply names
_QUOTED_LINES = 200
_BREAKS = re.compile(r"[\x00-\x1f\x7f]+")


class ReplySentNotLogged(StorageUnavailable):
    """The reply went out (the relay or the mailbox's server took it) and the database
    could not log it: sending it again would send it twice."""

    code = "reply_sent_not_logged"


@dataclass(frozen=True)
class ReplyRequest:
    """What an agent sends: their ``text`` (or a canned response's, filled in), to the
    ticket's customer unless ``to`` says otherwise (a forward needs ``to``).
    ``seen_activity_id`` is the ticket version they loaded (else their presence's);
    ``force`` sends despite another agent's reply since; ``status`` moves the ticket
    after the reply (``pending``: waiting on the customer)."""

    text: str = ""
    canned_response_id: int | None = None
    forward: bool = False
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    seen_activity_id: int | None = None
    force: bool = False
    status: Status | None = None


@dataclass(frozen=True)
class ReplySent:
    email_id: int
    message_id: MessageId
    ticket_id: int
    activity_id: int
    recipients: tuple[str, ...]
    others: tuple[Present, ...] = field(default=())
    # Sent through the team inbox's own mailbox (else the relay): where its copy went,
    # or why not.
    via_mailbox: bool = False
    sent_folder: str | None = None
    sent_copy_error: str | None = None
    sent_copy_error_code: InboxErrorCode | None = None


@dataclass(frozen=True)
class _Draft:
    message: EmailMessage
    sender: str
    recipients: tuple[str, ...]
    message_id: MessageId
    others: tuple[Present, ...]
    team_inbox_id: int | None = None  # set: through that team inbox's own mailbox


def _addresses(values: Sequence[str], name: str) -> tuple[str, ...]:
    found: list[str] = []
    for n, value in enumerate(values):
        try:
            address = accounts.normalize_address(value)
        except InvalidInput:
            raise InvalidInput(f"{name}[{n}]: not an email address") from None
        if address not in found:
            found.append(address)
    return tuple(found)


def header_text(value: str) -> str:
    """``value`` fit for a header: line breaks and other control characters (a subject
    or a name edited through the API may hold them) become one space."""
    return " ".join(_BREAKS.sub(" ", value).split())


def inbox_address(inbox: TeamInbox, bcc_domain: str) -> str:
    """The address a team inbox's mail goes out from."""
    return inbox.address or f"{inbox.token}@{bcc_domain.lower()}"


def _replied_to(emails: Sequence[Email]) -> Email | None:
    """The message a reply answers: the customer's latest, else the latest."""
    incoming = [e for e in emails if e.direction == Direction.INCOMING.value]
    chosen = incoming or list(emails)
    return chosen[-1] if chosen else None


def references(emails: Sequence[Email], replied: Email) -> list[str]:
    """The conversation's Message-IDs up to ``replied``, oldest first (the newest
    ``_REFERENCES``), ending with it (RFC 5322 3.6.4)."""
    chain = [e.message_id for e in emails if not e.synthetic_message_id]
    if replied.message_id in chain:
        chain = chain[:chain.index(replied.message_id) + 1]
    chain = [m for m in dict.fromkeys(chain) if m != replied.message_id]
    return [*chain, replied.message_id][-_REFERENCES:]


def _quoted(email: Email) -> str:
    when = format_datetime(email.sent_at)
    who = formataddr((email.from_name, email.from_email))
    lines = (email.reply_text or email.text).splitlines()[:_QUOTED_LINES]
    return f"On {when}, {who} wrote:\n" + "\n".join(f"> {line}" for line in lines)


def _forwarded(email: Email) -> str:
    to = ", ".join(formataddr((a.get("name", ""), a["email"])) for a in email.to)
    return ("---------- Forwarded message ----------\n"
            f"From: {formataddr((email.from_name, email.from_email))}\n"
            f"Date: {format_datetime(email.sent_at)}\nSubject: {email.subject}\n"
            f"To: {to}\n\n{email.text}")


async def _text(session: AsyncSession, ticket: Ticket, agent: User,
                wanted: ReplyRequest) -> tuple[str, canned.Context]:
    context = await canned.context_of(session, ticket, agent)
    text = wanted.text
    if wanted.canned_response_id is not None:
        if text.strip():
            raise InvalidInput("text: give the text or a canned_response_id, not both")
        assert ticket.team_inbox_id is not None
        try:
            response = await canned.get_response(session, ticket.portal_id, agent.id,
                                                 ticket.team_inbox_id,
                                                 wanted.canned_response_id)
        except NotFound:
            raise InvalidInput(f"canned_response_id: this ticket's inbox has no canned "
                               f"response {wanted.canned_response_id}") from None
        text = canned.render(response.body, context)
    if not text.strip():
        raise InvalidInput("text: a reply has some text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text: at most {MAX_TEXT} characters")
    return text, context


async def _attach_forwarded(message: EmailMessage, email: Email, blobs: BlobStore) -> None:
    """The forwarded message's stored files go along (InvalidInput past MAX_FORWARDED);
    one whose bytes were not kept is named in the text instead."""
    files = [a for a in email.attachments if not a.inline]
    if sum(a.size for a in files if a.blob_sha256) > MAX_FORWARDED:
        raise InvalidInput(f"forward: its files are larger than "
                           f"{MAX_FORWARDED // (1024 * 1024)} MB in all")
    for file in files:
        if file.blob_sha256 is None:
            continue
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(await blobs.get(file.blob_sha256),
                               maintype=maintype or "application",
                               subtype=subtype or "octet-stream", filename=file.filename)


def _not_kept(email: Email) -> str:
    names = [a.filename for a in email.attachments if not a.inline and a.blob_sha256 is None]
    return ("\n\n(Not forwarded, not stored here: " + ", ".join(names) + ")") if names else ""


async def _compose(session: AsyncSession, portal: Portal, ticket: Ticket, agent: User,
                   wanted: ReplyRequest, bcc_domain: str, blobs: BlobStore,
                   others: Sequence[Present], mailbox: str | None = None) -> _Draft:
    """The message; From ``mailbox`` (the team inbox's own mailbox's address) when given."""
    text, context = await _text(session, ticket, agent, wanted)
    inbox = context.inbox
    emails = await service.emails_of(session, ticket.id)
    replied = _replied_to(emails)
    to = _addresses(wanted.to, "to")
    cc = _addresses(wanted.cc, "cc")
    if not to and not wanted.forward:
        customer = (replied.from_email if replied is not None
                    and replied.direction == Direction.INCOMING.value
                    else context.contact.email if context.contact is not None else "")
        to = (customer.lower(),) if customer else ()
    if not to:
        raise InvalidInput("to: " + ("a forward names its recipients" if wanted.forward
                                     else "this ticket has no customer to reply to"))
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise InvalidInput(f"to: at most {MAX_RECIPIENTS} recipients in all")
    own = mailbox or inbox_address(inbox, bcc_domain)
    domain = own.rpartition("@")[2]
    message_id = MessageId(f"ticket-{ticket.id}-{secrets.token_hex(8)}@{domain}")
    message = EmailMessage()
    name = f"{agent.name} ({inbox.name})" if agent.name.strip() else inbox.name
    message["From"] = formataddr((header_text(name), own))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    prefix = "Fwd: " if wanted.forward else "Re: "
    message["Subject"] = with_token(prefix + header_text(ticket.subject), ticket.id)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{message_id}>"
    if replied is not None and not wanted.forward:
        message["In-Reply-To"] = f"<{replied.message_id}>"
        message["References"] = " ".join(f"<{m}>" for m in references(emails, replied))
    body = text.rstrip()
    if inbox.signature.strip():
        body += "\n\n-- \n" + canned.render(inbox.signature.strip(), context)
    if replied is not None:
        body += "\n\n" + (_forwarded(replied) + _not_kept(replied) if wanted.forward
                           else _quoted(replied))
    message.set_content(body + "\n")
    if wanted.forward and replied is not None:
        await _attach_forwarded(message, replied, blobs)
    return _Draft(message, own, to + cc, message_id, tuple(others),
                  inbox.id if mailbox else None)


async def _agent(session: AsyncSession, portal_id: int, user_id: int) -> User:
    agent = await session.get(User, user_id)
    if agent is None or agent.portal_id != portal_id:
        raise NotFound(f"no user {user_id}")
    return agent


async def _draft(runtime: Runtime, portal_id: int, user_id: int, ticket_id: int,
                 wanted: ReplyRequest) -> _Draft:
    async with runtime.db.transaction() as session:
        ticket = await service.ticket(session, portal_id, user_id, ticket_id)
        if ticket.merged_into_id is not None:
            raise InvalidInput(f"ticket {ticket.id} was merged into ticket "
                               f"{ticket.merged_into_id}: reply there")
        others = await presence.check_collision(
            session, ticket, user_id, seen_activity_id=wanted.seen_activity_id,
            force=wanted.force)
        await presence.register(session, ticket, user_id, State.REPLYING)
        portal = await session.get(Portal, portal_id)
        assert portal is not None
        agent = await _agent(session, portal_id, user_id)
        assert ticket.team_inbox_id is not None
        mailbox = await inboxes.team_mailbox(session, ticket.team_inbox_id)
        return await _compose(session, portal, ticket, agent, wanted,
                              runtime.settings.bcc_domain, runtime.blobs, others,
                              mailbox.address if mailbox is not None else None)


async def _send(runtime: Runtime, portal_id: int, draft: _Draft) -> None:
    """Hand the message to the team inbox's mailbox (MailboxSendFailed when it was not
    sent, or may not have been), else to the relay for each recipient
    (RelayNotConfigured without one, RelayFailed when it refuses): nothing is logged
    then."""
    if draft.team_inbox_id is not None:
        mailer = inboxes.team_mailer(runtime)
        try:
            if mailer is None:
                raise InboxError(InboxErrorCode.DISCONNECTED, "the team inbox's mailbox is "
                                 "not served by this process (no connector runs here)")
            await mailer.deliver_team(portal_id, draft.team_inbox_id, draft.message,
                                      draft.recipients)
        except InboxError as exc:
            raise MailboxSendFailed(exc) from None
        return
    relay = runtime.settings.outbound_mail.relay
    sender = OutboundMail(relay, draft.sender)
    for recipient in draft.recipients:
        await sender.send(draft.message, recipient)


async def _log(runtime: Runtime, portal_id: int, user_id: int, ticket_id: int,
               wanted: ReplyRequest, draft: _Draft, prepared: Prepared) -> ReplySent:
    async def work(session: AsyncSession) -> ReplySent:
        ticket = await service.ticket(session, portal_id, user_id, ticket_id)
        assert ticket.team_inbox_id is not None and ticket.thread_id is not None
        portal = await session.get(Portal, portal_id)
        inbox = await session.get(TeamInbox, ticket.team_inbox_id)
        agent = await _agent(session, portal_id, user_id)
        assert portal is not None and inbox is not None
        contacts = [c for c in [await session.get(Contact, cid) for cid in
                                await service.contact_ids(session, ticket.id)]
                    if c is not None and c.email in draft.recipients]
        email = await store_email(session, portal, inbox, prepared, runtime.blobs,
                                  ticket.thread_id, ThreadReason.IN_REPLY_TO, contacts,
                                  agent, None, None)
        await claim_refs(session, portal_id, ticket.thread_id, [draft.message_id])
        session.add(EmailTicket(email_id=email.id, ticket_id=ticket.id))
        kind = "forward" if wanted.forward else "reply"
        activity.log(session, ticket, Kind.AGENT_REPLY, actor=user_id, email_id=email.id,
                     detail={"via": "inboxlog", "kind": kind, "forced": wanted.force})
        replied = presence.logged(session)
        activity.emit(session, ticket, EventType.TICKET_REPLIED, email_id=email.id,
                      by="agent", user=user_id, what=kind)
        if wanted.status is not None:
            await activity.set_status(session, ticket, wanted.status, actor=user_id,
                                      reason="agent_reply", email_id=email.id)
        await session.flush()
        await presence.register(session, ticket, user_id, State.VIEWING)
        await presence.seen(session, ticket.id, user_id, replied.id)
        return ReplySent(email.id, draft.message_id, ticket.id, replied.id,
                         draft.recipients, draft.others)

    return await runtime.db.run(work)


async def reply(runtime: Runtime, portal_id: int, user_id: int, ticket_id: int,
                wanted: ReplyRequest) -> ReplySent:
    """Send an agent's reply (or forward) and log it on the ticket; see the module
    docstring. NotFound for a ticket the agent may not see; InvalidInput for a bad
    request; ``presence.ReplyCollision`` when another agent replied since they loaded
    it; RelayNotConfigured / RelayFailed when the relay cannot take it (nothing logged);
    ReplySentNotLogged when it went out and the database could not log it."""
    draft = await _draft(runtime, portal_id, user_id, ticket_id, wanted)
    raw = draft.message.as_bytes()
    prepared = await prepare(raw, spool_dir=runtime.blobs.spool_dir())
    try:
        await _send(runtime, portal_id, draft)
    except RelayFailed:
        log.warning("a reply on ticket %s was not sent", ticket_id, exc_info=True)
        raise
    try:
        sent = await _log(runtime, portal_id, user_id, ticket_id, wanted, draft, prepared)
    except StorageUnavailable as exc:
        log.error("a reply on ticket %s went out as <%s> and was not logged: %s", ticket_id,
                  draft.message_id, exc.message)
        raise ReplySentNotLogged(
            f"the reply <{draft.message_id}> was sent to {', '.join(draft.recipients)} but "
            f"could not be logged on the ticket ({exc.message}): do not send it again"
        ) from None
    mailer = inboxes.team_mailer(runtime)
    if draft.team_inbox_id is None or mailer is None:
        return sent
    # Only now, logged: the Sent folder's sync must find it logged, not log it anew.
    copy = await mailer.copy_team_sent(portal_id, draft.team_inbox_id, raw)
    return replace(sent, via_mailbox=True, sent_folder=copy.folder,
                   sent_copy_error=copy.error.message if copy.error else None,
                   sent_copy_error_code=copy.error.code if copy.error else None)
