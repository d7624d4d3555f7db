"""The parse policy that remembers parsed header values gives every sample and corpus
message exactly what ``email.policy.default`` gives (core.mail._mime.PARSE_POLICY)."""

from __future__ import annotations

import email.policy
from pathlib import Path

import pytest

from core.mail import _large_parts, _mime, parsing

SAMPLES = sorted((Path(__file__).parents[2] / "emails").rglob("*.eml"))


def _parse_all(policy: email.policy.EmailPolicy, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> list[parsing.ParsedMessage]:
    monkeypatch.setattr(_mime, "PARSE_POLICY", policy)
    monkeypatch.setattr(_large_parts, "PARSE_POLICY", policy)
    # A small spool threshold: the large-part cutter's own parse is compared too.
    return [parsing.parse_message(path.read_bytes(), spool_dir=tmp_path,
                                  spool_threshold=2048) for path in SAMPLES]


def _comparable(parsed: parsing.ParsedMessage) -> object:
    # A spooled body is a file of its own each time: compare what it holds.
    parts = tuple((p.filename, p.content_type, p.size, p.sha256, p.inline, p.content_id)
                  for p in parsed.attachments)
    return (parsed.__class__(**{**parsed.__dict__, "attachments": ()}), parts)


def test_every_sample_parses_the_same_as_with_the_default_policy(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert len(SAMPLES) > 100
    expected = [_comparable(p) for p in _parse_all(email.policy.default, monkeypatch,
                                                    tmp_path)]
    remembering = _mime._RememberingPolicy()
    # Twice: the second pass reads every header from what the first remembered.
    for _ in range(2):
        found = [_comparable(p) for p in _parse_all(remembering, monkeypatch, tmp_path)]
        mismatched = [str(path) for path, a, b in zip(SAMPLES, expected, found, strict=True)
                      if a != b]
        assert not mismatched, mismatched[:5]
    assert _mime._PARSED_HEADERS  # it did remember
