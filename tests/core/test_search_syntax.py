"""The search query language and the snippets, as pure functions (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidInput
from core.search.snippets import find, fold, snippet
from core.search.syntax import Field, Query, Term, parse, words


def test_words_and_phrases() -> None:
    """Bare words are prefix terms (from three letters); a quoted phrase is exact."""
    assert parse('discount "agreed to" an').terms == (
        Term(("discount",), prefix=True), Term(("agreed", "to")), Term(("an",)))


def test_an_address_is_its_words_in_order() -> None:
    """anna@example.com is the phrase anna example com, as the indexes split it."""
    assert parse("anna@example.com").terms == (Term(("anna", "example", "com"), prefix=True),)


def test_negation_and_fields() -> None:
    """-word, -"phrase", from:, to:, subject: (with a quoted value) become terms."""
    query = parse('-invoice -"old offer" from:anna to:bob@x.example subject:"price list"')
    assert query.terms == (
        Term(("invoice",), negated=True, prefix=True),
        Term(("old", "offer"), negated=True),
        Term(("anna",), Field.SENDER, prefix=True),
        Term(("bob", "x", "example"), Field.RECIPIENTS, prefix=True),
        Term(("price", "list"), Field.SUBJECT))
    assert [t.words for t in query.negative] == [("invoice",), ("old", "offer")]


def test_operators() -> None:
    """has:attachment, -has:attachment, before: and after: are filters, not words."""
    query = parse("has:attachment after:2026-01-01 before:2026/02/01 offer")
    assert (query.has_attachment, query.after, query.before) == (
        True, date(2026, 1, 1), date(2026, 2, 1))
    assert parse("-has:attachment").has_attachment is False
    assert parse("after:2026-01-01 after:2026-03-01").after == date(2026, 3, 1)
    assert parse("before:2026-05-01 before:2026-03-01").before == date(2026, 3, 1)


def test_unknown_operators_are_words() -> None:
    """foo:bar and a URL are searched as their words; an unclosed quote runs to the end."""
    assert parse("foo:bar").terms == (Term(("foo", "bar"), prefix=True),)
    assert parse("https://shop.example/x").terms[0].words == ("https", "shop", "example", "x")
    assert parse('"agreed to').terms == (Term(("agreed", "to")),)


@pytest.mark.parametrize("text", ["before:yesterday", "after:2026-13-01", "has:pdf",
                                  "x" * 501, " ".join(["w"] * 21)])
def test_refused(text: str) -> None:
    """A query that cannot be run is InvalidInput, with what is wrong."""
    with pytest.raises(InvalidInput):
        parse(text)


def test_cjk_terms() -> None:
    """A term in Han, kana or Hangul is matched as a substring."""
    query = parse("会議 Müller 한국어")
    assert [t.cjk for t in query.terms] == [True, False, True]
    assert query.terms[0].substring == "会議"
    assert words("東京の会議") == ("東京の会議",)


def test_fold_removes_case_and_accents() -> None:
    """Müller, MÜLLER and muller compare equal; é becomes e."""
    assert fold("MÜLLER") == fold("Müller") == "muller"
    assert fold("Café") == "cafe"


def test_find_spans() -> None:
    """Whole words, prefixes of three or more letters, accents ignored, CJK anywhere."""
    text = "Die Rabattvereinbarung mit Frau Müller, 会議の議事録."
    spans = find(text, parse("rabatt muller 議事録 mit"))
    assert [text[s:e] for s, e in spans] == ["Rabattvereinbarung", "mit", "Müller", "議事録"]
    assert find("mitte", parse("mi")) == ()  # two letters: whole words only


def test_find_respects_fields() -> None:
    """A fielded term highlights only in its field; a negated term nowhere."""
    assert find("Anna", parse("from:anna"), Field.SUBJECT) == ()
    assert find("Anna", parse("from:anna"), Field.SENDER) == ((0, 4),)
    assert find("Anna", parse("-anna"), None) == ()


def test_snippet_centres_on_the_words() -> None:
    """The snippet is a window around the matches, on one line, with their offsets."""
    body = ("Lorem ipsum dolor sit amet. " * 20 + "We agreed to the\ndiscount of ten percent. "
            + "Consectetur adipiscing elit. " * 20)
    shown = snippet(parse("discount agreed"), subject="Hi", text=body, sender="", recipients="",
                    filenames="")
    assert shown.field == "text"
    assert shown.text.startswith("…") and shown.text.endswith("…")
    assert len(shown.text) <= 202
    assert [shown.text[s:e] for s, e in shown.highlights] == ["agreed", "discount"]
    assert "\n" not in shown.text


def test_snippet_from_another_field() -> None:
    """Matched only in a file name: the snippet shows the file names."""
    shown = snippet(Query((Term(("angebot",), prefix=True),)), subject="Hi", text="see file",
                    sender="Rita", recipients="", filenames="Angebot_2026.pdf")
    assert shown.field == "attachments"
    assert [shown.text[s:e] for s, e in shown.highlights] == ["Angebot"]


def test_snippet_without_a_match_is_the_start_of_the_body() -> None:
    """A match only the database saw (a filter-only search) shows the body's start."""
    shown = snippet(parse("has:attachment"), subject="Hi", text="Hello  there\nfriend",
                    sender="", recipients="", filenames="")
    assert (shown.field, shown.text, shown.highlights) == ("text", "Hello there friend", ())
