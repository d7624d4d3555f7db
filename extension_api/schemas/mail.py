"""Shapes of logged mail: emails, their threads, files, contacts and companies."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import Meta

from core.storage.models import Attachment as AttachmentRow
from core.storage.models import Company as CompanyRow
from core.storage.models import Contact as ContactRow
from core.storage.models import Email as EmailRow
from core.storage.models import Thread as ThreadRow
from core.tracking import Counts
from core.types import Direction, Source, ThreadReason
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp

log = logging.getLogger(__name__)

Id = Annotated[int, Meta(ge=1)]


class Person(ResponseShape):
    email: str
    name: str


class Tracking(ResponseShape):
    opens: int
    clicks: int
    machine_opens: int
    machine_clicks: int


NO_TRACKING = Tracking(opens=0, clicks=0, machine_opens=0, machine_clicks=0)


def tracking_of(counts: Counts | None) -> Tracking:
    """Opens and clicks of a tracked email; zeros for an email that was not tracked."""
    if counts is None:
        return NO_TRACKING
    return Tracking(opens=counts.opens, clicks=counts.clicks,
                    machine_opens=counts.machine_opens, machine_clicks=counts.machine_clicks)


class Attachment(ResponseShape):
    id: Id
    filename: str
    content_type: str
    size: int
    sha256: str
    stored: bool
    inline: bool
    content_id: str | None


def _attachment_fields(row: AttachmentRow) -> dict[str, Any]:
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type,
            "size": row.size, "sha256": row.sha256, "stored": row.blob_sha256 is not None,
            "inline": row.inline, "content_id": row.content_id}


def attachment_of(row: AttachmentRow) -> Attachment:
    return Attachment(**_attachment_fields(row))


class ContactAttachment(Attachment):
    """A file logged with one of a contact's emails, and that email."""

    email_id: Id
    email_subject: str
    sent_at: Timestamp


def contact_attachment_of(row: AttachmentRow, email: EmailRow) -> ContactAttachment:
    return ContactAttachment(**_attachment_fields(row), email_id=email.id,
                             email_subject=email.subject, sent_at=email.sent_at)


class Spf(ResponseShape):
    result: str
    domain: str
    scope: Literal["mfrom", "helo"]


class DkimSignature(ResponseShape):
    result: str
    domain: str
    selector: str


class Dkim(ResponseShape):
    result: str
    signatures: list[DkimSignature]


class Dmarc(ResponseShape):
    result: str
    from_domain: str | None
    policy: Literal["none", "quarantine", "reject"] | None
    disposition: str
    record_domain: str | None
    pct: int | None


class Arc(ResponseShape):
    result: str
    sealer: str | None
    vouched: bool


class EmailAuth(ResponseShape):
    """Sender authentication at SMTP ingest."""

    source: Annotated[Literal["checked", "upstream"], Meta(
        description="checked here, or read from the trusted upstream's "
                    "Authentication-Results")]
    authserv_id: str | None
    spf: Spf
    dkim: Dkim
    dmarc: Dmarc
    arc: Arc
    reason: str
    policy: Literal["monitor", "enforce"]
    decision: Annotated[Literal["accept", "detach"], Meta(
        description="accept, or detach: logged without joining a thread")]
    would: Annotated[Literal["refuse", "tempfail", "detach", "accept"] | None, Meta(
        description="under monitor, what enforce would have done")]
    failed_check: Literal["dmarc", "spf+dkim", "from", "dns"] | None


_AUTH_DOC = ("sender authentication at SMTP ingest; null when nothing was checked (local "
             "submission, the extension, sync, a CRM send, a portal with sender_auth off)")


def _auth_of(stored: dict[str, Any] | None) -> EmailAuth | None:
    if stored is None:
        return None
    try:
        return msgspec.convert(stored, EmailAuth)
    except msgspec.ValidationError:
        # A row written before its shape was what it is now: shown as it is stored.
        log.warning("email auth of an older shape, shown as stored", exc_info=True)
        return cast(EmailAuth, stored)


class _EmailCommon(ResponseShape, rename={"from_": "from"}):
    id: Id
    message_id: str
    thread_id: Id
    direction: Direction
    sources: list[Source]
    from_: Person
    to: list[Person]
    cc: list[Person]
    subject: str
    sent_at: Timestamp
    contact_ids: list[Id]
    tracking: Tracking
    auth: Annotated[EmailAuth | None, Meta(description=_AUTH_DOC)]


class EmailSummary(_EmailCommon):
    """An email as a timeline or a thread lists it."""

    snippet: str
    attachment_count: int


class Email(_EmailCommon):
    """A logged email."""

    thread_reason: ThreadReason
    logged_at: Timestamp
    text: str
    reply_text: Annotated[str, Meta(
        description="the new part of a reply: no quoted history, no signature")]
    html: Annotated[str, Meta(description="sanitized HTML")]
    notes: Annotated[list[str], Meta(
        description="what was broken or special in the message (charset fallbacks, an "
                    "unreadable forward, automatic mail)")]
    attachments: list[Attachment]


def _people(stored: list[dict[str, str]]) -> list[Person]:
    return [Person(email=p.get("email", ""), name=p.get("name", "")) for p in stored]


def _snippet(text: str) -> str:
    return " ".join(text.split())[:200]


def email_summary_of(email: EmailRow, counts: Counts | None = None) -> EmailSummary:
    return EmailSummary(
        id=email.id, message_id=email.message_id, thread_id=email.thread_id,
        direction=Direction(email.direction), sources=[Source(s.source) for s in email.sources],
        from_=Person(email=email.from_email, name=email.from_name),
        to=_people(email.to), cc=_people(email.cc), subject=email.subject,
        sent_at=email.sent_at, snippet=_snippet(email.reply_text or email.text),
        contact_ids=[link.contact_id for link in email.contact_links],
        attachment_count=len(email.attachments), tracking=tracking_of(counts),
        auth=_auth_of(email.auth))


def email_of(email: EmailRow, counts: Counts | None = None) -> Email:
    return Email(
        id=email.id, message_id=email.message_id, thread_id=email.thread_id,
        thread_reason=ThreadReason(email.thread_reason), direction=Direction(email.direction),
        sources=[Source(s.source) for s in email.sources],
        from_=Person(email=email.from_email, name=email.from_name),
        to=_people(email.to), cc=_people(email.cc), subject=email.subject,
        sent_at=email.sent_at, logged_at=email.created_at,
        text=email.text, reply_text=email.reply_text or email.text,  # "": the same
        html=email.html, notes=list(email.parse_notes),
        contact_ids=[link.contact_id for link in email.contact_links],
        attachments=[attachment_of(a) for a in email.attachments],
        tracking=tracking_of(counts), auth=_auth_of(email.auth))


class Thread(ResponseShape):
    id: Id
    subject: str
    emails: list[EmailSummary]


def thread_of(thread: ThreadRow, emails: list[EmailRow], counts: dict[int, Counts]) -> Thread:
    return Thread(id=thread.id, subject=thread.subject,
                  emails=[email_summary_of(e, counts.get(e.id)) for e in emails])


class MoveRequest(RequestShape):
    """Where to move an email: a thread id, or null to split it off onto a new thread."""

    thread_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None


class Deleted(ResponseShape):
    id: Id
    deleted_at: Timestamp
    restorable_until: Timestamp


class Contact(ResponseShape):
    id: Id
    email: str
    name: str
    company_id: int | None
    created_at: Timestamp


def contact_of(row: ContactRow) -> Contact:
    return Contact(id=row.id, email=row.email, name=row.name, company_id=row.company_id,
                   created_at=row.created_at)


class Company(ResponseShape):
    id: Id
    name: str
    domain: str | None


def company_of(row: CompanyRow) -> Company:
    return Company(id=row.id, name=row.name, domain=row.domain)


class Erased(ResponseShape):
    emails: int
    attachments: int
    events: int
    audit_entries: int
    blobs: int


class ContactDeleted(ResponseShape):
    deleted: Literal[True]
    erased: Erased


class Lookup(ResponseShape):
    """The extension sidebar's answer for one address."""

    contact: Contact | None
    company: Company | None
    recent_emails: list[EmailSummary]
