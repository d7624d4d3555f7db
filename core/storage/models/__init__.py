"""The SQLAlchemy models; importing this package registers every table on Base.metadata."""

from core.storage.models.base import Base, utcnow
from core.storage.models.crm import Company, Contact, Deal, Ticket
from core.storage.models.email import (
    Attachment,
    Blob,
    Email,
    EmailCompany,
    EmailContact,
    EmailDeal,
    EmailSource,
    EmailTicket,
    Thread,
    ThreadRef,
)
from core.storage.models.event import Event
from core.storage.models.inbox import Inbox, InboxFolder
from core.storage.models.lease import NodeLease  # noqa: F401 (core.leases)
from core.storage.models.outbox import AcknowledgementOutbox
from core.storage.models.portal import ApiToken, Portal, User, UserAddress
from core.storage.models.replies import CannedResponse, TicketPresence
from core.storage.models.reports import (
    FigureWalk,
    TicketAssignment,
    TicketFigures,
    TicketFigureValue,
)
from core.storage.models.retention import IngestLogEntry, RawCopy
from core.storage.models.team import (
    AgentCapacity,
    RoutingRule,
    Team,
    TeamInbox,
    TeamInboxMember,
    TeamInboxSender,
    TeamMember,
    TicketActivity,
    TicketContact,
)
from core.storage.models.tracking import TrackedLink, TrackedSend, TrackingHit
from core.storage.models.web import WebLink, WebLogin, WebSession  # noqa: F401 (the sign-in tables)
from core.storage.models.webhook import WebhookCursor, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AcknowledgementOutbox",
    "AgentCapacity",
    "ApiToken",
    "Attachment",
    "Base",
    "Blob",
    "CannedResponse",
    "Company",
    "Contact",
    "Deal",
    "Email",
    "EmailCompany",
    "EmailContact",
    "EmailDeal",
    "EmailSource",
    "EmailTicket",
    "Event",
    "FigureWalk",
    "Inbox",
    "InboxFolder",
    "IngestLogEntry",
    "Portal",
    "RawCopy",
    "RoutingRule",
    "Team",
    "TeamInbox",
    "TeamInboxMember",
    "TeamInboxSender",
    "TeamMember",
    "Thread",
    "ThreadRef",
    "Ticket",
    "TicketActivity",
    "TicketAssignment",
    "TicketContact",
    "TicketFigureValue",
    "TicketFigures",
    "TicketPresence",
    "TrackedLink",
    "TrackedSend",
    "TrackingHit",
    "User",
    "UserAddress",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
    "utcnow",
]

# Ids are public (URLs, API bodies): SQLite must never hand a deleted row's id to a new
# one, which it does for a plain INTEGER PRIMARY KEY. PostgreSQL sequences never do.
for _table in Base.metadata.tables.values():
    if "id" in _table.c and _table.c.id.primary_key:
        _table.dialect_options["sqlite"]["autoincrement"] = True
