"""Contracts shared across core and the adapters: identifiers, enums, the envelope."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NewType

if TYPE_CHECKING:
    from core.sender_auth import AuthResult

MessageId = NewType("MessageId", str)
"""An RFC 5322 msg-id without its angle brackets, e.g. ``abc@mail.example.com``."""

BlobHash = NewType("BlobHash", str)
"""Lower-case hex sha256 of a blob's bytes."""


class Direction(enum.StrEnum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class Source(enum.StrEnum):
    """How a message reached inboxlog; one email may have several."""

    BCC = "bcc"
    FORWARD = "forward"
    RULE = "rule"
    EXTENSION = "extension"
    SYNC = "sync"
    CRM_SEND = "crm_send"
    TEAM_INBOX = "team_inbox"  # a customer's mail to a team inbox (docs/tickets.md)


class IngestOutcome(enum.StrEnum):
    """What became of one message through ``pipeline.log_message``."""

    LOGGED = "logged"
    DUPLICATE = "duplicate"  # already logged: the new source was added
    NOT_LOGGED = "not_logged"  # accepted, deliberately not stored (the reason says why)


class InboxLogMode(enum.StrEnum):
    """A portal's privacy rule for synced mail (``Portal.inbox_log_mode``)."""

    REPLIES = "replies"  # only mail that ties to a logged thread
    KNOWN_CONTACTS = "known_contacts"  # ... or involves a known contact


class ThreadReason(enum.StrEnum):
    """Why an email joined its thread."""

    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"
    THREAD_INDEX = "thread_index"
    TRACKING_TOKEN = "tracking_token"
    NEW = "new"
    MANUAL = "manual"  # a user moved it or split it off


class InboxStatus(enum.StrEnum):
    """A connected inbox's state (``Inbox.status``, the API's ``status``)."""

    CONNECTED = "connected"
    THROTTLED = "throttled"  # the provider asked us to slow down
    MAILBOX_FULL = "mailbox_full"
    DISCONNECTED = "disconnected"  # ``status_code`` names why; sync has stopped
    REMOTE_PROTOCOL_VIOLATION = "remote_protocol_violation"
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"  # its server is off limits now


class InboxErrorCode(enum.StrEnum):
    """What failed reaching or using a mailbox, or connecting one with OAuth
    (``InboxError.code``, ``OAuthError.code``, ``Inbox.status_code``)."""

    NAME_NOT_FOUND = "name_not_found"
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    TLS_FAILURE = "tls_failure"
    AUTH_REJECTED = "auth_rejected"
    APP_PASSWORD_REQUIRED = "app_password_required"
    NO_IMAP = "no_imap"
    NO_SMTP = "no_smtp"
    THROTTLED = "throttled"
    MAILBOX_FULL = "mailbox_full"
    SEND_REJECTED = "send_rejected"
    IMAP_ERROR = "imap_error"
    NO_SENT_FOLDER = "no_sent_folder"
    SEND_UNCONFIRMED = "send_unconfirmed"  # it went to the server, no answer came back
    REMOTE_PROTOCOL_VIOLATION = "remote_protocol_violation"  # a server broke a limit
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"
    DISCONNECTED = "disconnected"  # the inbox is disconnected: reconnect it first
    TOO_MANY_CONNECTIONS = "too_many_connections"  # our own limit: try again later
    # OAuth: the grant was refused (revoked, password changed, consent withdrawn), or
    # lacks mail access; the authorization server is down (temporary).
    OAUTH_REVOKED = "oauth_revoked"
    OAUTH_SCOPE_MISSING = "oauth_scope_missing"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    OAUTH_STATE_INVALID = "oauth_state_invalid"
    OAUTH_DENIED = "oauth_denied"  # the user said no at the provider
    OAUTH_NOT_CONFIGURED = "oauth_not_configured"
    OAUTH_FAILED = "oauth_failed"
    DISCONNECTED_BY_USER = "disconnected_by_user"  # only as a status_code


class MailProtocol(enum.StrEnum):
    """What inboxlog speaks to a user's mail provider (``InboxError.protocol``)."""

    IMAP = "imap"
    SMTP = "smtp"
    HTTPS = "https"  # an OAuth authorization server's endpoints


class MailSecurity(enum.StrEnum):
    """How a connection to a mail server is secured (``Endpoint.security``)."""

    SSL = "ssl"  # TLS from the first byte
    STARTTLS = "starttls"
    NONE = "none"


class SaslMechanism(enum.StrEnum):
    """How an OAuth access token logs in to IMAP and SMTP."""

    XOAUTH2 = "xoauth2"  # Gmail, Microsoft 365
    OAUTHBEARER = "oauthbearer"  # RFC 7628


class InboxAuth(enum.StrEnum):
    """How an inbox logs in (``Inbox.auth``)."""

    PASSWORD = "password"
    OAUTH = "oauth"


class FolderRole(enum.StrEnum):
    """The folders sync reads (``InboxFolder.role``)."""

    INBOX = "inbox"
    SENT = "sent"


class SendLog(enum.StrEnum):
    """What became of the log of an email sent through a connected inbox."""

    LOGGED = "logged"
    PENDING = "pending"  # kept durably, logged later, once
    NOT_LOGGED = "not_logged"  # deliberately
    FAILED = "failed"  # neither logged nor kept for a retry


class HitKind(enum.StrEnum):
    """A tracked send's hit: its pixel loaded, or one of its links followed."""

    OPEN = "open"
    CLICK = "click"


class HitVerdict(enum.StrEnum):
    """Who a hit was, as the API says it (``Verdict.label``)."""

    PERSON = "person"
    MACHINE = "machine"
    SENDER = "sender"  # the sender's own open: not counted


class ClientKind(enum.StrEnum):
    """What a user agent is, as classifying hits needs it."""

    MAIL = "mail"  # a mail program fetching for a person reading
    BROWSER = "browser"  # webmail in a browser, or a browser following a link
    GMAIL_PROXY = "gmail-proxy"  # fetches only when a person opens the message
    PREFETCH_PROXY = "prefetch-proxy"  # fetches on delivery, whoever reads
    BOT = "bot"
    BARE = "bare"  # "Mozilla/5.0" and nothing else
    NONE = "none"  # no user agent at all
    UNKNOWN = "unknown"


class RangeKind(enum.StrEnum):
    """What a hit from a published address range means (``# kind:`` of its file)."""

    APPLE = "apple"  # Mail Privacy Protection's proxies: prefetch
    GOOGLE = "google"  # Gmail's image proxy
    YAHOO = "yahoo"  # Yahoo's image proxy
    SCANNER = "scanner"  # a security gateway following links


class Channel(enum.StrEnum):
    """The entry point a message came through: the ingest log's ``source`` of a refusal
    made before the message was routed (too large, no user sent it, authentication)."""

    SMTP = "smtp"
    CLI = "cli"
    EXTENSION = "extension"
    SYNC = "sync"
    CRM_SEND = "crm_send"


class NotLoggedReason(enum.StrEnum):
    """The ingest log's ``reason_code``: why a received message was not logged."""

    NOT_A_USER = "not_a_user"
    NOT_IN_THREAD = "not_in_thread"
    NEVER_LOG = "never_log"
    BULK = "bulk"
    TOO_LARGE = "too_large"
    FORWARD_UNPARSABLE = "forward_unparsable"  # logged as the user's own email instead
    DELETED = "deleted"
    NOT_AUTHENTICATED = "not_authenticated"  # sender authentication failed (550 5.7.1)
    AUTH_UNAVAILABLE = "auth_unavailable"  # it could not be completed (451 4.7.0)
    RATE_LIMITED = "rate_limited"  # a team inbox's sender past its hourly allowance


class EventType(enum.StrEnum):
    """A notification in a user's feed (``Event.type``, the API's event ``type``)."""

    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"
    LOGGED = "logged"
    INBOX_DISCONNECTED = "inbox_disconnected"
    # A team inbox's tickets (docs/tickets.md): ``detail`` holds ``ticket_id``.
    TICKET_CREATED = "ticket_created"
    TICKET_ASSIGNED = "ticket_assigned"
    TICKET_REPLIED = "ticket_replied"
    TICKET_CLOSED = "ticket_closed"
    # An agent named in a ticket's internal note (``detail``: ``ticket_id``, ``note_id``).
    TICKET_MENTIONED = "ticket_mentioned"


class Role(enum.StrEnum):
    """Who a token speaks for within its portal: the portal's admin, or one user."""

    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True)
class Refusal:
    """Why admission will not log a message: the ingest log's code and its reason."""

    code: NotLoggedReason
    reason: str


@dataclass(frozen=True)
class ThreadMatch:
    """The logged thread a message joins, and why."""

    thread_id: int
    reason: ThreadReason


@dataclass(frozen=True)
class Envelope:
    """What the transport knew about a message besides its bytes.

    ``rcpt_tos`` are the envelope recipients as given (RCPT TO for SMTP); a logging
    address there that is missing from To/Cc is how a BCC shows.
    """

    mail_from: str | None = None
    rcpt_tos: tuple[str, ...] = ()
    logging_address: str | None = None  # the portal's address this copy came to
    peer: str | None = None
    # How the message came when the entry point knows it (extension, sync, CRM send);
    # None for the logging address, where the headers tell BCC from forwarding rule.
    source_hint: Source | None = None
    # The portal user on whose behalf it arrives: who clicked "log", whose mailbox was
    # synced, who sent through a connected inbox. None for the logging address.
    on_behalf_of: str | None = None
    tags: tuple[str, ...] = field(default=())
    # What the transport proved about the sender (SPF, DKIM, ARC, DMARC, or a trusted
    # upstream's word); None when nothing was checked: local submission, the API, sync.
    auth: AuthResult | None = None
