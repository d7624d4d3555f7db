"""Internal notes on a ticket: written by its agents for each other, never sent to
anyone (docs/ticket-replies.md). A note is the ticket's activity of kind ``note``, its
text and mentions in ``detail``.

An agent mentions a colleague by writing ``@`` and their address (``@ann@acme.com``) or
by naming their user id in ``mentions``; each one mentioned gets a ``ticket_mentioned``
event in their feed. Only a member of the ticket's inbox can be mentioned (anyone else
could not open the ticket): another is refused, naming them. Never commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.storage.models import Ticket, TicketActivity, User
from core.tickets import activity
from core.tickets.access import inbox_members
from core.tickets.activity import Kind
from core.tickets.presence import logged
from core.types import EventType

MAX_TEXT = 20_000
MAX_MENTIONS = 20
_MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


@dataclass(frozen=True)
class Note:
    id: int
    ticket_id: int
    author_user_id: int | None
    text: str
    mentions: tuple[int, ...]
    at: datetime


def note_of(row: TicketActivity) -> Note:
    detail = row.detail or {}
    return Note(row.id, row.ticket_id, row.actor_user_id, str(detail.get("text", "")),
                tuple(int(m) for m in detail.get("mentions", [])), row.at)


def mentioned_addresses(text: str) -> list[str]:
    """The addresses ``text`` mentions with ``@``, lower-case, in order, once each."""
    return list(dict.fromkeys(m.lower().rstrip(".") for m in _MENTION.findall(text)))


async def _mentioned(session: AsyncSession, ticket: Ticket, text: str,
                     user_ids: Sequence[int]) -> list[int]:
    assert ticket.team_inbox_id is not None
    members = set(await inbox_members(session, ticket.team_inbox_id))
    found: list[int] = []
    addresses = mentioned_addresses(text)
    if addresses:
        rows = dict((await session.execute(select(User.email, User.id).where(
            User.portal_id == ticket.portal_id, User.email.in_(addresses)))).tuples().all())
        for address in addresses:
            if rows.get(address) not in members:
                raise InvalidInput(f"text: @{address} is not a member of this ticket's "
                                   "inbox")
            found.append(rows[address])
    for n, user_id in enumerate(user_ids):
        if user_id not in members:
            raise InvalidInput(f"mentions[{n}]: user {user_id} is not a member of this "
                               "ticket's inbox")
        found.append(user_id)
    found = list(dict.fromkeys(found))
    if len(found) > MAX_MENTIONS:
        raise InvalidInput(f"mentions: at most {MAX_MENTIONS} people")
    return found


async def add_note(session: AsyncSession, ticket: Ticket, author: int, text: str,
                   mentions: Sequence[int] = ()) -> Note:
    """Add a note to ``ticket`` (which the caller may see) and tell whoever it
    mentions (the author is not told of their own mention)."""
    if not text.strip():
        raise InvalidInput("text: a note has some text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text: at most {MAX_TEXT} characters")
    named = await _mentioned(session, ticket, text, mentions)
    activity.log(session, ticket, Kind.NOTE, actor=author,
                 detail={"text": text, "mentions": named})
    row = logged(session)
    await session.flush()
    for user_id in named:
        if user_id != author:
            activity.emit(session, ticket, EventType.TICKET_MENTIONED, recipient=user_id,
                          note_id=row.id, by=author, excerpt=text[:200])
    await session.flush()
    return note_of(row)


async def notes_of(session: AsyncSession, ticket_id: int) -> list[Note]:
    """A ticket's notes, oldest first."""
    rows = await session.scalars(select(TicketActivity).where(
        TicketActivity.ticket_id == ticket_id, TicketActivity.kind == Kind.NOTE.value
    ).order_by(TicketActivity.id))
    return [note_of(row) for row in rows]
