"""Full-text search over a portal's logged email, the same on SQLite and PostgreSQL.

The index (migration 0012) is one ``search_documents`` row per email, written by
triggers in the transaction that writes the email, its attachments, a deletion, an
erasure or a purge: nothing here keeps it in step. A search reads it, never writes.
What a search may return is decided here, at query time: the caller's portal only, never
a deleted email (so a restore brings one back at once), and a team inbox's emails only
for its members (``viewer``; docs/tickets.md), in the same SQL as the words, so nothing
is ranked and then dropped and every page is full. The query language is in
``core.search.syntax``; docs/search.md describes all of it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Protocol

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.search import _postgres, _sqlite
from core.search.snippets import Snippet, Span, find, snippet
from core.search.syntax import Field, Query, parse
from core.storage.models import Attachment, Email, EmailCompany, EmailContact, EmailSource
from core.tickets.access import visible_email
from core.types import Direction, Source

__all__ = ["Filters", "Hit", "Page", "Query", "Snippet", "parse", "search"]

MAX_LIMIT = 100
# A query with words ranks its WINDOW most recently logged matches, best first; the
# older ones follow, newest first, with the score OLDER (every rank is below 0).
WINDOW = 1000
OLDER = 1.0


class _Backend(Protocol):
    def filtered(self, query: Query) -> Select[int, float]: ...

    async def dense(self, session: AsyncSession, query: Query) -> bool: ...

    def ranked(self, query: Query, conditions: list[ColumnElement[bool]], size: int, *,
               dense: bool = False) -> Select[int, float]: ...


@dataclass(frozen=True)
class Filters:
    """Restrictions beside the query's words; they and the query's operators all apply."""

    contact_id: int | None = None
    company_id: int | None = None
    direction: Direction | None = None
    source: Source | None = None
    after: datetime | None = None  # sent at or after
    before: datetime | None = None  # sent before
    has_attachment: bool | None = None


@dataclass(frozen=True)
class Hit:
    email: Email
    snippet: Snippet
    subject_highlights: tuple[Span, ...]


@dataclass(frozen=True)
class Page:
    hits: list[Hit] = field(default_factory=list)
    cursor: str | None = None  # the next page's, None on the last one


def _day(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _conditions(query: Query, filters: Filters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.contact_id is not None:
        found.append(Email.id.in_(select(EmailContact.email_id)
                                  .where(EmailContact.contact_id == filters.contact_id)))
    if filters.company_id is not None:
        found.append(Email.id.in_(select(EmailCompany.email_id)
                                  .where(EmailCompany.company_id == filters.company_id)))
    if filters.direction is not None:
        found.append(Email.direction == filters.direction.value)
    if filters.source is not None:
        found.append(Email.id.in_(select(EmailSource.email_id)
                                  .where(EmailSource.source == filters.source.value)))
    for after in (filters.after, query.after and _day(query.after)):
        if after is not None:
            found.append(Email.sent_at >= after)
    for before in (filters.before, query.before and _day(query.before)):
        if before is not None:
            found.append(Email.sent_at < before)
    attached = exists().where(Attachment.email_id == Email.id, Attachment.inline.is_(False))
    for wanted in {filters.has_attachment, query.has_attachment} - {None}:
        found.append(attached if wanted else ~attached)
    return found


def _encode(score: float, sent_at: datetime, email_id: int) -> str:
    raw = json.dumps([score.hex(), sent_at.isoformat(), email_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_MAX_ID = 2**63 - 1  # the largest id either database stores


def _storable(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, as the databases compare it; InvalidInput when the calendar
    ends before it gets there (0001-01-01T00:00+05:00 is a day before the year 1)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is outside the years 1 to 9999 in UTC") from None


def _decode(cursor: str) -> tuple[float, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, sent_at, email_id = json.loads(raw)
        moment = datetime.fromisoformat(sent_at)
        value = float.fromhex(score)
        # A cursor this function gave holds a stored id, a finite score and a moment
        # in UTC; anything else is made up, and would make the database raise.
        if (moment.tzinfo is None or type(email_id) is not int
                or not 0 < email_id <= _MAX_ID or not math.isfinite(value)):
            raise ValueError(cursor)
        return value, moment.astimezone(UTC), email_id
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this search gave") from None


def _people(people: Sequence[object]) -> str:
    parts: list[str] = []
    for person in people:
        if isinstance(person, dict):
            parts.extend(str(person.get(key) or "") for key in ("name", "email"))
    return " ".join(p for p in parts if p)


def _hit(query: Query, email: Email) -> Hit:
    filenames = " ".join(a.filename for a in email.attachments if not a.inline)
    shown = snippet(query, subject=email.subject, text=email.text,
                    sender=f"{email.from_name} {email.from_email}".strip(),
                    recipients=_people([*email.to, *email.cc]), filenames=filenames)
    return Hit(email, shown, find(email.subject, query, Field.SUBJECT))


_Cursor = tuple[float, datetime, int]  # score, sent at, email id: where a page ends
_Row = tuple[int, float, datetime]  # email id, score, sent at


def _after(cursor: _Cursor, score: ColumnElement[float],
           sent_at: ColumnElement[datetime], email_id: ColumnElement[int]
           ) -> ColumnElement[bool]:
    """The rows after ``cursor`` in the order (score, newest first, higher id first)."""
    after_score, after_sent, after_id = cursor
    return or_(score > after_score, and_(score == after_score, or_(
        sent_at < after_sent, and_(sent_at == after_sent, email_id < after_id))))


async def _unranked(session: AsyncSession, backend: _Backend, query: Query,
                    conditions: list[ColumnElement[bool]], limit: int,
                    cursor: _Cursor | None) -> list[_Row]:
    """Every match, newest first (a query without words to rank by)."""
    matching = backend.filtered(query).add_columns(Email.sent_at).where(*conditions).subquery()
    email_id, score, sent_at = matching.c[0], matching.c[1], matching.c[2]
    page = select(email_id, score, sent_at)
    if cursor is not None:
        page = page.where(_after(cursor, score, sent_at, email_id))
    rows = await session.execute(page.order_by(score, sent_at.desc(), email_id.desc())
                                 .limit(limit + 1))
    return [(r[0], float(r[1]), r[2]) for r in rows]


async def _ranked(session: AsyncSession, backend: _Backend, query: Query,
                  conditions: list[ColumnElement[bool]], limit: int,
                  cursor: _Cursor | None) -> tuple[list[_Row], int | None]:
    """Up to ``limit + 1`` matches from ``cursor`` on: the WINDOW most recently logged
    ones best first, then the older ones newest (by id) first; and, when the page
    goes on past the window, the id the older ones start below."""
    found: list[_Row] = []
    if cursor is None or cursor[0] < OLDER:
        window = backend.ranked(query, conditions, WINDOW,
                                dense=await backend.dense(session, query)).subquery("window")
        counted = (select(window.c[0].label("id"), window.c[1].label("score"), Email.sent_at,
                          func.count().over().label("size"),
                          func.min(window.c[0]).over().label("oldest"))
                   .join(Email, Email.id == window.c[0]).subquery("counted"))
        page = select(counted.c.id, counted.c.score, counted.c.sent_at, counted.c.size,
                      counted.c.oldest)
        if cursor is not None:
            page = page.where(_after(cursor, counted.c.score, counted.c.sent_at, counted.c.id))
        rows = (await session.execute(page.order_by(
            counted.c.score, counted.c.sent_at.desc(), counted.c.id.desc())
            .limit(limit + 1))).all()
        found = [(r.id, float(r.score), r.sent_at) for r in rows]
        if len(found) > limit or (rows and rows[0].size < WINDOW):
            return found, None  # a page of the window, or the window holds every match
        if not rows and cursor is None:
            return [], None
        below = rows[0].oldest if rows else cursor[2] if cursor else 0
    else:
        below = cursor[2]
    older = (backend.filtered(query).with_only_columns(Email.id, Email.sent_at)
             .where(*conditions, Email.id < below)
             .order_by(Email.id.desc()).limit(limit + 1 - len(found)))
    found += [(r[0], OLDER, r[1]) for r in await session.execute(older)]
    return found, below


async def search(session: AsyncSession, portal_id: int, query: Query | str,
                 filters: Filters | None = None, *, limit: int = 20,
                 cursor: str | None = None, viewer: int | None = None) -> Page:
    """The portal's emails that match, best first (then newest first), ``limit`` at a
    time; ``cursor`` is the ``Page.cursor`` of the page before. Deleted emails never
    match, nor a team inbox's emails unless ``viewer`` (a user id; None: the admin, who
    sees all) is its member. Without words, every email the operators and filters
    leave, newest first.

    InvalidInput for a query ``syntax.parse`` refuses, a limit out of 1..100 or a cursor
    this function did not give.
    """
    if isinstance(query, str):
        query = parse(query)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}")
    filters = filters or Filters()
    if filters.after is not None:
        filters = replace(filters, after=_storable(filters.after, "after"))
    if filters.before is not None:
        filters = replace(filters, before=_storable(filters.before, "before"))
    backend: _Backend = _sqlite if session.get_bind().dialect.name == "sqlite" else _postgres
    conditions = [Email.portal_id == portal_id, Email.deleted_at.is_(None),
                  *_conditions(query, filters)]
    if viewer is not None:
        conditions.append(await visible_email(session, portal_id, viewer))
    after = _decode(cursor) if cursor is not None else None
    below: int | None = None
    if any(not t.cjk and not t.negated for t in query.terms):
        rows, below = await _ranked(session, backend, query, conditions, limit, after)
    else:
        rows = await _unranked(session, backend, query, conditions, limit, after)
    more = len(rows) > limit
    rows = rows[:limit]
    found = {e.id: e for e in (await session.scalars(
        select(Email).where(Email.id.in_([r[0] for r in rows])))).all()}
    hits = [_hit(query, found[r[0]]) for r in rows if r[0] in found]
    if not rows or not more:
        return Page(hits, None)
    email_id, score, sent_at = rows[-1]
    if score < OLDER and below is not None:
        # The page ends with the window's last: the next starts with the older matches.
        return Page(hits, _encode(OLDER, sent_at, below))
    return Page(hits, _encode(score, sent_at, email_id))
