"""The text part of a search on PostgreSQL: the generated, weighted ``document`` tsvector
of ``search_documents`` (configuration ``inboxlog_search``: ``simple`` behind
``unaccent``) ranked by ts_rank, and pg_trgm's index for CJK text (migration 0012)."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from core.search.syntax import Field, Query, Term
from core.storage.models import Email

_DOCUMENTS = table("search_documents", column("email_id"))
# The weights migration 0012 gives each column of the document.
_WEIGHT = {Field.SUBJECT: "A", Field.SENDER: "B", Field.RECIPIENTS: "C"}
_COLUMN = {Field.SUBJECT: "subject", Field.SENDER: "sender", Field.RECIPIENTS: "recipients"}
# The expression of the partial pg_trgm index ix_search_documents_cjk, exactly.
_ALL = "subject || ' ' || body || ' ' || sender || ' ' || recipients || ' ' || filenames"


def _lexemes(term: Term) -> str:
    """The term in to_tsquery's syntax: its words in a row, each normalized by the
    configuration (quoted: words are letters and digits, nothing to escape)."""
    weight = _WEIGHT[term.field] if term.field else ""
    parts = [f"'{word}'" + ((":*" + weight) if term.prefix and i == len(term.words) - 1
                            else (":" + weight if weight else ""))
             for i, word in enumerate(term.words)]
    phrase = " <-> ".join(parts)
    return f"!({phrase})" if term.negated else f"({phrase})"


def _cjk_match(term: Term, name: str) -> ColumnElement[bool]:
    where = _COLUMN[term.field] if term.field else f"({_ALL})"
    found = select(_DOCUMENTS.c.email_id).where(
        text(f"has_cjk AND {where} ILIKE :{name}").bindparams(**{name: f"%{term.substring}%"}))
    return Email.id.in_(found) if not term.negated else Email.id.not_in(found)


def matching(query: Query) -> Select[int, float]:
    """``(email id, score)`` of every email whose text matches ``query`` (lower scores
    rank first), not yet restricted to a portal; every email when it has no terms."""
    words = [t for t in query.terms if not t.cjk]
    conditions = [_cjk_match(t, f"cjk{i}") for i, t in enumerate(query.terms) if t.cjk]
    if not words:
        return select(Email.id, literal(0.0).label("score")).where(*conditions)
    tsquery = func.to_tsquery(literal_column("'inboxlog_search'::regconfig"),
                              bindparam("words", " & ".join(_lexemes(t) for t in words)))
    document = literal_column("search_documents.document", TSVECTOR)
    statement = (
        select(Email.id, cast(-func.ts_rank(document, tsquery, 1), Float).label("score"))
        .select_from(_DOCUMENTS.join(Email, Email.id == _DOCUMENTS.c.email_id))
        .where(document.op("@@")(tsquery)))
    return statement.where(*conditions)
