"""Highlighted snippets of a search hit (pure: the same on every backend).

The database says which emails match and how well; this module shows where: it finds
the query's words in an email's fields as the indexes compare them (case and accents
ignored, a word of three or more characters also at the start of a longer one, CJK text
anywhere) and cuts a window of the text around the densest group of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.search.syntax import WORD, Field, Query, Term

Span = tuple[int, int]  # [start, end) in the snippet's text
FieldName = Literal["text", "subject", "from", "to", "attachments"]

SNIPPET_LENGTH = 200


@dataclass(frozen=True)
class Snippet:
    """A piece of one field of the email (``text``, ``subject``, ``from``, ``to`` or
    ``attachments``) and where the query's words are in it."""

    field: FieldName
    text: str
    highlights: tuple[Span, ...]


def fold(text: str) -> str:
    """Case and accents removed, as the indexes compare words (``Müller`` → ``muller``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _wanted(terms: Sequence[Term], field: Field | None) -> tuple[set[str], set[str], list[str]]:
    """Words to find whole, words to find as beginnings, CJK text to find anywhere."""
    exact: set[str] = set()
    starts: set[str] = set()
    cjk: list[str] = []
    for term in terms:
        if term.negated or (term.field is not None and term.field != field):
            continue
        if term.cjk:
            cjk.append(term.substring)
            continue
        for position, word in enumerate(term.words):
            last = position == len(term.words) - 1
            (starts if last and term.prefix else exact).add(fold(word))
    return exact, starts, cjk


def find(text: str, query: Query, field: Field | None = None) -> tuple[Span, ...]:
    """Where ``query``'s words are in ``text`` (a field named ``field``, None for the
    body or attachments, which only unfielded terms search), in order, not overlapping."""
    exact, starts, cjk = _wanted(query.terms, field)
    spans: list[Span] = []
    if exact or starts:
        for match in WORD.finditer(text):
            word = fold(match.group())
            if word in exact or any(word.startswith(s) for s in starts):
                spans.append(match.span())
    for needle in cjk:
        start = text.find(needle)
        while needle and start != -1:
            spans.append((start, start + len(needle)))
            start = text.find(needle, start + len(needle))
    spans.sort()
    merged: list[Span] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span[1]))
        else:
            merged.append(span)
    return tuple(merged)


def _window(text: str, spans: tuple[Span, ...], length: int) -> tuple[int, int]:
    """The ``length`` characters of ``text`` holding the most spans, cut at spaces."""
    if len(text) <= length or not spans:
        return 0, min(len(text), length)
    best_start, best_count = spans[0][0], 0
    for i, (start, _) in enumerate(spans):
        count = sum(1 for s, e in spans[i:] if e <= start + length)
        if count > best_count:
            best_start, best_count = start, count
    # Some context before the first word, the window starting at a word boundary.
    start = max(0, best_start - length // 4)
    if start > 0:
        space = text.find(" ", start, best_start)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + length)
    if end < len(text):
        space = text.rfind(" ", start + length // 2, end)
        end = space if space != -1 else end
    return start, end


def _cut(field: FieldName, text: str, spans: tuple[Span, ...], length: int) -> Snippet:
    start, end = _window(text, spans, length)
    piece = text[start:end]
    # One line: newlines and runs of spaces become single spaces, spans moved with them.
    out: list[str] = []
    offsets: list[int] = []  # offsets[i]: where piece[i] lands in the output
    for char in piece:
        offsets.append(len(out))
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(char)
    offsets.append(len(out))
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    body = "".join(out)
    highlights = tuple(
        (len(prefix) + offsets[s - start], len(prefix) + offsets[e - start])
        for s, e in spans if s >= start and e <= end)
    return Snippet(field, prefix + body + suffix, highlights)


def snippet(query: Query, *, subject: str, text: str, sender: str, recipients: str,
            filenames: str, length: int = SNIPPET_LENGTH) -> Snippet:
    """The piece of the email that best shows why it matched: the body where the query's
    words are in it, else the first other field that holds them, else the body's start."""
    fields: list[tuple[FieldName, str, Field | None]] = [
        ("text", text, None), ("subject", subject, Field.SUBJECT),
        ("from", sender, Field.SENDER), ("to", recipients, Field.RECIPIENTS),
        ("attachments", filenames, None)]
    for name, value, field in fields:
        spans = find(value, query, field)
        if spans:
            return _cut(name, value, spans, length)
    return _cut("text", text, (), length)
