"""The text part of a search on PostgreSQL: the generated, weighted ``document`` tsvector
of ``search_documents`` (configuration ``inboxlog_search``: ``simple`` behind
``unaccent``) and its ``stems`` in the email's language (migration 0015), ranked by
ts_rank, and pg_trgm's index for CJK text (migration 0012).

A word outside quotes matches its simple form (and the words it begins) in ``document``
or its stem in ``stems``: the query's language is not known, so the word is stemmed
with every language's stemmer, and each email's stems are those of its own language.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    cast,
    column,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from core.search.syntax import Field, Query, Term
from core.storage.models import Email

_DOCUMENTS = table("search_documents", column("email_id"), column("document", TSVECTOR),
                   column("stems", TSVECTOR))
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
    return " <-> ".join(parts)


def _simple(term: Term, name: str) -> ColumnElement[Any]:
    return func.to_tsquery(literal_column("'inboxlog_search'::regconfig"),
                           bindparam(name, _lexemes(term)), type_=TSQUERY)


def _stemmed(term: Term, name: str) -> ColumnElement[Any] | None:
    """The term's stems in every stemming language, or None for a term that is not
    stemmed: a phrase, a quoted or short word, a name (from:, to:)."""
    if not term.prefix or len(term.words) != 1 or term.field not in (None, Field.SUBJECT):
        return None
    word = f"'{term.words[0]}'" + (":A" if term.field else "")
    # Migration 0015's function: to_tsquery in each stemming language, ORed.
    return func.inboxlog_search_stems(bindparam(name, word), type_=TSQUERY)


def _term_match(document: ColumnElement[Any], stems: ColumnElement[Any],
                term: Term, name: str) -> ColumnElement[bool]:
    """Whether a document holds the term (its words, or its stem), negated or not."""
    found = document.bool_op("@@")(_simple(term, name))
    stemmed = _stemmed(term, name + "s")
    if stemmed is None:
        return not_(found) if term.negated else found
    in_stems = stems.bool_op("@@")(stemmed)
    if term.negated:  # stems is NULL where the language is not known
        return and_(not_(found), not_(func.coalesce(in_stems, false())))
    return or_(found, in_stems)


def _cjk_match(term: Term, name: str) -> ColumnElement[bool]:
    where = _COLUMN[term.field] if term.field else f"({_ALL})"
    found = select(_DOCUMENTS.c.email_id).where(
        text(f"has_cjk AND {where} ILIKE :{name}").bindparams(**{name: f"%{term.substring}%"}))
    return Email.id.in_(found) if not term.negated else Email.id.not_in(found)


def _all(words: list[Term], name: str) -> ColumnElement[Any]:
    return func.to_tsquery(literal_column("'inboxlog_search'::regconfig"), bindparam(
        name, " & ".join(f"({_lexemes(t)})" for t in words)), type_=TSQUERY)


def _conditions(query: Query) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """(conditions on the documents' words, conditions on their CJK text).

    The positive words are one tsquery a column, so that GIN intersects them itself (a
    condition a word, each ORed with its stems, had the planner fetch and check every
    match of the commoner word): all of them in ``document``, or, in an email of a known
    language, each as itself or its stem in ``stems`` (which holds the subject and body
    only: a name or a phrase is looked for in ``document`` beside it).
    """
    document, stems = _DOCUMENTS.c.document, _DOCUMENTS.c.stems
    positive = [(i, t) for i, t in enumerate(query.terms) if not t.cjk and not t.negated]
    words: list[ColumnElement[bool]] = []
    if positive:
        simple = document.bool_op("@@")(_all([t for _, t in positive], "words"))
        either: ColumnElement[Any] | None = None
        exact: list[Term] = []
        for i, term in positive:
            stemmed = _stemmed(term, f"s{i}")
            if stemmed is None:
                exact.append(term)
                continue
            word = _simple(term, f"m{i}")
            this = word.op("||", return_type=TSQUERY)(func.coalesce(stemmed, word))
            either = this if either is None else either.op("&&", return_type=TSQUERY)(this)
        if either is None:
            words.append(simple)
        else:
            in_stems: ColumnElement[bool] = stems.bool_op("@@")(either)
            if exact:
                in_stems = and_(in_stems, document.bool_op("@@")(_all(exact, "exact")))
            words.append(or_(simple, in_stems))
    words += [_term_match(document, stems, t, f"w{i}")
              for i, t in enumerate(query.terms) if not t.cjk and t.negated]
    cjk = [_cjk_match(t, f"cjk{i}") for i, t in enumerate(query.terms) if t.cjk]
    return words, cjk


def filtered(query: Query) -> Select[int, float]:
    """``(email id, 0)`` of every email whose text matches ``query``, not yet restricted
    to a portal; every email when it has no terms."""
    words, cjk = _conditions(query)
    if not words:
        return select(Email.id, literal(0.0).label("score")).where(*cjk)
    return (select(Email.id, literal(0.0).label("score"))
            .select_from(_DOCUMENTS.join(Email, Email.id == _DOCUMENTS.c.email_id))
            .where(*words, *cjk))


# A query whose words are in at least this share of the documents (by the statistics
# of ANALYZE) walks the newest emails to find its window; any other collects its matches
# from the GIN index first.
DENSE = 0.05


def _unaccented(word: str) -> str:
    """The word about as the configuration indexes it (lower case, without accents)."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower())
                   if not unicodedata.combining(c))


async def dense(session: AsyncSession, query: Query) -> bool:
    """Whether the positive words of ``query`` are together in at least DENSE of the
    documents, as PostgreSQL's statistics of the index tell (its most common lexemes and
    their share of ANALYZE's sample; a word not among them is rarer than any of them).

    The planner reads the same statistics, but costs a walk of the newest emails as if
    a word's matches were spread evenly and checking a document were free: for a rare
    word it walks the whole table. So the choice is made here (``ranked``).
    """
    row = (await session.execute(text(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats"
        " WHERE schemaname = current_schema() AND tablename = 'search_documents'"
        " AND attname = 'document'"))).first()
    if row is None or row[0] is None:
        return False
    share = dict(zip(row[0], row[1], strict=False))
    estimate = 1.0
    for term in query.positive:
        if term.cjk:
            continue
        if len(term.words) > 1:
            # A phrase of common words is still rare (the walk would check most of
            # the table for the few emails that have them in this order).
            return False
        word = _unaccented(term.words[0])
        estimate *= min(1.0, sum(f for lexeme, f in share.items() if lexeme.startswith(word))
                        if term.prefix else share.get(word, 0.0))
    return estimate >= DENSE


def ranked(query: Query, conditions: list[ColumnElement[bool]], size: int, *,
           dense: bool = False) -> Select[int, float]:
    """``(email id, score)`` (lower scores rank first) of the ``size`` most recently
    logged emails that match ``query`` (which has words to rank by) and ``conditions``.

    Only those are ranked: ts_rank reads a document's whole tsvector, which for a word
    in most emails is most of the table. ``dense`` (see ``dense``): the index of ids is
    walked backwards, checking each document, until ``size`` match (for a word in half
    the emails, about twice ``size`` documents); else the matches are collected from the
    GIN index first (OFFSET 0 keeps the planner from walking instead), then the newest
    kept.
    """
    matching = filtered(query).where(*conditions).with_only_columns(Email.id)
    if dense:
        newest = matching.order_by(Email.id.desc())
    else:
        fenced = matching.offset(0).subquery("matching")
        newest = select(fenced.c.id).order_by(fenced.c.id.desc())
    found = newest.limit(size).subquery("newest")
    ranking = " & ".join(f"({_lexemes(t)})" for t in query.terms if not t.cjk and not t.negated)
    stems = [s for i, t in enumerate(query.terms)
             if not t.cjk and not t.negated and (s := _stemmed(t, f"r{i}")) is not None]
    documents = _DOCUMENTS.alias("ranked_documents")
    rank: ColumnElement[Any] = func.ts_rank(documents.c.document, func.to_tsquery(
        literal_column("'inboxlog_search'::regconfig"), bindparam("ranking", ranking)), 1)
    if stems:
        either: ColumnElement[Any] = stems[0]
        for more in stems[1:]:
            either = either.op("||", return_type=TSQUERY)(more)
        rank = rank + func.coalesce(func.ts_rank(documents.c.stems, either, 1), 0)
    return (select(found.c.id, cast(-rank, Float).label("score"))
            .select_from(found.join(documents, documents.c.email_id == found.c.id))
            .where(true()))
