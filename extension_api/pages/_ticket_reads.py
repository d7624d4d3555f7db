"""The users and contacts a ticket page names, by id, of the viewer's portal only (the
tickets themselves are core's list: ``core.tickets.service.tickets``), and the events
a ticket's page refreshes on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import Contact, Event, User
from core.types import EventType

Named = TypeVar("Named", User, Contact)


async def _by_id(session: AsyncSession, model: type[Named], portal_id: int,
                 ids: Iterable[int | None]) -> dict[int, Named]:
    """The portal's rows of ``model`` with these ids (None and repeats skipped)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.scalars(select(model).where(model.portal_id == portal_id,
                                                     model.id.in_(wanted)))
    return {row.id: row for row in rows}


async def users(session: AsyncSession, portal_id: int, ids: Iterable[int | None]
                ) -> dict[int, User]:
    return await _by_id(session, User, portal_id, ids)


async def contacts(session: AsyncSession, portal_id: int, ids: Iterable[int | None]
                   ) -> dict[int, Contact]:
    return await _by_id(session, Contact, portal_id, ids)


TICKET_EVENTS = tuple(t.value for t in EventType if t.value.startswith("ticket_"))


async def last_event_id(session: AsyncSession, portal_id: int) -> int:
    """Where a ticket page's live feed starts: the portal's last event when it rendered."""
    found = await session.scalar(select(func.max(Event.id)).where(
        Event.portal_id == portal_id))
    return int(found or 0)


@dataclass
class TicketFeed:
    """A ticket's ``ticket_*`` events past an id, whoever's feed they are in (the
    assignee's, the admin's, a mentioned agent's): the page of a member who is not the
    assignee changes too. ``scanned`` is how far the portal's events were read, so a
    long run of other tickets' events is read once, not again at every poll."""

    portal_id: int
    ticket_id: int
    scanned: int = 0

    async def read(self, session: AsyncSession, after: int) -> list[Event]:
        rows = (await session.scalars(select(Event).where(
            Event.portal_id == self.portal_id, Event.type.in_(TICKET_EVENTS),
            Event.id > max(after, self.scanned)).order_by(Event.id).limit(200))).all()
        if rows:
            self.scanned = rows[-1].id
        return [e for e in rows if (e.detail or {}).get("ticket_id") == self.ticket_id]
