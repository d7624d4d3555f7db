"""JSON shapes of the API objects (SPEC "HTTP contract"); one function per object."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from core.storage.models import Attachment, Company, Contact, Email, Portal, Thread, User
from core.tracked_sends import StoredHit
from core.tracking import Counts


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id, "email": contact.email, "name": contact.name,
        "company_id": contact.company_id, "created_at": iso(contact.created_at),
    }


def company_json(company: Company) -> dict[str, Any]:
    return {"id": company.id, "name": company.name, "domain": company.domain}


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id, "filename": attachment.filename,
        "content_type": attachment.content_type, "size": attachment.size,
        "sha256": attachment.sha256, "stored": attachment.blob_sha256 is not None,
        "inline": attachment.inline, "content_id": attachment.content_id,
    }


def tracking_json(counts: Counts | None) -> dict[str, int]:
    """Opens and clicks of a tracked email; zeros for an email that was not tracked."""
    if counts is None:
        return {"opens": 0, "clicks": 0, "machine_opens": 0, "machine_clicks": 0}
    return {"opens": counts.opens, "clicks": counts.clicks,
            "machine_opens": counts.machine_opens, "machine_clicks": counts.machine_clicks}


def truncated_ip(ip: str) -> str:
    """An address cut to its network (IPv4 /24, IPv6 /48): where, never who.

    An IPv6 address that carries an IPv4 one in its first 48 bits (6to4, ``2002::/16``)
    or whole (IPv4-mapped) is cut as that IPv4 address: its /48 would show all of it.
    """
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def hit_json(hit: StoredHit) -> dict[str, Any]:
    """One open or click of a tracked send and its verdict; the address only truncated."""
    return {
        "id": hit.id, "kind": hit.kind, "at": iso(hit.at), "verdict": hit.verdict.label,
        "counted": hit.verdict.counted, "reason": hit.verdict.reason,
        "client": hit.verdict.client, "network": truncated_ip(hit.ip),
        "link": None if hit.position is None else {"position": hit.position, "url": hit.url},
    }


def _snippet(text: str) -> str:
    return " ".join(text.split())[:200]


def email_summary_json(email: Email, counts: Counts | None = None) -> dict[str, Any]:
    return {
        "id": email.id, "message_id": email.message_id, "thread_id": email.thread_id,
        "direction": email.direction, "sources": [s.source for s in email.sources],
        "from": {"email": email.from_email, "name": email.from_name},
        "to": email.to, "cc": email.cc, "subject": email.subject,
        "sent_at": iso(email.sent_at),
        "snippet": _snippet(email.reply_text or email.text),
        "contact_ids": [link.contact_id for link in email.contact_links],
        "attachment_count": len(email.attachments), "tracking": tracking_json(counts),
        "auth": email.auth,
    }


def email_json(email: Email, counts: Counts | None = None) -> dict[str, Any]:
    return {
        "id": email.id, "message_id": email.message_id, "thread_id": email.thread_id,
        "thread_reason": email.thread_reason, "direction": email.direction,
        "sources": [s.source for s in email.sources],
        "from": {"email": email.from_email, "name": email.from_name},
        "to": email.to, "cc": email.cc, "subject": email.subject,
        "sent_at": iso(email.sent_at), "logged_at": iso(email.created_at),
        "text": email.text, "reply_text": email.reply_text or email.text,  # "": the same
        "html": email.html,
        "notes": list(email.parse_notes),
        "contact_ids": [link.contact_id for link in email.contact_links],
        "attachments": [attachment_json(a) for a in email.attachments],
        "tracking": tracking_json(counts),
        # Sender authentication at SMTP ingest; null when nothing was checked.
        "auth": email.auth,
    }


def thread_json(thread: Thread, emails: list[Email], counts: dict[int, Counts]) -> dict[str, Any]:
    return {
        "id": thread.id, "subject": thread.subject,
        "emails": [email_summary_json(e, counts.get(e.id)) for e in emails],
    }


def me_json(portal: Portal, user: User | None, bcc_domain: str) -> dict[str, Any]:
    return {
        "role": "admin" if user is None else "user",
        "portal": {
            "id": portal.id, "name": portal.name,
            "bcc_address": f"{portal.bcc_token}@{bcc_domain}",
        },
        "user": None if user is None else {
            "id": user.id, "email": user.email, "name": user.name,
            "addresses": [a.address for a in user.addresses if a.confirmed_at is not None],
        },
    }
