"""The cheap per-line tests that spare body lines the forward and quote regexes
(``may_hold_label``, ``may_run_together``, ``may_open_block``, ``may_cut_at``,
``may_be_mobile``) change no
result: every sample under tests/emails prepares exactly as it does with each of them
answering "maybe" for every line, which is the code as it was before them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from core.mail import _forward_blocks, _forward_formats, quotes
from core.mail.forwards import extract_forward
from core.mail.parsing import parse_message
from core.preparation import Display

SAMPLES = sorted((Path(__file__).parents[2] / "emails").rglob("*.eml"))

# Lines that open a block or a cut in the ways the tests above could have missed.
EDGE_BODIES = [
    "Hi\n\u2003---------- Forwarded message ---------\nFrom: A <a@x.example>\n"
    "Date: Mon, 16 Nov 2026 09:30\nSubject: Fwd: q\nTo: b@y.example\n\nbody",
    "Hi\n\x1c\x1d-----Original Message-----\nFrom: A <a@x.example>\nSent: today\n"
    "To: b@y.example\nSubject: q\n\nbody",
    "note\n________________________________\n差出人： A <a@x.example>\n送信日時： 2026/11/16\n"
    "宛先： b@y.example\n件名： q\n\nbody",
    "ok\nពី៖ A <a@x.example>\nកាលបរិច្ឆេទ៖ 2026\nទៅ៖ b@y.example\nប្រធានបទ៖ q\n\nbody",
    "thanks\n\nOn Mon, 16 Nov 2026 at 09:30, A <a@x.example>\nwrote:\n> old",
    "thanks\n\nOn Mon, 16 Nov 2026 at 09:30, A <a@x.example>\nwrote：\n> old",
    "thanks\n-- \nRita\n",
    "thanks\n━━━━ Forwarded message ━━━━\nFrom: A <a@x.example>\nDate: today\nTo: b\n",
    "thanks\nSent from my iPhone\n> old",
    "thanks\n\u017fent from my iPhone\n> old",  # the long s folds to s
    "thanks\nОтправлено с iPhone\n> old",
    "thanks\n\u0130nviato da iPhone\n> old",
    "thanks\n\u212a\u00fcldve az iPhone-omr\u00f3l\n",  # the Kelvin sign folds to k
    "Forwarded message from A <a@x.example> on Mon, 16 Nov 2026:\n\nbody",
    "----- Forwarded Message -----From: A <a@x.example>To: b@y.exampleSent: today"
    "Subject: q\n\nbody",
]


def test_regex_whitespace_is_what_strip_removes() -> None:
    # ``may_open_block`` and ``may_cut_at`` look past str.strip()'s whitespace where
    # the regexes skip ``\s``: the two must be the same characters.
    space = re.compile(r"\s")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert (space.match(char) is not None) == char.isspace(), hex(code)


def test_the_mobile_prefilter_folds_case_as_the_signature_pattern() -> None:
    # Each phrase of the pattern (and each word opening one of its groups) begins with
    # a letter of the prefilter's class, and the class folds case as the letters do.
    body = quotes._MOBILE_SIGNATURE.pattern.split("(?:", 1)[1]
    firsts = {chunk[0] for chunk in body.split("|")}
    alternation = re.compile("|".join(map(re.escape, sorted(firsts))), re.IGNORECASE)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = alternation.match(char) is not None
        assert (quotes._MOBILE_START.match(char) is not None) == expected, hex(code)


def _prepared(raw: bytes) -> object:
    parsed = parse_message(raw)
    forward = extract_forward(parsed, raw)
    original = forward.original
    texts = [parsed.text, *([original.text] if original else [])]
    return (forward, Display.of(parsed), [quotes.reply_text(t) for t in texts],
            [_forward_blocks.find_block(t, parsed.subject, []) for t in texts])


def _edge(body: str) -> object:
    text = body.replace("\n", "\r\n")
    return (quotes.reply_text(body), _forward_blocks.find_block(body, "Fwd: q", []),
            _forward_blocks.find_block(text, "q", []), _forward_formats.split_run_together(
                body.splitlines()[0]))


def _all() -> list[object]:
    return [*(_prepared(path.read_bytes()) for path in SAMPLES), *map(_edge, EDGE_BODIES)]


def test_every_sample_prepares_as_without_the_line_prefilters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(SAMPLES) > 900
    found = _all()
    for module, name in ((_forward_formats, "may_hold_label"),
                         (_forward_formats, "may_run_together"),
                         (_forward_blocks, "may_open_block"), (quotes, "may_cut_at"),
                         (quotes, "may_be_mobile")):
        monkeypatch.setattr(module, name, lambda *_: True)
    expected = _all()
    names = [*map(str, SAMPLES), *EDGE_BODIES]
    mismatched = [name for name, a, b in zip(names, expected, found, strict=True) if a != b]
    assert not mismatched, mismatched[:5]
    # The edge bodies are forwards and cuts: the comparison above saw them found.
    assert all(_forward_blocks.find_block(body, "Fwd: q", []) or quotes.reply_text(body)
               != body for body in EDGE_BODIES)


def test_the_prefilters_pass_every_line_a_regex_takes() -> None:
    lines = [line for body in EDGE_BODIES for line in body.splitlines()]
    for path in SAMPLES:
        text = parse_message(path.read_bytes()).text
        lines += _forward_blocks.lines_of(text)
    for line in lines:
        if _forward_formats.HEADER_LINE.match(line.replace("\xa0", " ")):
            assert _forward_formats.may_hold_label(line), line
        if _forward_formats.DASH_LINE.match(line) or _forward_formats.UNDERSCORE_LINE.match(line):
            assert _forward_blocks.may_open_block(line), line
            assert quotes.may_cut_at(line.strip(), ""), line
