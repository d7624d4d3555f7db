"""Shapes of what agents do from a ticket (docs/ticket-replies.md): a reply or forward,
an internal note, presence (who else is viewing or replying), a team inbox's canned
responses, and the 409 of a reply that crossed another agent's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from core.control_characters import LABEL_PATTERN
from core.storage.models import CannedResponse as CannedRow
from core.storage.models import Email as EmailRow
from core.tickets import canned, notes, replies
from core.tickets.matching import Status
from core.tickets.presence import PRESENCE_FOR, CrossedReply, Present, ReplyCollision
from core.types import InboxErrorCode
from extension_api.schemas._codec import RequestShape, ResponseShape, Timestamp, to_json
from extension_api.schemas.mail import Email, Id, email_of

Address = Annotated[str, Meta(min_length=3, max_length=320)]
Recipients = Annotated[list[Address], Meta(max_length=replies.MAX_RECIPIENTS)]
Version = Annotated[int, Meta(ge=0, le=2**63 - 1, description=(
    "the ticket's last activity id when the agent loaded it (presence answers it)"))]


class ReplyRequest(RequestShape):
    """An agent's reply to the ticket's customer (or, with ``forward``, the ticket's
    latest message forwarded to ``to``). Give ``text`` or a ``canned_response_id`` of
    the ticket's inbox (filled in for this ticket)."""

    text: Annotated[str, Meta(max_length=replies.MAX_TEXT)] = ""
    canned_response_id: Id | None = None
    forward: bool = False
    to: Recipients = []  # noqa: RUF012 (msgspec copies mutable defaults)
    cc: Recipients = []  # noqa: RUF012
    seen_activity_id: Version | None = None
    force: Annotated[bool, Meta(description=(
        "send even though another agent replied since the ticket was loaded"))] = False
    status: Status | None = None

    def request(self) -> replies.ReplyRequest:
        return replies.ReplyRequest(
            text=self.text, canned_response_id=self.canned_response_id,
            forward=self.forward, to=tuple(self.to), cc=tuple(self.cc),
            seen_activity_id=self.seen_activity_id, force=self.force, status=self.status)


class PresentAgent(ResponseShape):
    """Another agent on the ticket now, until ``expires_at`` unless they renew."""

    user_id: Id
    name: str
    email: str
    state: Literal["viewing", "replying"]
    since: Timestamp
    expires_at: Timestamp


def present_of(found: Present) -> PresentAgent:
    return PresentAgent(user_id=found.user_id, name=found.name, email=found.email,
                        state=found.state.value, since=found.since,
                        expires_at=found.expires_at)


class ReplySent(ResponseShape):
    """The reply went out and is logged on the ticket."""

    ticket_id: Id
    activity_id: Id
    message_id: str
    recipients: list[str]
    email: Email
    others: list[PresentAgent]
    # How it went: through the team inbox's own mailbox, or the operator's relay.
    via: Literal["mailbox", "relay"]
    # Through the mailbox: the Sent folder its copy was filed in, else None and why.
    sent_folder: str | None
    sent_copy_error: str | None
    sent_copy_error_code: Annotated[InboxErrorCode | None, Meta(
        description="why the copy is not in Sent (e.g. mailbox_full), as for CRM sends")]


def reply_sent_of(sent: replies.ReplySent, email: EmailRow) -> ReplySent:
    return ReplySent(ticket_id=sent.ticket_id, activity_id=sent.activity_id,
                     message_id=sent.message_id, recipients=list(sent.recipients),
                     email=email_of(email), others=[present_of(p) for p in sent.others],
                     via="mailbox" if sent.via_mailbox else "relay",
                     sent_folder=sent.sent_folder, sent_copy_error=sent.sent_copy_error,
                     sent_copy_error_code=sent.sent_copy_error_code)


class CrossedReplyShape(ResponseShape):
    activity_id: Id
    user_id: int | None
    email_id: int | None
    at: Timestamp


def collision_json(exc: ReplyCollision) -> dict[str, Any]:
    """The 409's body: the error, the replies it crossed, who is on the ticket."""
    def crossed(c: CrossedReply) -> CrossedReplyShape:
        return CrossedReplyShape(activity_id=c.activity_id, user_id=c.user_id,
                                 email_id=c.email_id, at=c.at)

    body: dict[str, Any] = to_json({"error": {"code": exc.code, "message": exc.message},
                                    "crossed": [crossed(c) for c in exc.crossed],
                                    "others": [present_of(p) for p in exc.others]})
    return body


class NoteRequest(RequestShape):
    """An internal note (never sent). ``@ann@acme.com`` in the text, or a user id in
    ``mentions``, tells that member of the inbox."""

    text: Annotated[str, Meta(min_length=1, max_length=notes.MAX_TEXT)]
    mentions: Annotated[list[Id], Meta(max_length=notes.MAX_MENTIONS)] = []  # noqa: RUF012


class TicketNote(ResponseShape):
    id: Id
    ticket_id: Id
    author_user_id: int | None
    text: str
    mentions: list[int]
    at: Timestamp


def note_shape_of(note: notes.Note) -> TicketNote:
    return TicketNote(id=note.id, ticket_id=note.ticket_id,
                      author_user_id=note.author_user_id, text=note.text,
                      mentions=list(note.mentions), at=note.at)


class PresenceRequest(RequestShape):
    """``viewing`` (the ticket is open) or ``replying`` (writing a reply), renewed at
    least every ``expires_in`` seconds; ``left`` when the agent closes it."""

    state: Literal["viewing", "replying", "left"]


class PresenceShape(ResponseShape):
    """Who else is on the ticket, and the version the caller loaded (send it back as
    a reply's ``seen_activity_id``)."""

    ticket_id: Id
    seen_activity_id: int | None
    expires_in: int
    others: list[PresentAgent]


def presence_of(ticket_id: int, seen: int | None, others: list[Present]) -> PresenceShape:
    return PresenceShape(ticket_id=ticket_id, seen_activity_id=seen,
                         expires_in=int(PRESENCE_FOR.total_seconds()),
                         others=[present_of(p) for p in others])


_BODY_DOC = ("the text; placeholders such as {{contact.first_name}} or "
             "{{contact.first_name|there}} (a fallback) are filled in when it is used: "
             + ", ".join(f"{k}.{f}" for k, fs in canned.FIELDS.items() for f in fs))
Body = Annotated[str, Meta(min_length=1, max_length=canned.MAX_BODY, description=_BODY_DOC)]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=LABEL_PATTERN)]


class CannedResponseRequest(RequestShape):
    name: Name
    body: Body


class CannedResponsePatch(RequestShape):
    name: Name | UnsetType = UNSET
    body: Body | UnsetType = UNSET

    def change(self) -> tuple[str | None, str | None]:
        """The new name and body (None: unchanged)."""
        return (None if isinstance(self.name, UnsetType) else self.name,
                None if isinstance(self.body, UnsetType) else self.body)


class CannedResponseShape(ResponseShape):
    """A team inbox's saved reply."""

    id: Id
    team_inbox_id: Id
    name: str
    body: str
    created_by: int | None
    created_at: Timestamp
    updated_at: Timestamp


def canned_of(row: CannedRow) -> CannedResponseShape:
    return CannedResponseShape(id=row.id, team_inbox_id=row.team_inbox_id, name=row.name,
                               body=row.body, created_by=row.created_by,
                               created_at=row.created_at, updated_at=row.updated_at)


class RenderedCannedResponse(ResponseShape):
    """A canned response filled in for one ticket, to put in the reply editor."""

    id: Id
    name: str
    text: str
