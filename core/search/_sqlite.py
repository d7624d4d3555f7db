"""The text part of a search on SQLite: FTS5 ``search_fts`` (unicode61, diacritics removed)
ranked by bm25, ``search_cjk`` (trigram) for CJK text (migration 0012)."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    column,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.search.syntax import Field, Query, Term
from core.storage.models import Email

_FTS = table("search_fts", column("rowid"))
_CJK = table("search_cjk", column("rowid"))
_DOCUMENTS = table("search_documents", column("email_id"))
_COLUMN = {Field.SUBJECT: "subject", Field.SENDER: "sender", Field.RECIPIENTS: "recipients"}
_ALL = "subject || ' ' || body || ' ' || sender || ' ' || recipients || ' ' || filenames"
# bm25 weights, in the table's column order: subject, body, sender, recipients, filenames.
_WEIGHTS = "10.0, 1.0, 4.0, 2.0, 2.0"
# The condition of the partial index ix_search_documents_cjk (migration 0012).
_HAS_CJK = "cjk"
# The trigram tokenizer matches only strings of three or more characters.
_TRIGRAM = 3


def _phrase(term: Term) -> str:
    # Words are letters and digits only (syntax.WORD): nothing to escape inside quotes.
    phrase = '"' + " ".join(term.words) + '"' + (" *" if term.prefix else "")
    return f"{_COLUMN[term.field]} : {phrase}" if term.field else phrase


def _cjk_match(term: Term, name: str) -> ColumnElement[bool]:
    """The emails whose text holds the term's CJK text, as a substring."""
    needle = term.substring
    if len(needle) >= _TRIGRAM:
        match = '"' + needle + '"'
        if term.field:
            match = f"{_COLUMN[term.field]} : {match}"
        found = select(_CJK.c.rowid).where(
            text(f"search_cjk MATCH :{name}").bindparams(**{name: match}))
    else:
        where = _COLUMN[term.field] if term.field else f"({_ALL})"
        found = select(_DOCUMENTS.c.email_id).where(
            text(_HAS_CJK), text(f"{where} LIKE :{name}").bindparams(**{name: f"%{needle}%"}))
    return Email.id.in_(found) if not term.negated else Email.id.not_in(found)


def _match(query: Query) -> tuple[str | None, list[ColumnElement[bool]]]:
    """(the FTS5 expression of the positive words, if any; the other conditions)."""
    words = [t for t in query.terms if not t.cjk]
    positive = [_phrase(t) for t in words if not t.negated]
    negative = [_phrase(t) for t in words if t.negated]
    conditions = [_cjk_match(t, f"cjk{i}") for i, t in enumerate(query.terms) if t.cjk]
    if not positive:
        if negative:
            conditions.append(Email.id.not_in(select(_FTS.c.rowid).where(
                text("search_fts MATCH :words").bindparams(words=" OR ".join(negative)))))
        return None, conditions
    match = " AND ".join(positive)
    if negative:
        match = f"({match}) NOT ({' OR '.join(negative)})"
    return match, conditions


def filtered(query: Query) -> Select[int, float]:
    """``(email id, 0)`` of every email whose text matches ``query``, not yet restricted
    to a portal; every email when it has no terms."""
    match, conditions = _match(query)
    statement = select(Email.id, literal(0.0).label("score"))
    if match is not None:
        statement = statement.select_from(_FTS.join(Email, Email.id == _FTS.c.rowid)).where(
            text("search_fts MATCH :words").bindparams(words=match))
    return statement.where(*conditions)


async def dense(session: AsyncSession, query: Query) -> bool:
    """FTS5 finds the newest matches of any word soon: no choice to make (PostgreSQL's
    ``dense``)."""
    return False


def ranked(query: Query, conditions: list[ColumnElement[bool]], size: int, *,
           dense: bool = False) -> Select[int, float]:
    """``(email id, score)`` (lower scores rank first) of the ``size`` most recently
    logged emails that match ``query`` (which has words to rank by) and ``conditions``.

    Only those are ranked: FTS5 hands out its matches in rowid order, newest first here,
    so bm25 (which reads each match's column sizes) runs ``size`` times, not once for
    each of the hundreds of thousands of emails that hold a frequent word.
    """
    match, others = _match(query)
    assert match is not None, "ranked() needs words to rank by"
    score = literal_column(f"bm25(search_fts, {_WEIGHTS})", Float).label("score")
    return (select(Email.id, score).select_from(_FTS.join(Email, Email.id == _FTS.c.rowid))
            .where(text("search_fts MATCH :words").bindparams(words=match), *others,
                   *conditions)
            .order_by(_FTS.c.rowid.desc()).limit(size))
