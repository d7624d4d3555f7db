"""Full-text search over the portal's logged email (docs/search.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from core import search, tracked_sends
from core.types import Direction, Source
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import query_int
from extension_api.errors import ApiError
from extension_api.schemas import respond
from extension_api.schemas.search import SearchPage, search_hit_of

_MAX_ID = 2**63 - 1
E = TypeVar("E", Direction, Source)


def _id(request: Request, name: str) -> int | None:
    if request.query_params.get(name) is None:
        return None
    return query_int(request, name, 0, low=1, high=_MAX_ID)


def _moment(request: Request, name: str) -> datetime | None:
    """An ISO 8601 date (its midnight, UTC) or date-time (UTC when it names no offset)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.min, UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an ISO 8601 date or date-time, "
                       "as 2026-01-31 or 2026-01-31T09:30:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _choice(request: Request, name: str, kind: type[E]) -> E | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be one of "
                       + ", ".join(member.value for member in kind)) from None


def _flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise ApiError(400, "bad_request", f"{name} must be true or false")
    return raw.lower() in ("true", "1")


@authenticated
async def search_emails(request: Request, principal: Principal) -> Response:
    """A user sees what the other read endpoints show them: every email of the portal
    (README, "Roles") but a team inbox's they are not a member of; another portal's
    never."""
    text = request.query_params.get("q", "")
    if not text.strip():
        raise ApiError(400, "bad_request", "give ?q= (docs/search.md has the syntax)")
    filters = search.Filters(
        contact_id=_id(request, "contact_id"), company_id=_id(request, "company_id"),
        direction=_choice(request, "direction", Direction),
        source=_choice(request, "source", Source),
        after=_moment(request, "after"), before=_moment(request, "before"),
        has_attachment=_flag(request, "has_attachment"))
    limit = query_int(request, "limit", 20, low=1, high=search.MAX_LIMIT)
    async with runtime_of(request).db.read() as session:
        # A team inbox's emails only for its members (docs/tickets.md), left out in SQL.
        page = await search.search(session, principal.portal_id, search.parse(text), filters,
                                   limit=limit, cursor=request.query_params.get("cursor"),
                                   viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, [hit.email for hit in page.hits])
    return respond(SearchPage(items=[search_hit_of(h, counts.get(h.email.id))
                                     for h in page.hits], cursor=page.cursor))
