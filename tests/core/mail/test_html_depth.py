"""HTML nested past ``html_depth.MAX_DEPTH`` loses its deeper tags before anything
parses it (nh3's parser costs the square of the depth); every real sample under
tests/emails prepares exactly as without the bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.mail import html_depth
from core.mail.parsing import parse_message, sanitize_html
from core.preparation import Prepared, _prepare_sync

SAMPLES = sorted((Path(__file__).parents[2] / "emails").rglob("*.eml"))
LIMIT = html_depth.MAX_DEPTH


def _nested(depth: int, tag: str = "div") -> str:
    return f"<{tag}>" * depth + "deep" + f"</{tag}>" * depth


def _html_mail(html: str) -> bytes:
    return ("From: a@x.example\r\nTo: b@y.example\r\nSubject: nest\r\n"
            "Message-ID: <nest@x.example>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + html).encode()


@pytest.mark.parametrize(("html", "expected"), [
    ("", 0), ("text", 0), ("<br>", 0), ("<p>a", 1), ("<b><i>x</i></b><u>y</u>", 2),
    ("<div><img src=x><br/><hr></div>", 1), ("</div></div><p>", 1),
    (_nested(LIMIT), LIMIT), ("<DIV class='a>b'><Div>", 2),
])
def test_depth_counts_open_elements(html: str, expected: int) -> None:
    assert html_depth.depth(html) == expected


def test_html_at_the_limit_is_left_as_is() -> None:
    html = _nested(LIMIT) + "<p>" * 10
    assert html_depth.flatten(_nested(LIMIT)) == (_nested(LIMIT), False)
    assert html_depth.flatten(html, limit=LIMIT + 10) == (html, False)


def test_tags_past_the_limit_are_dropped_and_their_text_kept() -> None:
    html = "<b>" + _nested(5, "i") + "<br>tail</b>"
    flat, dropped = html_depth.flatten(html, limit=3)
    assert dropped
    assert flat == "<b><i><i>deep</i></i><br>tail</b>"
    assert html_depth.depth(flat) == 3


def test_a_deep_run_after_a_shallow_one_keeps_the_shallow_one() -> None:
    html = "<table><tr><td>kept</td></tr></table>" + _nested(10)
    flat, dropped = html_depth.flatten(html, limit=4)
    assert dropped and flat.startswith("<table><tr><td>kept</td></tr></table><div>")
    assert flat.count("<div>") == 4 and flat.count("</div>") == 4


def test_two_hundred_thousand_nested_divs_prepare_in_seconds() -> None:
    start = time.monotonic()
    prepared = _prepare_sync(_html_mail(_nested(200_000)), Path("/tmp"))
    elapsed = time.monotonic() - start  # over 3 minutes before the bound; ~1 s here
    assert elapsed < 30
    parsed = prepared.message.parsed
    assert any(f"nested deeper than {LIMIT}" in note for note in parsed.defects)
    assert html_depth.depth(parsed.html) == LIMIT
    assert "deep" in prepared.message.display.html and "deep" in parsed.text
    # sanitize_html bounds what it is given too, whoever calls it
    assert sanitize_html(_nested(20_000, "span")).count("<span>") == LIMIT


def _prepared_html(path: Path) -> tuple[object, ...]:
    prepared: Prepared = _prepare_sync(path.read_bytes(), Path("/tmp"))
    candidates = [prepared.message, *([prepared.original] if prepared.original else [])]
    return tuple((c.parsed.html, c.parsed.text, c.parsed.defects, c.display)
                 for c in candidates)


def test_every_sample_prepares_as_without_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    with_html = [path for path in SAMPLES if b"text/html" in path.read_bytes().lower()]
    assert len(SAMPLES) > 900 and len(with_html) > 50
    assert max(html_depth.depth(parse_message(p.read_bytes()).html) for p in with_html) < 64
    found = [_prepared_html(path) for path in with_html]
    monkeypatch.setattr(html_depth, "flatten", lambda html, limit=LIMIT: (html, False))
    expected = [_prepared_html(path) for path in with_html]
    mismatched = [str(p) for p, a, b in zip(with_html, expected, found, strict=True) if a != b]
    assert not mismatched, mismatched[:5]
