"""Connected inboxes, core side: the records, their checkpoints, disconnects, and the
contract the HTTP adapter uses to reach the IMAP/SMTP connector.

The connector itself (``inbox_sync``) implements ``InboxConnector``; the composition
root hands it to the HTTP app, so no adapter imports another.

A team inbox may have a mailbox of its own (``Inbox.team_inbox_id``: support@, connected
by the admin): the connector syncs it into the team inbox's tickets and sends agents'
replies through it (``TeamMailer``, which it registers for its runtime: core's reply
code finds it with ``team_mailer``, since core imports no adapter).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import AddressNotConfirmed, CoreError, InvalidInput, NotFound, RelayFailed
from core.queries import owned
from core.storage.models import Event, Inbox, InboxFolder, TeamInbox, UserAddress, utcnow
from core.types import (
    FolderRole,
    InboxAuth,
    InboxErrorCode,
    InboxStatus,
    MailProtocol,
    MailSecurity,
    SendLog,
)

if TYPE_CHECKING:
    from core.runtime import Runtime

SECURITY = tuple(MailSecurity)
# Failures that end the connection itself (as opposed to one refused command).
CONNECTION_FAILURES = frozenset({InboxErrorCode.UNREACHABLE, InboxErrorCode.TIMEOUT,
                                 InboxErrorCode.THROTTLED})
# Failures a retry with the same credentials cannot cure: the inbox is disconnected.
CREDENTIALS_REJECTED = frozenset({
    InboxErrorCode.AUTH_REJECTED, InboxErrorCode.APP_PASSWORD_REQUIRED,
    InboxErrorCode.OAUTH_REVOKED, InboxErrorCode.OAUTH_SCOPE_MISSING})
DEFAULT_FIRST_SYNC_DAYS = 30
# A team mailbox's first sync takes today's mail only: a shared address's history would
# open (and acknowledge) a ticket for every old message.
TEAM_FIRST_SYNC_DAYS = 0


class InboxError(CoreError):
    """Reaching or using a mailbox failed; ``code`` names the failure precisely:
    ``name_not_found``, ``connection_refused``, ``timeout``, ``unreachable``,
    ``tls_failure``, ``auth_rejected``, ``app_password_required``, ``no_imap``,
    ``no_smtp``, ``throttled``, ``mailbox_full``, ``send_rejected``, ``imap_error``,
    ``no_sent_folder``, ``send_unconfirmed`` (the message went to the server and no
    answer came back: it may have been sent); for OAuth inboxes ``oauth_revoked`` (the
    provider refused to refresh the grant), ``oauth_scope_missing`` and
    ``provider_unavailable`` (the authorization server is down: temporary); the whole
    set is ``core.types.InboxErrorCode``."""

    code: InboxErrorCode

    def __init__(self, code: InboxErrorCode, message: str, *,
                 protocol: MailProtocol = MailProtocol.IMAP) -> None:
        super().__init__(message)
        self.code = InboxErrorCode(code)
        self.protocol = MailProtocol(protocol)

    @property
    def credentials_rejected(self) -> bool:
        return self.code in CREDENTIALS_REJECTED

    @property
    def connection_failed(self) -> bool:
        """The connection is gone or unusable, not just one command refused."""
        return self.code in CONNECTION_FAILURES


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: MailSecurity

    def __post_init__(self) -> None:
        # Read back from a row or an option as its string: kept as the enum (or refused).
        object.__setattr__(self, "security", MailSecurity(self.security))


@dataclass(frozen=True)
class ConnectRequest:
    """What a user gives to connect a mailbox. ``imap``/``smtp`` None: detect them."""

    address: str
    password: str
    username: str = ""  # empty: the address
    imap: Endpoint | None = None
    smtp: Endpoint | None = None
    first_sync_days: int = DEFAULT_FIRST_SYNC_DAYS


@dataclass(frozen=True)
class SendRequest:
    to: tuple[str, ...]
    subject: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    text: str = ""
    html: str = ""
    inbox_id: int | None = None  # None: the user's only inbox
    in_reply_to: str | None = None
    track_opens: bool = False
    track_clicks: bool = False


@dataclass(frozen=True)
class SendResult:
    """A message the SMTP server accepted, and what became of its copy and its log.

    ``log``: ``logged`` (``email_id`` is set), ``pending`` (the database could not take
    it now; it is kept durably and logged later, once), ``not_logged`` (deliberately,
    ``log_reason`` says why) or ``failed`` (neither logged nor kept for a retry: the
    spool could not be written; ``log_reason`` says so).
    """

    email_id: int | None
    message_id: str
    thread_id: int | None
    sent_folder: str | None  # where the copy was appended; None when it could not be
    sent_copy_error: str | None = None
    sent_copy_error_code: InboxErrorCode | None = None  # e.g. mailbox_full
    log: SendLog = SendLog.LOGGED
    log_reason: str | None = None
    refused_recipients: dict[str, str] = field(default_factory=dict)  # address -> reply


@dataclass
class FolderReport:
    role: FolderRole
    name: str
    headers_fetched: int = 0
    bodies_fetched: int = 0
    logged: int = 0
    already_logged: int = 0
    last_uid: int = 0
    error: str | None = None


@dataclass
class SyncReport:
    inbox_id: int
    status: InboxStatus
    folders: list[FolderReport] = field(default_factory=list)


class InboxConnector(Protocol):
    """What the HTTP adapter asks of the connector (implemented by inbox_sync)."""

    async def connect(self, portal_id: int, user_id: int, request: ConnectRequest) -> int:
        """Test both logins, store the inbox (or update it: a reconnect), start syncing."""
        ...

    async def sync_now(self, portal_id: int, inbox_id: int) -> SyncReport:
        """Sync now (reconnecting a disconnected inbox) and report what was done."""
        ...

    async def send(self, portal_id: int, user_id: int, request: SendRequest) -> SendResult:
        """Send through the inbox's SMTP server, copy to Sent, log as ``crm_send``."""
        ...


@dataclass(frozen=True)
class TeamSentCopy:
    """Where the copy of a reply sent through a team mailbox went (``folder``), or why
    it did not (``error``)."""

    folder: str | None = None
    error: InboxError | None = None


class TeamMailer(Protocol):
    """Sending through a team inbox's own mailbox (implemented by inbox_sync)."""

    async def deliver_team(self, portal_id: int, team_inbox_id: int, message: EmailMessage,
                           recipients: tuple[str, ...]) -> dict[str, str]:
        """Send through the mailbox's SMTP server; the recipients refused while others
        accepted it. InboxError when it was not sent (``send_unconfirmed``: it may have
        been)."""
        ...

    async def copy_team_sent(self, portal_id: int, team_inbox_id: int,
                             raw: bytes) -> TeamSentCopy:
        """Append a sent message to the mailbox's Sent folder; never raises."""
        ...


class TeamMailboxConnector(Protocol):
    """What the HTTP adapter asks of the connector for team mailboxes."""

    async def connect_team(self, portal_id: int, team_inbox_id: int,
                           request: ConnectRequest) -> int:
        """Test both logins, store the team inbox's mailbox (or update it), start it."""
        ...

    async def team_authorization_url(self, portal_id: int, team_inbox_id: int,
                                     provider: str, first_sync_days: int) -> str:
        """Where to send the admin's browser to grant access to the shared mailbox (the
        provider's callback then connects it; raises core.oauth.OAuthError)."""
        ...


class MailboxSendFailed(RelayFailed):
    """A reply through a team mailbox was not sent (or may not have been:
    ``send_unconfirmed``); ``code`` is the connector's ``InboxErrorCode``."""

    def __init__(self, error: InboxError) -> None:
        super().__init__(error.message)
        self.code = str(error.code)
        self.error = error


_MAILERS: weakref.WeakKeyDictionary[Runtime, TeamMailer] = weakref.WeakKeyDictionary()


def register_team_mailer(runtime: Runtime, mailer: TeamMailer) -> None:
    """The connector running on ``runtime`` sends for team mailboxes."""
    _MAILERS[runtime] = mailer


def team_mailer(runtime: Runtime) -> TeamMailer | None:
    return _MAILERS.get(runtime)


async def team_mailbox(session: AsyncSession, team_inbox_id: int) -> Inbox | None:
    """The team inbox's connected mailbox, if it has one (disconnected or not)."""
    return await session.scalar(select(Inbox).where(Inbox.team_inbox_id == team_inbox_id))


async def save_team_mailbox(
    session: AsyncSession, portal_id: int, team_inbox_id: int, address: str, username: str,
    imap: Endpoint, smtp: Endpoint, secret: str, first_sync_days: int,
    *, auth: InboxAuth = InboxAuth.PASSWORD, oauth_provider: str = "",
) -> Inbox:
    """Create the team inbox's mailbox, or update it (a reconnect keeps its checkpoints).

    The address is the team inbox's ``address`` (set to it when empty: replies go out
    From it, through this mailbox); one of a user's (their own mail is theirs to
    connect) or another inbox's is InvalidInput. NotFound for another portal's team
    inbox."""
    team = await owned(session, TeamInbox, portal_id, team_inbox_id)
    if team.address and team.address.lower() != address:
        raise InvalidInput(f"address: the team inbox's address is {team.address}: connect "
                           "that mailbox, or change the team inbox's address first")
    if await session.scalar(select(UserAddress.user_id).where(
            UserAddress.portal_id == portal_id, UserAddress.address == address)) is not None:
        raise InvalidInput(f"address: {address} is a user's address, not a shared one")
    inbox = await session.scalar(
        select(Inbox).where(Inbox.portal_id == portal_id, Inbox.address == address))
    if inbox is not None and inbox.team_inbox_id != team_inbox_id:
        raise InvalidInput(f"address: {address} is connected as another inbox")
    if inbox is None:
        inbox = await team_mailbox(session, team_inbox_id)
    if inbox is None:
        inbox = Inbox(portal_id=portal_id, user_id=None, team_inbox_id=team_inbox_id,
                      address=address)
        session.add(inbox)
    elif inbox.address != address:
        # Another mailbox for the same team inbox: its checkpoints mean nothing here.
        inbox.address = address
        inbox.folders.clear()
    team.address = team.address or address
    _connected(inbox, username, imap, smtp, secret, first_sync_days, auth, oauth_provider)
    await session.flush()
    return inbox


async def get_inbox(session: AsyncSession, portal_id: int, inbox_id: int) -> Inbox:
    return await owned(session, Inbox, portal_id, inbox_id)


async def user_inbox(session: AsyncSession, portal_id: int, user_id: int,
                     inbox_id: int | None) -> Inbox:
    """The inbox a user sends through: the one named, else their only one."""
    if inbox_id is not None:
        inbox = await get_inbox(session, portal_id, inbox_id)
        if inbox.user_id != user_id:
            raise NotFound(f"no inbox {inbox_id}")
        return inbox
    found = list(await session.scalars(
        select(Inbox).where(Inbox.portal_id == portal_id, Inbox.user_id == user_id)
        .order_by(Inbox.id)))
    if not found:
        raise InvalidInput("connect an inbox first (POST /api/v1/inboxes)")
    if len(found) > 1:
        raise InvalidInput("you have several inboxes: give inbox_id")
    return found[0]


async def save_inbox(
    session: AsyncSession, portal_id: int, user_id: int, address: str, username: str,
    imap: Endpoint, smtp: Endpoint, secret: str, first_sync_days: int,
    *, auth: InboxAuth = InboxAuth.PASSWORD, oauth_provider: str = "",
) -> Inbox:
    """Create the inbox, or update the same address's record (a reconnect), keeping its
    folder checkpoints so sync resumes where it stopped."""
    inbox = await session.scalar(
        select(Inbox).where(Inbox.portal_id == portal_id, Inbox.address == address))
    if inbox is not None and inbox.user_id != user_id:
        raise InvalidInput(f"{address} is connected by another user")
    # Only an address already proven the user's may be connected: logging in proves
    # nothing (the user picks the server, and a server of theirs accepts any login),
    # and neither does an OAuth grant (a colleague could have someone else consent to
    # it). The proof is the operator's word or a followed confirmation link.
    owner = await session.scalar(select(UserAddress).where(
        UserAddress.portal_id == portal_id, UserAddress.address == address.lower()))
    if owner is not None and owner.user_id != user_id and owner.confirmed_at is not None:
        raise InvalidInput(f"{address} belongs to another user of this account")
    if owner is None or owner.user_id != user_id or owner.confirmed_at is None:
        raise AddressNotConfirmed(
            f"{address} is not one of your confirmed addresses: add it "
            f"(POST /api/v1/users/{user_id}/addresses), follow the link sent to it, "
            "then connect again")
    session.info.pop(("users_by_address", portal_id), None)
    if inbox is None:
        inbox = Inbox(portal_id=portal_id, user_id=user_id, address=address)
        session.add(inbox)
    _connected(inbox, username, imap, smtp, secret, first_sync_days, auth, oauth_provider)
    await session.flush()
    return inbox


def _connected(inbox: Inbox, username: str, imap: Endpoint, smtp: Endpoint, secret: str,
               first_sync_days: int, auth: InboxAuth, oauth_provider: str) -> None:
    """The inbox's new login, and its status reset: connected."""
    inbox.username = username
    inbox.imap_host, inbox.imap_port, inbox.imap_security = imap.host, imap.port, imap.security
    inbox.smtp_host, inbox.smtp_port, inbox.smtp_security = smtp.host, smtp.port, smtp.security
    inbox.secret = secret
    inbox.auth, inbox.oauth_provider = auth, oauth_provider
    inbox.first_sync_days = first_sync_days
    inbox.status, inbox.status_reason, inbox.status_code = InboxStatus.CONNECTED, "", ""
    inbox.unreachable_since = None


async def folder_checkpoint(session: AsyncSession, inbox_id: int, role: FolderRole,
                            name: str) -> InboxFolder:
    """The checkpoint row of one folder role, created (or renamed) as needed."""
    folder = await session.scalar(
        select(InboxFolder).where(InboxFolder.inbox_id == inbox_id, InboxFolder.role == role))
    if folder is None:
        folder = InboxFolder(inbox_id=inbox_id, role=role, name=name, last_uid=0, error="")
        session.add(folder)
    elif folder.name != name:
        # Another folder now has the role: its UIDs mean nothing here.
        folder.name, folder.uidvalidity, folder.last_uid = name, None, 0
        folder.highest_modseq, folder.synced_at = None, None
    await session.flush()
    return folder


async def set_status(session: AsyncSession, inbox_id: int, status: InboxStatus,
                     reason: str = "", code: InboxErrorCode | None = None) -> Inbox | None:
    """Record a status change; ``disconnected`` also emits ``inbox_disconnected`` once.
    ``code`` names the reason (``status_code``, and ``code`` in the event)."""
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        return None
    code_text = "" if code is None else str(code)
    if status == InboxStatus.DISCONNECTED and inbox.status != InboxStatus.DISCONNECTED:
        detail = {"inbox_id": inbox.id, "address": inbox.address, "reason": reason[:500],
                  "code": code_text}
        if inbox.team_inbox_id is not None:  # no user's: the admin's event
            detail["team_inbox_id"] = inbox.team_inbox_id
        session.add(Event(portal_id=inbox.portal_id, user_id=inbox.user_id,
                          type="inbox_disconnected", email_id=None, detail=detail))
    inbox.status, inbox.status_reason = InboxStatus(status), reason[:2000]
    inbox.status_code = code_text if status != InboxStatus.CONNECTED else ""
    if status == InboxStatus.CONNECTED:
        inbox.unreachable_since = None
    await session.flush()
    return inbox


async def note_synced(session: AsyncSession, inbox_id: int) -> Inbox | None:
    """A sync went through: the server is reachable and not throttling. A full mailbox
    stays flagged (sync only reads; a later copy to Sent that works clears it)."""
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        return None
    inbox.last_sync_at, inbox.unreachable_since = utcnow(), None
    if inbox.status not in (InboxStatus.CONNECTED, InboxStatus.MAILBOX_FULL):
        await set_status(session, inbox_id, InboxStatus.CONNECTED)
    await session.flush()
    return inbox


async def note_sent_copy(session: AsyncSession, inbox_id: int,
                         error_code: InboxErrorCode | None,
                         message: str = "") -> None:
    """The copy of a sent email to the Sent folder worked (``error_code`` None) or not:
    a full mailbox flags the inbox ``mailbox_full``; a copy that works clears that."""
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        return
    if error_code == InboxErrorCode.MAILBOX_FULL:
        await set_status(session, inbox_id, InboxStatus.MAILBOX_FULL, message)
    elif error_code is None and inbox.status == InboxStatus.MAILBOX_FULL:
        await set_status(session, inbox_id, InboxStatus.CONNECTED)


async def note_unreachable(session: AsyncSession, inbox_id: int) -> Inbox | None:
    """Remember when the current outage began (the first failure of a run of them)."""
    inbox = await session.get(Inbox, inbox_id)
    if inbox is not None and inbox.unreachable_since is None:
        inbox.unreachable_since = utcnow()
        await session.flush()
    return inbox


def select_inboxes(portal_id: int, user_id: int | None) -> Select[Inbox]:
    """A portal's inboxes (a user's own only, for a user token), oldest first."""
    query = select(Inbox).where(Inbox.portal_id == portal_id).order_by(Inbox.id)
    return query if user_id is None else query.where(Inbox.user_id == user_id)
