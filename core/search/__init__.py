"""Full-text search over a portal's logged email, the same on SQLite and PostgreSQL.

The index (migration 0012) is one ``search_documents`` row per email, written by
triggers in the transaction that writes the email, its attachments, a deletion, an
erasure or a purge: nothing here keeps it in step. A search reads it, never writes.
What a search may return is decided here, at query time: the caller's portal only, and
never a deleted email (so a restore brings one back at once). The query language is in
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

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.search import _postgres, _sqlite
from core.search.snippets import Snippet, Span, find, snippet
from core.search.syntax import Field, Query, parse
from core.storage.models import Attachment, Email, EmailCompany, EmailContact, EmailSource
from core.types import Direction, Source

__all__ = ["Filters", "Hit", "Page", "Query", "Snippet", "parse", "search"]

MAX_LIMIT = 100


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


async def search(session: AsyncSession, portal_id: int, query: Query | str,
                 filters: Filters | None = None, *, limit: int = 20,
                 cursor: str | None = None) -> Page:
    """The portal's emails that match, best first (then newest first), ``limit`` at a
    time; ``cursor`` is the ``Page.cursor`` of the page before. Deleted emails never
    match. Without words, every email the operators and filters leave, newest first.

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
    bind = session.get_bind()
    backend = _sqlite if bind.dialect.name == "sqlite" else _postgres
    matching = backend.matching(query).add_columns(Email.sent_at).where(
        Email.portal_id == portal_id, Email.deleted_at.is_(None),
        *_conditions(query, filters))
    ranked = matching.subquery("ranked")
    email_id, score, sent_at = ranked.c[0], ranked.c[1], ranked.c[2]
    page = select(email_id, score, sent_at)
    if cursor is not None:
        after_score, after_sent, after_id = _decode(cursor)
        page = page.where(or_(
            score > after_score,
            and_(score == after_score, or_(
                sent_at < after_sent, and_(sent_at == after_sent, email_id < after_id)))))
    rows = (await session.execute(
        page.order_by(score, sent_at.desc(), email_id.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    found = {e.id: e for e in (await session.scalars(
        select(Email).where(Email.id.in_([r[0] for r in rows])))).all()}
    hits = [_hit(query, found[r[0]]) for r in rows if r[0] in found]
    last = rows[-1] if rows and more else None
    return Page(hits, _encode(float(last[1]), last[2], last[0]) if last else None)
