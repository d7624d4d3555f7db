"""Shapes of tracked sends, their hits, and the events feed."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from core import tracked_sends
from core.storage.models import Event as EventRow
from core.storage.models import TrackedSend as TrackedSendRow
from core.tracked_sends import MAX_RECIPIENTS, MAX_SUBJECT, StoredHit
from core.types import EventType, HitKind, HitVerdict
from extension_api.schemas import _checks
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp
from extension_api.schemas.mail import NO_TRACKING, Id, Tracking


class Recipient(RequestShape, forbid_unknown_fields=False):
    """A recipient with a display name (other fields are ignored)."""

    email: str
    name: str = ""


Recipients = str | Annotated[list[str | Recipient], Meta(max_length=MAX_RECIPIENTS)]
_SPLIT = "a list, or one string of comma-separated addresses"


def _addresses(field: str, value: Recipients, *, check: bool = False) -> list[str]:
    """Each entry's address; ``check``: that it is exactly one (ValueError naming it)."""
    found = []
    for index, entry in enumerate(_checks.entries(value, split_string=True)):
        name = f"{field}[{index}]"
        if isinstance(entry, Recipient):
            if check:
                _checks.display_name(f"{name}.name", entry.name)
            entry, name = entry.email, f"{name}.email"
        assert isinstance(entry, str)
        if check:
            _checks.one_address(name, entry)
        found.append(entry.strip())
    if len(found) > MAX_RECIPIENTS:
        raise ValueError(f"{field} must be a list of at most {MAX_RECIPIENTS} addresses")
    return found


class TrackedSendRequest(RequestShape):
    """An email about to be sent: its HTML comes back with links rewritten and a pixel
    appended."""

    to: Annotated[Recipients, Meta(description=f"at least one recipient: {_SPLIT}")]
    cc: Recipients = msgspec.field(default_factory=list)
    bcc: Recipients = msgspec.field(default_factory=list)
    subject: Annotated[str, Meta(max_length=MAX_SUBJECT)] = ""
    html: str = ""
    track_opens: bool = True
    track_clicks: bool = True
    log: bool = True

    def __post_init__(self) -> None:
        for field in ("to", "cc", "bcc"):
            _addresses(field, getattr(self, field), check=True)
        _checks.header_text("subject", self.subject)

    def request(self) -> tracked_sends.TrackedSendRequest:
        return tracked_sends.TrackedSendRequest(
            to=_addresses("to", self.to), cc=_addresses("cc", self.cc),
            bcc=_addresses("bcc", self.bcc), subject=self.subject, html=self.html,
            track_opens=self.track_opens, track_clicks=self.track_clicks, log=self.log)


class TrackedSendCreated(ResponseShape):
    id: Id
    token: str
    html: Annotated[str, Meta(description="send this: links rewritten, pixel added")]
    pixel_url: str | None


class TrackedSend(ResponseShape):
    """A tracked send and its opens and clicks."""

    id: Id
    token: str
    subject: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    track_opens: bool
    track_clicks: bool
    log: bool
    created_at: Timestamp
    sent_at: Timestamp | None
    email_id: int | None
    tracking: Tracking


class TrackedSendNotLogged(TrackedSend):
    """A tracked send marked sent, not logged (it was not to be)."""

    logged: Literal[False]


def _send_fields(send: TrackedSendRow, tracking: Tracking) -> dict[str, Any]:
    return {"id": send.id, "token": send.token, "subject": send.subject, "to": send.to,
            "cc": send.cc, "bcc": send.bcc, "track_opens": send.track_opens,
            "track_clicks": send.track_clicks, "log": send.log,
            "created_at": send.created_at, "sent_at": send.sent_at,
            "email_id": send.email_id, "tracking": tracking}


def tracked_send_of(send: TrackedSendRow, tracking: Tracking = NO_TRACKING) -> TrackedSend:
    return TrackedSend(**_send_fields(send, tracking))


def not_logged_of(send: TrackedSendRow) -> TrackedSendNotLogged:
    return TrackedSendNotLogged(**_send_fields(send, NO_TRACKING), logged=False)


class SentRequest(RequestShape):
    """How the mail client identified the message it sent (optional)."""

    message_id: Annotated[str, Meta(extra_json_schema={
        "minLength": 3, "maxLength": 900, "pattern": "@"})] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.message_id, str):
            _checks.header_text("message_id", self.message_id)

    def given_message_id(self) -> str | None:
        return None if isinstance(self.message_id, UnsetType) else self.message_id


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


class HitLink(ResponseShape):
    position: int
    url: str | None


class TrackingHit(ResponseShape):
    """One open or click of a tracked send and its verdict."""

    id: Id
    kind: HitKind
    at: Timestamp
    verdict: Annotated[HitVerdict, Meta(
        description="sender: the sender's own open, never counted")]
    counted: Annotated[bool, Meta(description="false: the sender's own open, or Gmail's "
                                  "image proxy fetching again")]
    reason: Annotated[str, Meta(description='why, in words: "Outlook desktop (Windows), '
                                '2 h after the send", "Apple Mail Privacy Protection '
                                'prefetch"')]
    client: Annotated[str, Meta(description="client family named by the user agent")]
    network: Annotated[str, Meta(description="the address truncated to its /24 (IPv6 "
                                 "/48); the full address is never shown")]
    link: HitLink | None


def hit_of(hit: StoredHit) -> TrackingHit:
    """One open or click of a tracked send and its verdict; the address only truncated."""
    return TrackingHit(
        id=hit.id, kind=HitKind(hit.kind), at=hit.at, verdict=HitVerdict(hit.verdict.label),
        counted=hit.verdict.counted, reason=hit.verdict.reason, client=hit.verdict.client,
        network=truncated_ip(hit.ip),
        link=None if hit.position is None else HitLink(position=hit.position, url=hit.url))


class Event(ResponseShape):
    """A notification: an open, a click, a reply, an email logged, an inbox
    disconnected."""

    id: Id
    type: EventType
    email_id: int | None
    at: Timestamp
    machine: bool
    detail: dict[str, Any]


def event_of(event: EventRow) -> Event:
    return Event(id=event.id, type=EventType(event.type), email_id=event.email_id,
                 at=event.at, machine=event.machine, detail=event.detail)
