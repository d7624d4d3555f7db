"""Which ticket a team inbox's message continues, if any (pure: no database).

Threading is scoped to the ticket's people: a message continues a ticket when it
references the ticket's conversation **and** comes from one of the ticket's contacts or
from an agent. A ``[Ticket#123]`` subject token counts only together with one of those
references or a sender among ticket 123's contacts: anyone can type a token, so alone it
proves nothing (the forged-token complaint against other help desks).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\[\s*Ticket\s*#\s*(\d{1,18})\s*\]", re.IGNORECASE)


def subject_token(subject: str) -> int | None:
    """The ticket number a ``[Ticket#123]`` token in the subject names, or None."""
    match = _TOKEN.search(subject)
    return int(match.group(1)) if match else None


def with_token(subject: str, ticket_id: int) -> str:
    """``subject`` carrying the ticket's token once (for acknowledgements and replies)."""
    if subject_token(subject) == ticket_id:
        return subject
    return f"[Ticket#{ticket_id}] {_TOKEN.sub('', subject).strip()}".strip()


@dataclass(frozen=True)
class Known:
    """A ticket of this team inbox as matching reads it."""

    ticket_id: int
    referenced: bool  # the message references the ticket's thread
    sender_is_contact: bool  # the sender is one of the ticket's contacts


class Via(enum.StrEnum):
    THREAD = "thread"
    TOKEN = "token"


@dataclass(frozen=True)
class Match:
    ticket_id: int
    via: Via


def continued(referenced: Sequence[Known], token: Known | None, *, sender_is_agent: bool,
              trusted: bool = True) -> Match | None:
    """The ticket a message continues (``referenced``: the tickets whose threads it
    references, nearest first; ``token``: the ticket its subject token names), or None
    for a new ticket. ``trusted`` False (the sender's domain failed DMARC under
    reject/quarantine) continues none: a forgery must not append to a ticket."""
    if not trusted:
        return None
    for known in referenced:
        if known.sender_is_contact or sender_is_agent:
            return Match(known.ticket_id, Via.THREAD)
    if token is not None and (token.sender_is_contact or (token.referenced and sender_is_agent)):
        return Match(token.ticket_id, Via.TOKEN)
    return None


class Status(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    CLOSED = "closed"

