"""Logging on a user's explicit request from the extension: a raw message they opened,
or a tracked send they just sent. Same pipeline, source ``extension``."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy.ext.asyncio import AsyncSession

from core import pipeline
from core.errors import InvalidInput, NotFound
from core.storage.blobs import BlobStore
from core.storage.models import Email, EmailSource, Portal, TrackedSend, User, utcnow
from core.types import Envelope, IngestOutcome, Source


@dataclass(frozen=True)
class Logged:
    email: Email
    created: bool  # False: it was logged already (a source may have been added)


async def _result_email(session: AsyncSession, result: pipeline.IngestResult) -> Logged:
    if result.email_id is None:
        raise InvalidInput(f"not logged: {result.reason}")
    email = await session.get(Email, result.email_id)
    if email is None:
        raise NotFound(f"no email {result.email_id}")
    await session.refresh(email)
    return Logged(email, result.outcome is IngestOutcome.LOGGED)


async def log_raw(
    session: AsyncSession, *, portal: Portal, user: User, prepared: pipeline.Prepared,
    blobs: BlobStore, bcc_domain: str,
) -> Logged:
    """Log a message the user asked to log (one click in their mail client)."""
    result = await pipeline.ingest(
        session, portal=portal, prepared=prepared, blobs=blobs, bcc_domain=bcc_domain,
        envelope=Envelope(source_hint=Source.EXTENSION, on_behalf_of=user.email),
    )
    return await _result_email(session, result)


def tracked_send_message(send: TrackedSend, user: User, message_id: str | None) -> bytes:
    """The tracked send as the raw message it was sent as (as far as inboxlog knows)."""
    msg = EmailMessage()
    msg["From"] = formataddr((user.name, user.email))
    msg["To"] = ", ".join(send.to)
    if send.cc:
        msg["Cc"] = ", ".join(send.cc)
    msg["Subject"] = send.subject
    msg["Date"] = format_datetime(send.sent_at or utcnow())
    if message_id:
        msg["Message-ID"] = f"<{message_id.strip().strip('<>')}>"
    msg.set_content(send.html, subtype="html")
    return msg.as_bytes()


async def mark_sent(send: TrackedSend) -> None:
    if send.sent_at is None:
        send.sent_at = utcnow()


async def log_tracked_send(
    session: AsyncSession, *, portal: Portal, user: User, send: TrackedSend,
    message_id: str | None, blobs: BlobStore, bcc_domain: str,
) -> Logged:
    """Mark a tracked send as sent and log it, unless its copy was logged already."""
    await mark_sent(send)
    if send.email_id is not None:
        email = await session.get(Email, send.email_id)
        if email is not None:
            if all(s.source != Source.EXTENSION for s in email.sources):
                email.sources.append(EmailSource(source=Source.EXTENSION.value))
                await session.flush()
            return Logged(email, False)
    if message_id is not None and (not message_id.strip("<> ") or len(message_id) > 900
                                   or "@" not in message_id):
        raise InvalidInput("message_id must look like local@domain")
    prepared = await pipeline.prepare(tracked_send_message(send, user, message_id))
    logged = await log_raw(session, portal=portal, user=user, prepared=prepared, blobs=blobs,
                           bcc_domain=bcc_domain)
    # inboxlog wrote this message itself: a missing Message-ID is no defect of the user's.
    logged.email.parse_notes = [n for n in logged.email.parse_notes
                                if n != "missing Message-ID header"]
    return logged
