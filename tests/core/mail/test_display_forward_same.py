"""The whole-text prefilters of ``quotes.reply_text`` and ``find_block`` (candidate lines
found by searches over the text, not a test per line) and the html's text worked out
only when the text part holds no forward change no result: ``Display.of`` and
``extract_forward`` give, on every sample under tests/emails, what the code before them
gave (hashes recorded by it, at 64383c9), and what the per-line path gives now."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from core.mail import _forward_blocks, quotes
from core.mail.forwards import extract_forward
from core.mail.parsing import parse_message
from core.preparation import Display, _original
from tests.core.mail.test_line_prefilters import EDGE_BODIES

EMAILS = Path(__file__).parents[2] / "emails"
SAMPLES = sorted(EMAILS.rglob("*.eml"))
RECORDED = json.loads((Path(__file__).parent / "display_forward_hashes.json").read_text())

# Bodies where a candidate line sits at an edge of the text or of another candidate.
MORE_BODIES = [
    "", "\n", ":", "a:", "\nx:", "Sent from my iPhone", "x\n\nSent from my iPhone",
    "> quoted only", "new\n> old", "  \t> old\nnew", "-- ", "a\n-- \nsig", "x\n--",
    "On Mon, 16 Nov 2026, A <a@x.example>\nwrote:", "hi\nOn Mon, 16 Nov 2026 at 9:30\n"
    "A <a@x.example> wrote:\n> old", "From: A <a@x.example>\nSent: today\nTo: b\n",
    "\ufeff---------- Forwarded message ---------\nFrom: A <a@x.example>\nDate: today\n"
    "Subject: q\nTo: b@y.example\n\nbody", "x\r\n_______________\r\nFrom: A <a@x.example>\r\n"
    "Sent: today\r\nTo: b\r\nSubject: q\r\n\r\nbody", "a\rb:\rc", "ok\u2028Sent from my iPhone",
    "\u3000━━━━ Forwarded message ━━━━\nFrom: A <a@x.example>\nDate: today\nTo: b\n",
    "> From: A <a@x.example>\n> Date: today\n> Subject: q\n> To: b\n>\n> body",
]


def _digest(raw: bytes) -> str:
    parsed = parse_message(raw)
    forward = extract_forward(parsed, raw)
    shown = [Display.of(parsed)]
    if forward.original is not None:
        shown.append(_original(forward.original, parsed).display)
    key = repr((forward, shown)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:16]


def test_every_sample_displays_and_forwards_as_recorded_before() -> None:
    assert len(SAMPLES) > 900 and len(RECORDED) == len(SAMPLES)
    changed = [path.relative_to(EMAILS).as_posix() for path in SAMPLES
               if RECORDED[str(path.relative_to(EMAILS))] != _digest(path.read_bytes())]
    assert not changed, changed[:5]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """The sample bodies, the forwarded originals' and the edge bodies."""
    found = [*EDGE_BODIES, *MORE_BODIES]
    for path in SAMPLES:
        parsed = parse_message(path.read_bytes())
        original = extract_forward(parsed, b"").original
        found += [parsed.text, *([original.text] if original else [])]
    return found


def _read(text: str) -> object:
    reasons: list[str] = []
    return (quotes.reply_text(text), _forward_blocks.find_block(text, "Fwd: q", []),
            _forward_blocks.find_block(text, "q", reasons), reasons)


def _all(texts: list[str]) -> list[object]:
    return [_read(text) for text in texts]


def test_the_whole_text_prefilters_find_what_the_line_by_line_path_finds(
        texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    found = _all(texts)
    monkeypatch.setattr(quotes, "_candidate_lines",
                        lambda text: list(range(text.count("\n") + 1)))
    monkeypatch.setattr(_forward_blocks, "may_hold_block", lambda _: True)
    expected = _all(texts)
    mismatched = [t[:80] for t, a, b in zip(texts, expected, found, strict=True) if a != b]
    assert not mismatched, mismatched[:5]
    # The bodies hold cuts and forwards: the comparison saw them found.
    assert sum(quotes.reply_text(body) != body for body in MORE_BODIES) >= 8
    assert sum(_forward_blocks.find_block(body, "Fwd: q", []) is not None
               for body in MORE_BODIES) >= 3


def test_the_candidate_lines_of_any_text_cut_where_every_line_does(texts: list[str]) -> None:
    # reply_text searches for candidates only past 1 KB: here every text, short ones too.
    for text in texts:
        joined = text.replace("\r\n", "\n").replace("\r", "\n")
        lines, candidates = joined.split("\n"), quotes._candidate_lines(joined)
        assert quotes._cut_index(lines, candidates) == quotes._cut_index(lines), text[:80]
        if not candidates:
            assert not any(line.lstrip().startswith(">") for line in lines), text[:80]


def test_a_plain_body_is_a_single_search_away_from_its_answer() -> None:
    # The bench's message: 52 lines of prose, no colon, no rule: nothing to look at.
    text = "The quick brown fox jumps over the lazy dog; figures for Q3 attached below.\n" * 52
    assert quotes._candidate_lines(text) == []
    assert quotes.reply_text(text) is text
    assert not _forward_blocks.may_hold_block(text)
    assert quotes._candidate_lines("a\nb:\nc\n  Sent\n>x") == [0, 1, 3, 4]
