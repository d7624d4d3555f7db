"""Shapes of connected inboxes: connecting one (with a password or OAuth), reading it,
syncing it now, and sending through it."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from core import inboxes
from core.inboxes import SendResult
from core.inboxes import SyncReport as CoreSyncReport
from core.storage.models import Inbox as InboxRow
from core.types import FolderRole, InboxAuth, InboxErrorCode, InboxStatus, MailSecurity, SendLog
from extension_api.schemas import _checks
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp
from extension_api.schemas.mail import Email, Id

FirstSyncDays = Annotated[int, Meta(ge=0, le=3650, description=(
    "how many days back the first sync logs mail"))]


class MailServer(ResponseShape):
    """An IMAP or SMTP server (in a request, other fields are ignored)."""

    host: Annotated[str, Meta(max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65535)]
    security: MailSecurity

    def endpoint(self, field: str) -> inboxes.Endpoint:
        if not self.host.strip():
            raise ValueError(f"{field}.host is required")
        return inboxes.Endpoint(self.host.strip(), self.port, self.security)


class InboxFolder(ResponseShape):
    role: FolderRole
    name: str
    uidvalidity: int | None
    last_uid: int
    synced_at: Timestamp | None
    status: Annotated[Literal["ok", "failing"], Meta(
        description="failing: the last sync could not read this folder (error says why); "
                    "the other folder was synced all the same")]
    error: str


class Inbox(ResponseShape):
    """A connected inbox, its status and checkpoints; never its password."""

    id: Id
    user_id: Annotated[Id | None, Meta(description="whose mailbox it is; null for a team "
                                       "inbox's (team_inbox_id)")]
    address: str
    username: str
    imap: MailServer
    smtp: MailServer
    first_sync_days: int
    status: InboxStatus
    status_reason: str
    last_sync_at: Timestamp | None
    status_code: Annotated[str, Meta(description=(
        "why it is not connected, when it is not: e.g. auth_rejected, oauth_revoked, "
        "oauth_scope_missing, provider_unavailable, disconnected_by_user; empty when "
        "connected"))]
    auth: InboxAuth
    oauth_provider: Annotated[str, Meta(
        description="google, microsoft, ...; empty for a password inbox")]
    created_at: Timestamp
    folders: list[InboxFolder]
    team_inbox_id: Annotated[Id | None, Meta(description=(
        "the team inbox whose shared mailbox this is (its mail becomes tickets); null "
        "for a user's"))] = None


def inbox_of(inbox: InboxRow) -> Inbox:
    return Inbox(
        id=inbox.id, user_id=inbox.user_id, address=inbox.address, username=inbox.username,
        imap=MailServer(host=inbox.imap_host, port=inbox.imap_port,
                        security=MailSecurity(inbox.imap_security)),
        smtp=MailServer(host=inbox.smtp_host, port=inbox.smtp_port,
                        security=MailSecurity(inbox.smtp_security)),
        first_sync_days=inbox.first_sync_days, status=InboxStatus(inbox.status),
        status_reason=inbox.status_reason, last_sync_at=inbox.last_sync_at,
        status_code=inbox.status_code, auth=InboxAuth(inbox.auth),
        oauth_provider=inbox.oauth_provider, created_at=inbox.created_at,
        folders=[InboxFolder(role=FolderRole(f.role), name=f.name, uidvalidity=f.uidvalidity,
                             last_uid=f.last_uid, synced_at=f.synced_at,
                             status="failing" if f.error else "ok", error=f.error)
                 for f in inbox.folders],
        team_inbox_id=inbox.team_inbox_id)


class InboxConnect(RequestShape):
    """imap and smtp are detected from the address (provider table, RFC 6186 SRV) when
    omitted; the password is stored encrypted and never returned."""

    address: Annotated[str, Meta(max_length=320)] | None = None
    password: Annotated[str, Meta(max_length=1000)] | None = None
    username: Annotated[str, Meta(max_length=320)] | None = None
    imap: MailServer | None = None
    smtp: MailServer | None = None
    first_sync_days: Annotated[FirstSyncDays | None, Meta(description=(
        f"default {inboxes.DEFAULT_FIRST_SYNC_DAYS}; a team inbox's mailbox "
        f"{inboxes.TEAM_FIRST_SYNC_DAYS} (today's mail: its history would open a "
        "ticket for every old message)"))] = None
    team_inbox_id: Annotated[Id | None, Meta(description=(
        "connect this team inbox's own mailbox (support@; the admin only) instead of the "
        "caller's: its mail becomes the team inbox's tickets, replies go out through it"
        ))] = None

    def __post_init__(self) -> None:
        for field in ("address", "password"):
            if not (getattr(self, field) or "").strip():
                raise ValueError(f"{field} is required")
        for field in ("imap", "smtp"):
            if (server := getattr(self, field)) is not None:
                server.endpoint(field)

    def request(self) -> inboxes.ConnectRequest:
        return inboxes.ConnectRequest(
            address=self.address or "", password=self.password or "",
            username=self.username or "",
            imap=self.imap.endpoint("imap") if self.imap else None,
            smtp=self.smtp.endpoint("smtp") if self.smtp else None,
            first_sync_days=_first_sync_days(self.first_sync_days, self.team_inbox_id))


class OAuthStart(RequestShape):
    first_sync_days: Annotated[FirstSyncDays | None, Meta(description=(
        f"default {inboxes.DEFAULT_FIRST_SYNC_DAYS}; a team inbox's mailbox "
        f"{inboxes.TEAM_FIRST_SYNC_DAYS}"))] = None
    team_inbox_id: Annotated[Id | None, Meta(description=(
        "connect this team inbox's own mailbox (the admin only) instead of the caller's"
        ))] = None

    def days(self) -> int:
        return _first_sync_days(self.first_sync_days, self.team_inbox_id)


def _first_sync_days(given: int | None, team_inbox_id: int | None) -> int:
    """The first sync's look-back: as given, else the default for the kind of inbox."""
    if given is not None:
        return given
    return (inboxes.TEAM_FIRST_SYNC_DAYS if team_inbox_id is not None
            else inboxes.DEFAULT_FIRST_SYNC_DAYS)


class OAuthStarted(ResponseShape):
    """The authorization URL to open in the user's browser."""

    provider: str
    authorization_url: Annotated[str, Meta(extra_json_schema={"format": "uri"})]
    expires_in: int


class FolderSync(ResponseShape):
    role: FolderRole
    name: str
    headers_fetched: int
    bodies_fetched: int
    logged: int
    already_logged: int
    last_uid: int
    error: str | None


class SyncReport(ResponseShape):
    """What a sync did, per folder."""

    inbox_id: Id
    status: InboxStatus
    folders: list[FolderSync]


def sync_report_of(report: CoreSyncReport) -> SyncReport:
    return SyncReport(inbox_id=report.inbox_id, status=InboxStatus(report.status), folders=[
        FolderSync(role=FolderRole(f.role), name=f.name, headers_fetched=f.headers_fetched,
                   bodies_fetched=f.bodies_fetched, logged=f.logged,
                   already_logged=f.already_logged, last_uid=f.last_uid, error=f.error)
        for f in report.folders])


MAX_ADDRESSES = 100
Addresses = (str | Annotated[list[Annotated[str, Meta(max_length=320)]],
                             Meta(max_length=MAX_ADDRESSES)] | None)
MAX_BODY = 5_000_000


def _addresses(field: str, value: Addresses, *, check: bool = False) -> tuple[str, ...]:
    found = []
    for index, entry in enumerate(_checks.entries(value or [], split_string=False)):
        assert isinstance(entry, str)
        if check:
            _checks.one_address(f"{field}[{index}]", entry)
            if len(entry) > 320:
                raise ValueError(f"{field} must be a list of email addresses")
        found.append(entry.strip())
    return tuple(found)


class SendRequest(RequestShape):
    """An email to send through one of the caller's connected inboxes (inbox_id; left
    out: their only one)."""

    inbox_id: Annotated[int, Meta(extra_json_schema={"minimum": 1})] | None = None
    to: Addresses = None
    cc: Addresses = None
    bcc: Addresses = None
    subject: Annotated[str, Meta(max_length=998)] | None = None
    text: Annotated[str, Meta(max_length=MAX_BODY)] | None = None
    html: Annotated[str, Meta(max_length=MAX_BODY)] | None = None
    in_reply_to: Annotated[str, Meta(max_length=998)] | None = None
    track_opens: bool = False
    track_clicks: bool = False

    def __post_init__(self) -> None:
        for field in ("to", "cc", "bcc"):
            _addresses(field, getattr(self, field), check=True)
        for field in ("subject", "in_reply_to"):
            if (value := getattr(self, field)) is not None:
                _checks.header_text(field, value)
        if not _addresses("to", self.to):
            raise ValueError("to is required")
        if not (self.text or self.html):
            raise ValueError("give text or html")

    def request(self) -> inboxes.SendRequest:
        return inboxes.SendRequest(
            to=_addresses("to", self.to), cc=_addresses("cc", self.cc),
            bcc=_addresses("bcc", self.bcc), subject=self.subject or "",
            text=self.text or "", html=self.html or "", inbox_id=self.inbox_id,
            in_reply_to=self.in_reply_to or None, track_opens=self.track_opens,
            track_clicks=self.track_clicks)


class RefusedRecipient(ResponseShape):
    address: str
    reply: str


class Sent(ResponseShape):
    """The SMTP server accepted the message: it was sent."""

    email: Annotated[Email | None, Meta(description=(
        "the logged email (always in a 201); null when it is not logged (yet), or logged "
        "but not readable at this moment (a 202 whose log_reason says so)"))]
    email_id: int | None
    message_id: str
    logged: bool
    log: Annotated[SendLog, Meta(description=(
        "pending: the database could not take it now; the message is kept durably and "
        "logged in the background, once. Do not send it again. not_logged: deliberately "
        "(never-log list). failed: sent, but it could not be logged nor kept to log later "
        "(log_reason says why)"))]
    log_reason: str | None
    sent_folder: str | None
    sent_copy_error: str | None
    sent_copy_error_code: Annotated[InboxErrorCode | None, Meta(
        description="e.g. mailbox_full")]
    refused_recipients: Annotated[list[RefusedRecipient], Meta(description=(
        "recipients the SMTP server refused while accepting the message for the others"))]


def sent_of(result: SendResult, email: Email | None = None) -> Sent:
    """What became of a send the SMTP server accepted."""
    return Sent(
        email=email, email_id=result.email_id, message_id=result.message_id,
        logged=result.log == SendLog.LOGGED, log=SendLog(result.log),
        log_reason=result.log_reason, sent_folder=result.sent_folder,
        sent_copy_error=result.sent_copy_error,
        sent_copy_error_code=result.sent_copy_error_code,
        refused_recipients=[RefusedRecipient(address=address, reply=reply)
                            for address, reply in result.refused_recipients.items()])
