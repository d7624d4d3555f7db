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
