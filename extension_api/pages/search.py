"""The search page: a portal's logged email found by its words (``core.search``), with
the API's filters, highlighted snippets and cursor paging.

Highlights are core's ``[start, end)`` offsets (Unicode code points, which is what a
Python ``str`` counts), cut here into pieces the template escapes and marks: no text of
an email ever reaches the page unescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from core import queries, search, tracked_sends, web_reads
from core.errors import InvalidInput
from core.search.snippets import Span
from core.tracking_verdicts import Counts
from core.types import Direction, Source
from extension_api.pages import _dates, words
from extension_api.pages._web import Viewer, render, runtime_of, signed_in

PAGE_SIZE = 20
FIELDS = ("q", "contact", "company", "direction", "source", "after", "before",
          "attachments")
# "before" ends on the next day, and the last day there is has none.
LAST_DAY = date.max - timedelta(days=1)
WHERE = {"text": "", "subject": "in the subject", "from": "in the sender",
         "to": "in the recipients", "attachments": "in the file names"}


@dataclass(frozen=True)
class Piece:
    text: str
    marked: bool


def pieces(text: str, spans: Sequence[Span]) -> list[Piece]:
    """``text`` cut at ``spans``, each piece marked when it is a highlight (a span that
    overlaps an earlier one or lies outside the text is left out)."""
    cut: list[Piece] = []
    at = 0
    for start, end in sorted(spans):
        if start < at or end <= start or end > len(text):
            continue
        if start > at:
            cut.append(Piece(text[at:start], False))
        cut.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        cut.append(Piece(text[at:], False))
    return cut


E = TypeVar("E", Direction, Source)


def _choice(kind: type[E], value: str) -> E | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"there is no {kind.__name__.lower()} {value!r}") from None


@signed_in
async def search_page(request: Request, viewer: Viewer) -> Response:
    """``/search?q=…`` with the filters: contact (address), company (domain),
    direction, source, after/before (dates, UTC; ``before`` includes its day) and
    attachments (``yes``/``no``); ``cursor`` is the next page's."""
    given = {name: request.query_params.get(name, "").strip()[:500] for name in FIELDS}
    cursor = request.query_params.get("cursor") or None
    page, error, unknown = None, "", ""
    counts: dict[int, Counts] = {}
    searched = any(given.values())
    if searched:
        try:
            after = _dates.day(given["after"], "after", latest=LAST_DAY)
            before = _dates.day(given["before"], "before", latest=LAST_DAY)
            filters = search.Filters(
                direction=_choice(Direction, given["direction"]),
                source=_choice(Source, given["source"]),
                after=datetime.combine(after, time.min, UTC) if after else None,
                before=(datetime.combine(before + timedelta(days=1), time.min, UTC)
                        if before else None),
                has_attachment={"yes": True, "no": False}.get(given["attachments"]))
            async with runtime_of(request).db.read() as session:
                if given["contact"]:
                    found = await queries.contacts_by_email(
                        session, viewer.portal_id, given["contact"].lower())
                    if found:
                        filters = replace(filters, contact_id=found[0].id)
                    else:
                        unknown = f"No contact has the address “{given['contact']}”."
                if given["company"] and not unknown:
                    company = await web_reads.company_by_domain(
                        session, viewer.portal_id, given["company"])
                    if company is not None:
                        filters = replace(filters, company_id=company.id)
                    else:
                        unknown = f"No company has the domain “{given['company']}”."
                if not unknown:
                    # A team inbox's emails only for its members (docs/tickets.md), left
                    # out in the search's own SQL: every page full, the cursor right.
                    page = await search.search(
                        session, viewer.portal_id, given["q"], filters, limit=PAGE_SIZE,
                        cursor=cursor, viewer=None if viewer.is_admin else viewer.user_id)
                    counts = await tracked_sends.counts_for(
                        session, [hit.email for hit in page.hits])
        except InvalidInput as exc:
            error = exc.message
    results = [{
        "hit": hit, "subject": pieces(hit.email.subject or "", hit.subject_highlights),
        "snippet": pieces(hit.snippet.text, hit.snippet.highlights),
        "where": WHERE.get(hit.snippet.field, ""), "tracking": counts.get(hit.email.id),
    } for hit in (page.hits if page else [])]
    more = (f"/search?{urlencode({**given, 'cursor': page.cursor})}"
            if page and page.cursor else "")
    return render(request, "search.html", given=given, searched=searched,
                  results=results, more=more, error=error or unknown,
                  first_page=cursor is None, sources=words.SOURCES,
                  status=422 if error else 200)

