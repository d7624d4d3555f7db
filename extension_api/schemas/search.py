"""Shapes of a search's answer: hits, each an email summary with a highlighted snippet."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from core.search import Hit
from core.tracking import Counts
from extension_api.schemas._codec import ResponseShape
from extension_api.schemas.mail import EmailSummary, email_summary_of

Span = Annotated[tuple[int, int], Meta(description=(
    "[start, end) of a matched word in the text, in Unicode code points (not UTF-16 "
    "units: a JavaScript client counts an emoji as two)"))]


class Snippet(ResponseShape):
    """Where the query's words are: a piece of one field, on one line."""

    field: Annotated[Literal["text", "subject", "from", "to", "attachments"], Meta(
        description="the field the piece is from: the body text, the subject, the sender, "
                    "the recipients, or the attachments' file names")]
    text: Annotated[str, Meta(description="the piece (up to 200 characters, … where cut)")]
    highlights: list[Span]


class SearchHit(ResponseShape):
    email: EmailSummary
    snippet: Snippet
    subject_highlights: Annotated[list[Span], Meta(
        description="where the query's words are in email.subject")]


class SearchPage(ResponseShape):
    """Hits best first (then newest first)."""

    items: list[SearchHit]
    cursor: Annotated[str | None, Meta(
        description="give it as ?cursor= (with the same query) for the next page; null "
                    "on the last page")]


def search_hit_of(hit: Hit, counts: Counts | None = None) -> SearchHit:
    shown = hit.snippet
    return SearchHit(
        email=email_summary_of(hit.email, counts),
        snippet=Snippet(field=shown.field, text=shown.text, highlights=list(shown.highlights)),
        subject_highlights=list(hit.subject_highlights))
