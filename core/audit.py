"""The ingest audit log: why a received message was not logged (metadata, never a body).

A team inbox's entries (mail to it refused: rate-limited, automatic, too large, failed
authentication) name who wrote to it; like its mail they are its members' and the
admin's only (docs/tickets.md, "Who sees what"). The log has no team inbox column: an
entry is a team inbox's when its source is ``team_inbox`` or its logging address is one
of a team inbox's (``<inbox token>@...`` or ``...+inbox-<id>@...``); a user sees such an
entry only when that address names an inbox they are a member of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import IngestLogEntry, TeamInbox
from core.tickets.access import member_inboxes
from core.types import NotLoggedReason, Source

__all__ = ["NotLoggedReason", "entries", "record", "visible_entry"]


def record(
    session: AsyncSession,
    portal_id: int,
    reason_code: NotLoggedReason,
    reason: str,
    *,
    source: str,
    logging_address: str | None = None,
    sender: str | None = None,
    envelope_sender: str | None = None,
    message_id: str | None = None,
    size: int = 0,
) -> IngestLogEntry:
    """Add an audit entry to the caller's transaction."""
    entry = IngestLogEntry(
        portal_id=portal_id, reason_code=reason_code.value, reason=reason[:500], source=source,
        logging_address=(logging_address or "")[:320], sender=(sender or "")[:320],
        envelope_sender=(envelope_sender or "")[:320],
        message_id=message_id[:998] if message_id else None, size=size,
    )
    session.add(entry)
    return entry


def _names_inbox(address: Any, token: str, inbox_id: int) -> ColumnElement[bool]:
    """Whether the (lower-cased) logging ``address`` is one of this inbox's own."""
    return or_(address.like(f"{token.lower()}@%"), address.like(f"%+inbox-{inbox_id}@%"))


async def visible_entry(session: AsyncSession, portal_id: int,
                        viewer: int | None) -> ColumnElement[bool]:
    """A where-clause on ``IngestLogEntry``: the entries ``viewer`` may see (None: the
    admin, every one). A team inbox's entry (see the module docstring) only when it
    names an inbox the viewer is a member of; one that looks like a team inbox's but
    names none of theirs (a leading zero, an inbox since deleted) is left out."""
    if viewer is None:
        return true()
    members = await member_inboxes(session, portal_id, viewer) or set()
    address = func.lower(IngestLogEntry.logging_address)
    inboxes = (await session.execute(select(TeamInbox.id, TeamInbox.token).where(
        TeamInbox.portal_id == portal_id))).all()
    theirs = [address.like(f"{token.lower()}@%") for _, token in inboxes]
    inbox_mail = or_(IngestLogEntry.source == Source.TEAM_INBOX.value,
                     address.like("%+inbox-%"), *theirs)
    mine = [_names_inbox(address, token, inbox_id) for inbox_id, token in inboxes
            if inbox_id in members]
    return or_(not_(inbox_mail), *mine)


async def entries(
    session: AsyncSession, portal_id: int, *, before: int | None, limit: int,
    viewer: int | None = None,
) -> Sequence[IngestLogEntry]:
    """A portal's audit entries ``viewer`` may see (None: the admin, all), newest first;
    ``before`` is the cursor (an entry id)."""
    query = select(IngestLogEntry).where(IngestLogEntry.portal_id == portal_id,
                                         await visible_entry(session, portal_id, viewer))
    if before is not None:
        query = query.where(IngestLogEntry.id < before)
    return (await session.scalars(query.order_by(IngestLogEntry.id.desc()).limit(limit))).all()
