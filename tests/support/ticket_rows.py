"""Tickets written straight into a database with the timestamps a test chooses (their
activity log, first message and its channel): the fixtures of the report tests and the
ticket benchmark, which need days and hours that mail arriving now cannot have. Their
SLA figures are kept as the server's are (``core.tickets.figures``: at the commit)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import (
    Email,
    EmailSource,
    TeamInbox,
    TeamInboxMember,
    Thread,
    Ticket,
    TicketActivity,
)
from core.tickets import figures as _figures  # noqa: F401 (keeps figures on write)


async def team_inbox(session: AsyncSession, portal_id: int, name: str, *,
                     time_zone: str = "UTC", hours: dict[str, Any] | None = None,
                     users: Sequence[int] = (), teams: Sequence[int] = ()) -> int:
    inbox = TeamInbox(portal_id=portal_id, name=name, token=secrets.token_hex(8),
                      time_zone=time_zone, business_hours=hours or {})
    session.add(inbox)
    await session.flush()
    session.add_all([TeamInboxMember(team_inbox_id=inbox.id, user_id=u) for u in users]
                    + [TeamInboxMember(team_inbox_id=inbox.id, team_id=t) for t in teams])
    return inbox.id


@dataclass
class Step:
    """One activity: ``kind`` at ``at`` (``to_value``: a status, ``user:<id>``)."""

    kind: str
    at: datetime
    to_value: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


async def ticket(session: AsyncSession, portal_id: int, inbox_id: int | None,
                 created: datetime, steps: Sequence[Step] = (), *, channel: str = "team_inbox",
                 status: str = "open", assignee: int | None = None,
                 closed_at: datetime | None = None, updated_at: datetime | None = None,
                 merged_into: int | None = None) -> int:
    """A ticket created at ``created`` from a first message that came by ``channel``,
    then ``steps``; its columns as given (they are the state the steps led to)."""
    thread = Thread(portal_id=portal_id, subject="Help")
    session.add(thread)
    await session.flush()
    email = Email(portal_id=portal_id, message_id=f"{secrets.token_hex(8)}@customer.example",
                  thread_id=thread.id, thread_reason="new", direction="incoming",
                  sent_at=created, from_email="customer@customer.example",
                  team_inbox_id=inbox_id)
    session.add(email)
    await session.flush()
    session.add(EmailSource(email_id=email.id, source=channel, created_at=created))
    row = Ticket(portal_id=portal_id, subject="Help", created_at=created,
                 team_inbox_id=inbox_id, thread_id=thread.id, status=status,
                 assignee_user_id=assignee, closed_at=closed_at,
                 updated_at=updated_at or (steps[-1].at if steps else None),
                 merged_into_id=merged_into)
    session.add(row)
    await session.flush()
    session.add(TicketActivity(portal_id=portal_id, ticket_id=row.id, at=created,
                               kind="created", email_id=email.id, detail={"cycle": 1}))
    # Inserted in the order added: the ids follow the log.
    session.add_all([TicketActivity(portal_id=portal_id, ticket_id=row.id, at=step.at,
                                    kind=step.kind, to_value=step.to_value, detail=step.detail)
                     for step in steps])
    return row.id
