"""The search box's query language, parsed into a ``Query`` (pure: no database).

::

    discount agreed        both words (each also as the start of a longer word)
    "agreed to the"        the words in this order
    -invoice  -"old offer" without the word, without the phrase
    from:anna              the sender's name or address (from:anna@example.com)
    to:bob                 a recipient's (To or Cc) name or address
    subject:offer          in the subject (subject:"price list")
    has:attachment         with a file attached (-has:attachment: without)
    after:2026-01-31       sent on that day (UTC) or later
    before:2026-02-01      sent before that day (UTC)

Words are runs of letters and digits, as the indexes split them: ``anna@example.com``
is the three words ``anna example com`` in this order. Matching ignores case and
accents (``muller`` finds ``Müller``). A word of three or more characters also finds
the words it begins (``rabatt`` finds ``Rabattvereinbarung``); a quoted phrase matches
its words exactly. Words in Chinese, Japanese or Korean script match anywhere in the
text, as those scripts have no spaces between words. Unknown operators (``foo:bar``)
are searched as words.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from core.errors import InvalidInput

MAX_QUERY_LENGTH = 500
MAX_TERMS = 20
# A word shorter than this matches only itself: "a*" would expand to most of the index.
PREFIX_MIN_LENGTH = 3

WORD = re.compile(r"[^\W_]+")
# Han, kana and Hangul: scripts written without spaces between words (the same ranges
# as migration 0012's triggers and generated column).
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff]")
_ITEM = re.compile(
    r'(?P<neg>-)?(?:(?P<field>[A-Za-z]+):)?(?:"(?P<phrase>[^"]*)"?|(?P<bare>[^\s"]+))')


class Field(enum.StrEnum):
    """Where a term must match; a term without one matches any searched text."""

    SUBJECT = "subject"
    SENDER = "from"
    RECIPIENTS = "to"


@dataclass(frozen=True)
class Term:
    """Words that must (or, ``negated``, must not) appear together, in this order.

    ``prefix``: the last word also matches the longer words it begins. ``cjk``: the words
    are CJK text, matched as a substring of the text rather than as indexed words.
    """

    words: tuple[str, ...]
    field: Field | None = None
    negated: bool = False
    prefix: bool = False

    @property
    def cjk(self) -> bool:
        return any(_CJK.search(word) for word in self.words)

    @property
    def substring(self) -> str:
        """The text a CJK term looks for."""
        return " ".join(self.words)


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()
    has_attachment: bool | None = None
    after: date | None = None  # sent on this day or later
    before: date | None = None  # sent before this day

    @property
    def positive(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.negated)

    @property
    def negative(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.negated)


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as the indexes split them (letters and digits)."""
    return tuple(WORD.findall(unicodedata.normalize("NFC", text)))


def _date(operator: str, value: str) -> date:
    try:
        return date.fromisoformat(value.replace("/", "-"))
    except ValueError:
        raise InvalidInput(f"{operator}: takes a date, as {operator}:2026-01-31") from None


def parse(text: str) -> Query:
    """The ``Query`` a search box's text asks for; InvalidInput when it cannot be run
    (too long, too many terms, a date that is not one, an unknown ``has:``)."""
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    terms: list[Term] = []
    has_attachment: bool | None = None
    after: date | None = None
    before: date | None = None
    for item in _ITEM.finditer(unicodedata.normalize("NFC", text)):
        negated = item["neg"] is not None
        name = (item["field"] or "").lower()
        value = item["phrase"] if item["phrase"] is not None else item["bare"] or ""
        quoted = item["phrase"] is not None
        if name == "has":
            if value.lower() not in ("attachment", "attachments"):
                raise InvalidInput("has: takes only has:attachment")
            has_attachment = not negated
            continue
        if name in ("before", "after"):
            day = _date(name, value)
            if name == "after":
                after = day if after is None else max(after, day)
            else:
                before = day if before is None else min(before, day)
            continue
        field = {"from": Field.SENDER, "to": Field.RECIPIENTS,
                 "subject": Field.SUBJECT}.get(name)
        if name and field is None:
            value = f"{item['field']}:{value}"  # not an operator: its words are searched
        found = words(value)
        if found:
            terms.append(Term(found, field, negated,
                              prefix=not quoted and len(found[-1]) >= PREFIX_MIN_LENGTH))
    if len(terms) > MAX_TERMS:
        raise InvalidInput(f"the query has more than {MAX_TERMS} terms")
    return Query(tuple(terms), has_attachment, after, before)
