"""Signed-in browsers: a session starts at sign-in and ends at sign-out, after ``IDLE``
without a request, ``ABSOLUTE`` after it started, or when the user's password changes.

The browser holds the session's token (the adapter signs it into a cookie); the database
keeps its sha256 only. ``last_seen_at`` is written at most every ``TOUCH_EVERY``, so that
reading pages costs no write per request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import hash_token
from core.storage.models import utcnow
from core.storage.models.web import WebSession
from core.web_accounts import Account, account

SESSION_TOKEN_PREFIX = "ils_"
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Started:
    session: WebSession
    token: str  # for the cookie; never stored


async def start(session: AsyncSession, signed_in: Account, *, user_agent: str = "",
                now: datetime | None = None) -> Started:
    """A new session for ``signed_in``. Sessions of the user that have ended are removed
    on the way (they are never valid again)."""
    now = now or utcnow()
    await session.execute(delete(WebSession).where(
        WebSession.user_id == signed_in.user.id, _ended(now)))
    token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = WebSession(token_hash=hash_token(token), portal_id=signed_in.user.portal_id,
                     user_id=signed_in.user.id, created_at=now, last_seen_at=now,
                     expires_at=now + ABSOLUTE, user_agent=user_agent[:300])
    session.add(row)
    await session.flush()
    return Started(row, token)


def _ended(now: datetime) -> ColumnElement[bool]:
    return (WebSession.expires_at <= now) | (WebSession.last_seen_at <= now - IDLE)


async def purge_ended(session: AsyncSession, now: datetime) -> int:
    """Delete every session that has ended (the periodic purge: a user who never signs
    in again would keep theirs forever); how many went."""
    gone = await session.execute(delete(WebSession).where(_ended(now)))
    return int(getattr(gone, "rowcount", 0) or 0)


def _live(row: WebSession, now: datetime) -> bool:
    return row.expires_at > now and row.last_seen_at > now - IDLE


async def resolve(session: AsyncSession, token: str, *,
                  now: datetime | None = None) -> tuple[WebSession, Account] | None:
    """The live session of ``token`` and its account, or None. Reads only: a request
    through it restarts the idle clock with ``touch`` (when ``needs_touch``)."""
    if not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > 100:
        return None
    row = await session.scalar(select(WebSession).where(
        WebSession.token_hash == hash_token(token)))
    if row is None or not _live(row, now or utcnow()):
        return None
    return row, await account(session, row.user_id)


def needs_touch(row: WebSession, *, now: datetime | None = None) -> bool:
    return (now or utcnow()) - row.last_seen_at >= TOUCH_EVERY


async def touch(session: AsyncSession, session_id: int, *, now: datetime | None = None) -> None:
    """Record activity on a session (its idle expiry starts again from ``now``)."""
    await session.execute(update(WebSession).where(WebSession.id == session_id)
                          .values(last_seen_at=now or utcnow()))


async def end(session: AsyncSession, token: str) -> None:
    """Sign-out: the session of ``token`` is gone (nothing happens for an unknown one)."""
    await session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))
