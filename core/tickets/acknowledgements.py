"""A team inbox's acknowledgement of a new ticket (``TeamInbox.auto_acknowledge``).

It is an automatic reply in RFC 3834's sense: ``Auto-Submitted: auto-replied`` (so the
customer's auto-responder does not answer it), ``X-Auto-Response-Suppress: All`` (nor
Exchange's), a null envelope sender (bounces of it go nowhere), ``In-Reply-To`` and
``References`` the customer's message (their client threads it), and the ticket's
``[Ticket#N]`` token in the subject. ``intake`` makes one only for a person's mail, at
most once per sender in four hours.

Durable: the acknowledgement is a row of ``acknowledgement_outbox`` written in the
ticket's own transaction (``acknowledgement`` adds it to the ticket's session), so it
exists exactly when the ticket does. After the commit ``send_later`` sends it at once;
a relay that fails, or a process that died before sending, leaves the row due, and
``OutboxSender`` (every ``serve`` process runs one; each sweep is one node's turn,
``core.leases``) sends it later with exponential backoff, up to a day after the
ticket. A sender claims a row before handing it to the relay, so two never send one
at the same time; the message keeps its Message-ID whoever sends it (a receiver
deduplicates on it). Only a process dying after the relay accepted the message but
before it recorded that would send it again once the claim expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import object_session

from core import inboxes, leases
from core.errors import CoreError, RelayFailed, RelayNotConfigured
from core.inboxes import InboxError, MailboxSendFailed, TeamMailer
from core.mail.parsing import ParsedMessage
from core.outbound_mail import OutboundMail
from core.storage.models import AcknowledgementOutbox, TeamInbox, Ticket, utcnow
from core.tickets.matching import with_token
from core.types import InboxErrorCode, InboxStatus, MessageId

if TYPE_CHECKING:
    from core.runtime import Runtime
    from core.storage.db import Database

log = logging.getLogger(__name__)

DEFAULT_TEXT = ("Thank you for writing to us. We have received your message and opened "
                "ticket #{ticket}; we will answer as soon as we can. Reply to this email "
                "to add to it.")
RETRY_ENV = "INBOXLOG_ACK_RETRY_SECONDS"  # the first retry's delay (tests shorten it)
DEFAULT_RETRY = 30.0
MAX_RETRY = 3600.0
GIVE_UP_AFTER = timedelta(days=1)  # an acknowledgement later than that is no use
CLAIM = timedelta(minutes=5)  # a sender's hold on a row while it talks to the relay
TURN = "acknowledgements"  # the sweep's lease (core.leases.take_turn)
# With nothing left to send, how long a sender waits before it looks again (rows of a
# process that died mid-send; its own sends wake it, and a retry's due time does).
IDLE_LOOK = 60.0


@dataclass(frozen=True)
class Acknowledgement:
    message: EmailMessage
    recipient: str
    message_id: MessageId


def acknowledgement(inbox: TeamInbox, ticket: Ticket, parsed: ParsedMessage,
                    message_id: MessageId, bcc_domain: str,
                    mailbox: str | None = None) -> Acknowledgement:
    """The acknowledgement of ``ticket`` opened by ``parsed``, From ``mailbox`` (the team
    inbox's connected mailbox's address) when given; when the ticket is in a session,
    its outbox row is added to it (committed with the ticket, or not at all)."""
    assert parsed.from_ is not None
    own = mailbox or inbox.address or f"{inbox.token}@{bcc_domain}"
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
    ack = Acknowledgement(message, parsed.from_.email, ack_id)
    session = object_session(ticket)
    if session is not None:
        session.add(AcknowledgementOutbox(
            portal_id=ticket.portal_id, ticket_id=ticket.id, message_id=ack_id,
            recipient=ack.recipient, message=message.as_bytes()))
    return ack


def retry_delay(attempts: int, base: float | None = None) -> timedelta:
    """How long after its ``attempts``-th failed attempt a row is tried again."""
    first = base if base is not None else retry_base()
    return timedelta(seconds=min(MAX_RETRY, first * 2 ** max(0, attempts - 1)))


def put_off_delay(age: timedelta, base: float | None = None) -> timedelta:
    """How long a row nobody here can send is put off, ``age`` after it was written: as
    long as it has waited already (at least one retry period, at most MAX_RETRY), so its
    tries back off exponentially as failures do (30 s, 30 s, 1 min, 2 min, ... 1 h):
    about thirty in its day, not one every retry period. (``attempts`` counts sends.)"""
    first = base if base is not None else retry_base()
    return timedelta(seconds=min(MAX_RETRY, max(first, age.total_seconds())))


def retry_base() -> float:
    text = os.environ.get(RETRY_ENV, "").strip()
    return max(0.05, float(text)) if text else DEFAULT_RETRY


def _sender(runtime: Runtime) -> OutboundMail | None:
    try:
        relay = runtime.settings.outbound_mail.relay
    except RelayNotConfigured:
        return None
    # The null reverse-path of RFC 3834 3.3: nothing bounces back to the team inbox.
    return OutboundMail(relay, "")


async def _claim(db: Database, row_id: int, now: datetime) -> AcknowledgementOutbox | None:
    """The row, claimed by this process, when it is due and nobody holds it."""
    async with db.transaction() as session:
        claimed = await session.execute(
            update(AcknowledgementOutbox)
            .where(AcknowledgementOutbox.id == row_id,
                   AcknowledgementOutbox.sent_at.is_(None),
                   AcknowledgementOutbox.given_up_at.is_(None),
                   or_(AcknowledgementOutbox.claimed_until.is_(None),
                       AcknowledgementOutbox.claimed_until < now))
            .values(claimed_until=now + CLAIM,
                    attempts=AcknowledgementOutbox.attempts + 1)
            .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await session.get(AcknowledgementOutbox, row_id)


@dataclass(frozen=True)
class Senders:
    """Who sends acknowledgements from this process: the operator's relay (None without
    one) and the connector's ``TeamMailer`` for team inboxes with a mailbox of their own
    (None where no connector runs)."""

    relay: OutboundMail | None
    mailer: TeamMailer | None = None

    @classmethod
    def of(cls, runtime: Runtime) -> Senders:
        return cls(_sender(runtime), inboxes.team_mailer(runtime))

    def __bool__(self) -> bool:
        return self.relay is not None or self.mailer is not None


async def _mailbox_of(db: Database, row_id: int) -> int | None:
    """The team inbox whose connected mailbox sends the row, None for the relay."""
    async with db.read() as session:
        team_inbox_id = await session.scalar(
            select(Ticket.team_inbox_id).join(
                AcknowledgementOutbox, AcknowledgementOutbox.ticket_id == Ticket.id)
            .where(AcknowledgementOutbox.id == row_id))
        if team_inbox_id is None:
            return None
        mailbox = await inboxes.team_mailbox(session, team_inbox_id)
    connected = mailbox is not None and mailbox.status != InboxStatus.DISCONNECTED
    return team_inbox_id if connected else None


async def deliver(db: Database, senders: Senders | OutboundMail, row_id: int, *,
                  sweeping: bool = False) -> bool:
    """Claim the row and send it, through its team inbox's mailbox when that inbox has
    one connected (as replies go), else the relay; True when the server took it. A
    failure records when to try again (or gives up a day after the ticket); a mailbox
    that took the message and never answered (``send_unconfirmed``) may have sent it:
    the row gives up rather than send it twice. A row nobody here can send waits for a
    process that can; ``sweeping``, it is put off (``_put_off``) so that it leaves
    the sweep's page to the others."""
    if isinstance(senders, OutboundMail):
        senders = Senders(senders)
    through = await _mailbox_of(db, row_id)
    if (senders.relay if through is None else senders.mailer) is None:
        if sweeping:
            await _put_off(db, row_id, "no SMTP relay" if through is None else
                           "no connector runs here to send through the team mailbox")
        return False
    now = utcnow()
    row = await _claim(db, row_id, now)
    if row is None:
        return False
    message = BytesParser(policy=policy.default).parsebytes(row.message)
    assert isinstance(message, EmailMessage)
    try:
        if through is not None:
            assert senders.mailer is not None
            try:
                await senders.mailer.deliver_team(row.portal_id, through, message,
                                                  (row.recipient,))
            except InboxError as exc:
                raise MailboxSendFailed(exc) from None
        else:
            assert senders.relay is not None
            await senders.relay.send(message, row.recipient)
    except RelayFailed as exc:
        failed = utcnow()
        uncertain = (isinstance(exc, MailboxSendFailed)
                     and exc.code == InboxErrorCode.SEND_UNCONFIRMED)
        gave_up = uncertain or failed - row.created_at > GIVE_UP_AFTER
        log.warning("acknowledgement %s not sent (attempt %d)%s: %s", row.message_id,
                    row.attempts, "; giving up" if gave_up else "", exc)
        async with db.transaction() as session:
            await session.execute(
                update(AcknowledgementOutbox).where(AcknowledgementOutbox.id == row_id)
                .values(claimed_until=None, last_error=str(exc)[:500],
                        next_attempt_at=failed + retry_delay(row.attempts),
                        given_up_at=failed if gave_up else None)
                .execution_options(synchronize_session=False))
        return False
    async with db.transaction() as session:
        await session.execute(
            update(AcknowledgementOutbox).where(AcknowledgementOutbox.id == row_id)
            .values(sent_at=utcnow(), claimed_until=None, last_error="")
            .execution_options(synchronize_session=False))
    return True


async def _put_off(db: Database, row_id: int, reason: str) -> None:
    """A row this process cannot send (``reason``): due again later, backing off
    (put_off_delay; another process may send it meanwhile: it is not claimed), or given
    up a day after its ticket, as a failed send would be. Without this, fifty such rows would
    fill every sweep's page and the rows after them would miss their retries."""
    now = utcnow()
    async with db.transaction() as session:
        row = await session.get(AcknowledgementOutbox, row_id)
        if (row is None or row.sent_at is not None or row.given_up_at is not None
                or (row.claimed_until is not None and row.claimed_until >= now)):
            return
        gave_up = now - row.created_at > GIVE_UP_AFTER
        if gave_up:
            log.warning("acknowledgement %s not sent: %s; giving up", row.message_id,
                        reason)
        await session.execute(
            update(AcknowledgementOutbox)
            .where(AcknowledgementOutbox.id == row_id,
                   AcknowledgementOutbox.sent_at.is_(None),
                   AcknowledgementOutbox.given_up_at.is_(None),
                   or_(AcknowledgementOutbox.claimed_until.is_(None),
                       AcknowledgementOutbox.claimed_until < now))
            .values(last_error=reason,
                    next_attempt_at=now + put_off_delay(now - row.created_at),
                    given_up_at=now if gave_up else None)
            .execution_options(synchronize_session=False))


async def sweep(db: Database, senders: Senders) -> int:
    """Send the rows due now (one page); how many were taken."""
    sent = 0
    for row_id in await due(db, utcnow()):
        sent += await deliver(db, senders, row_id, sweeping=True)
    return sent


async def due(db: Database, now: datetime, limit: int = 50) -> list[int]:
    """The rows to send now, oldest first."""
    async with db.read() as session:
        return list(await session.scalars(
            select(AcknowledgementOutbox.id)
            .where(AcknowledgementOutbox.sent_at.is_(None),
                   AcknowledgementOutbox.given_up_at.is_(None),
                   AcknowledgementOutbox.next_attempt_at <= now,
                   or_(AcknowledgementOutbox.claimed_until.is_(None),
                       AcknowledgementOutbox.claimed_until < now))
            .order_by(AcknowledgementOutbox.id).limit(limit)))


_sending: set[asyncio.Task[None]] = set()
_outbox_senders: weakref.WeakSet[OutboxSender] = weakref.WeakSet()


def send_later(runtime: Runtime, ack: Acknowledgement) -> None:
    """Send ``ack`` (committed with its ticket) in the background: the SMTP reply to
    the customer's message does not wait on the relay. A server without a relay
    sends none (its rows wait for one, up to a day)."""
    senders = Senders.of(runtime)
    if not senders:
        log.info("no SMTP relay: the acknowledgement of a ticket is not sent")
        return
    task = asyncio.get_running_loop().create_task(_send(runtime.db, senders, ack.message_id))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


async def _send(db: Database, senders: Senders, message_id: MessageId) -> None:
    try:
        async with db.read() as session:
            row_id = await session.scalar(select(AcknowledgementOutbox.id).where(
                AcknowledgementOutbox.message_id == message_id))
        if row_id is None:  # made outside the ticket's session: nothing was queued
            log.warning("the acknowledgement %s has no outbox row: not sent", message_id)
            return
        await deliver(db, senders, row_id)
    except CoreError:
        log.warning("the acknowledgement %s waits for the next sweep", message_id,
                    exc_info=True)
    finally:
        # Sent, or due again later: the senders here look when that is.
        for sender in list(_outbox_senders):
            sender.wake()


async def drain() -> None:
    """Wait for the acknowledgements being sent (a server shutting down; tests)."""
    while _sending:
        await asyncio.gather(*list(_sending), return_exceptions=True)


class OutboxSender:
    """Sends the due rows of the outbox: at start (a process that died left some),
    then every few seconds, one node's turn at a time."""

    def __init__(self, runtime: Runtime, every: float | None = None) -> None:
        self.runtime = runtime
        self.every = every if every is not None else min(5.0, retry_base())
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> OutboxSender:
        if Senders.of(self.runtime):
            self._task = asyncio.get_running_loop().create_task(self._run())
            _outbox_senders.add(self)
        return self

    def wake(self) -> None:
        """Look at the outbox now (a send of this process ended: sent, or due later)."""
        self._wake.set()

    async def stop(self) -> None:
        _outbox_senders.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await drain()

    async def sweep(self) -> int:
        """Send what is due now; how many the relay took."""
        senders = Senders.of(self.runtime)
        if not senders:
            return 0
        return await sweep(self.runtime.db, senders)

    async def _run(self) -> None:
        while True:
            pause = self.every
            try:
                if await leases.my_turn(self.runtime.db, TURN, self.every):
                    await self.sweep()
                    pause = await self._pause()
            except CoreError:
                log.warning("acknowledgement sweep failed; trying again in %.0f s",
                            self.every, exc_info=True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _pause(self) -> float:
        """Until the earliest unsent row may be tried: ``every`` at least (a row due now
        but claimed by a send in flight), ``IDLE_LOOK`` at most (nothing pending: an
        idle server asks the database nothing in between)."""
        async with self.runtime.db.read() as session:
            earliest = await session.scalar(select(func.min(
                AcknowledgementOutbox.next_attempt_at)).where(
                AcknowledgementOutbox.sent_at.is_(None),
                AcknowledgementOutbox.given_up_at.is_(None)))
        if earliest is None:
            return IDLE_LOOK
        return min(IDLE_LOOK, max(self.every, (earliest - utcnow()).total_seconds()))
