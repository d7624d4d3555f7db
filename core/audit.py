"""The ingest audit log: why a received message was not logged (metadata, never a body)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import IngestLogEntry
from core.types import NotLoggedReason

__all__ = ["NotLoggedReason", "entries", "record"]


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


async def entries(
    session: AsyncSession, portal_id: int, *, before: int | None, limit: int
) -> Sequence[IngestLogEntry]:
    """A portal's audit entries, newest first; ``before`` is the cursor (an entry id)."""
    query = select(IngestLogEntry).where(IngestLogEntry.portal_id == portal_id)
    if before is not None:
        query = query.where(IngestLogEntry.id < before)
    return (await session.scalars(query.order_by(IngestLogEntry.id.desc()).limit(limit))).all()
