"""A team inbox's acknowledgement of a new ticket (``TeamInbox.auto_acknowledge``).

It is an automatic reply in RFC 3834's sense: ``Auto-Submitted: auto-replied`` (so the
customer's auto-responder does not answer it), ``X-Auto-Response-Suppress: All`` (nor
Exchange's), a null envelope sender (bounces of it go nowhere), ``In-Reply-To`` and
``References`` the customer's message (their client threads it), and the ticket's
``[Ticket#N]`` token in the subject. It goes out through the operator's relay
(``core.outbound_mail``) once the ticket is committed, never before; ``intake`` sends it
only to a person's mail, at most once per sender in four hours.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

from core.errors import RelayFailed, RelayNotConfigured
from core.mail.parsing import ParsedMessage
from core.outbound_mail import OutboundMail
from core.storage.models import TeamInbox, Ticket, utcnow
from core.tickets.matching import with_token
from core.types import MessageId

if TYPE_CHECKING:
    from core.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_TEXT = ("Thank you for writing to us. We have received your message and opened "
                "ticket #{ticket}; we will answer as soon as we can. Reply to this email "
                "to add to it.")


@dataclass(frozen=True)
class Acknowledgement:
    message: EmailMessage
    recipient: str
    message_id: MessageId


def acknowledgement(inbox: TeamInbox, ticket: Ticket, parsed: ParsedMessage,
                    message_id: MessageId, bcc_domain: str) -> Acknowledgement:
    """The acknowledgement of ``ticket`` opened by ``parsed`` (pure but for its id)."""
    assert parsed.from_ is not None
    own = inbox.address or f"{inbox.token}@{bcc_domain}"
    ack_id = MessageId(f"ticket-{ticket.id}-ack-{secrets.token_hex(8)}@{bcc_domain}")
    message = EmailMessage()
    message["From"] = formataddr((inbox.name, own))
    message["To"] = formataddr((parsed.from_.name, parsed.from_.email))
    message["Subject"] = with_token("Re: " + ticket.subject, ticket.id)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{ack_id}>"
    message["In-Reply-To"] = f"<{message_id}>"
    message["References"] = " ".join(f"<{m}>" for m in [*parsed.references, message_id][-20:])
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Loop"] = own
    text = (inbox.ack_text or DEFAULT_TEXT).replace("{ticket}", str(ticket.id))
    message.set_content(text + ("\n\n-- \n" + inbox.signature if inbox.signature else ""))
    return Acknowledgement(message, parsed.from_.email, ack_id)


_sending: set[asyncio.Task[None]] = set()


def send_later(runtime: Runtime, ack: Acknowledgement) -> None:
    """Send ``ack`` in the background (the SMTP reply to the customer's message does not
    wait on the relay); a server without a relay sends none."""
    try:
        relay = runtime.settings.outbound_mail.relay
    except RelayNotConfigured:
        log.info("no SMTP relay: the acknowledgement of a ticket is not sent")
        return
    # The null reverse-path of RFC 3834 3.3: nothing bounces back to the team inbox.
    sender = OutboundMail(relay, "")
    task = asyncio.get_running_loop().create_task(_send(sender, ack))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


async def _send(sender: OutboundMail, ack: Acknowledgement) -> None:
    try:
        await sender.send(ack.message, ack.recipient)
    except RelayFailed:
        log.warning("the acknowledgement of a ticket was not sent", exc_info=True)


async def drain() -> None:
    """Wait for the acknowledgements being sent (a server shutting down; tests)."""
    while _sending:
        await asyncio.gather(*list(_sending), return_exceptions=True)
