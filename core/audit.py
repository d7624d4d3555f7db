"""The ingest audit log: why a received message was not logged (metadata, never a body).

A team inbox's entries (mail to it refused: rate-limited, automatic, too large, failed
authentication) name who wrote to it; like its mail they are its members' and the
admin's only (docs/tickets.md, "Who sees what"). An entry names its team inbox
(``team_inbox_id``, from the delivery's ``inbox-<id>`` tag: also mail synced from the
inbox's connected mailbox, recorded with source ``sync`` and the mailbox's address); a
user sees it only when they are a member of that inbox. Entries older than that column
(migration 0023 could not attribute them) fall back to the old patterns: a team inbox's
when its source is ``team_inbox`` or its logging address is one of a team inbox's
(``<inbox token>@...`` or ``...+inbox-<id>@...``), seen when that address names an
inbox of theirs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import IngestLogEntry, TeamInbox
from core.tickets.access import member_inboxes
from core.types import Envelope, NotLoggedReason, Source

__all__ = ["NotLoggedReason", "entries", "record", "team_inbox_of", "visible_entry"]

_INBOX_TAG = re.compile(r"^inbox-(\d{1,18})$")


def team_inbox_of(envelope: Envelope) -> int | None:
    """The team inbox a delivery is for (its ``inbox-<id>`` tag), or None."""
    for tag in envelope.tags:
        if (found := _INBOX_TAG.match(tag)) is not None:
            return int(found.group(1))
    return None


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
    team_inbox_id: int | None = None,
) -> IngestLogEntry:
    """Add an audit entry to the caller's transaction (``team_inbox_id``: whose mail it
    was, when a team inbox's)."""
    entry = IngestLogEntry(
        portal_id=portal_id, reason_code=reason_code.value, reason=reason[:500], source=source,
        logging_address=(logging_address or "")[:320], sender=(sender or "")[:320],
        envelope_sender=(envelope_sender or "")[:320],
        message_id=message_id[:998] if message_id else None, size=size,
        team_inbox_id=team_inbox_id,
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
    unattributed = IngestLogEntry.team_inbox_id.is_(None)
    inbox_mail = or_(IngestLogEntry.source == Source.TEAM_INBOX.value,
                     address.like("%+inbox-%"), *theirs)
    mine = [_names_inbox(address, token, inbox_id) for inbox_id, token in inboxes
            if inbox_id in members]
    ours = [i for i, _ in inboxes if i in members]
    return or_(IngestLogEntry.team_inbox_id.in_(ours) if ours else false(),
               and_(unattributed, or_(not_(inbox_mail), *mine)))


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
