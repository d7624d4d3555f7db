"""Who sees a team inbox: its members (users, and the users of member teams) and the
portal's admin. Everyone else gets NotFound for its tickets and emails, as if they did
not exist; ``visible_email`` is the filter other read paths add."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage.models import Email, TeamInbox, TeamInboxMember, TeamMember


async def member_inboxes(session: AsyncSession, portal_id: int,
                         user_id: int | None) -> set[int] | None:
    """The team inboxes ``user_id`` is a member of (directly or through a team); None
    for the admin (``user_id`` None), who sees every one."""
    if user_id is None:
        return None
    direct = select(TeamInboxMember.team_inbox_id).where(TeamInboxMember.user_id == user_id)
    via_team = (select(TeamInboxMember.team_inbox_id)
                .join(TeamMember, TeamMember.team_id == TeamInboxMember.team_id)
                .where(TeamMember.user_id == user_id))
    rows = await session.scalars(
        select(TeamInbox.id).where(TeamInbox.portal_id == portal_id,
                                   TeamInbox.id.in_(direct.union(via_team))))
    return set(rows)


async def inbox_members(session: AsyncSession, inbox_id: int) -> list[int]:
    """Every user id that is a member of the inbox, directly or through a team, sorted."""
    direct = select(TeamInboxMember.user_id).where(
        TeamInboxMember.team_inbox_id == inbox_id, TeamInboxMember.user_id.is_not(None))
    via_team = (select(TeamMember.user_id)
                .join(TeamInboxMember, TeamInboxMember.team_id == TeamMember.team_id)
                .where(TeamInboxMember.team_inbox_id == inbox_id))
    return sorted({u for u in await session.scalars(direct.union(via_team)) if u is not None})


async def visible_email(session: AsyncSession, portal_id: int, user_id: int | None) -> Any:
    """A where-clause on ``Email``: the emails ``user_id`` may see (personal mail, and a
    team inbox's only for its members); ``true`` for the admin."""
    inboxes = await member_inboxes(session, portal_id, user_id)
    if inboxes is None:
        return Email.id.is_not(None)
    return or_(Email.team_inbox_id.is_(None), Email.team_inbox_id.in_(inboxes))


async def sees_inbox_mail(session: AsyncSession, portal_id: int, team_inbox_id: int | None,
                          user_id: int | None) -> bool:
    """Whether ``user_id`` (None: the admin) may see an email of ``team_inbox_id``
    (None: personal mail, which every user of the portal sees)."""
    if team_inbox_id is None or user_id is None:
        return True
    inboxes = await member_inboxes(session, portal_id, user_id)
    return inboxes is not None and team_inbox_id in inboxes


async def sees_email(session: AsyncSession, email: Email, user_id: int | None) -> bool:
    """Whether ``user_id`` (None: the admin) may see this email."""
    return await sees_inbox_mail(session, email.portal_id, email.team_inbox_id, user_id)
