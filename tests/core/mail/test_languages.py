"""An email's language: its Content-Language header, else CLD2's reliable answer."""

from __future__ import annotations

import time

import pytest

from core.mail.languages import SAMPLE_CHARS, content_language, detect, language_of

GERMAN = ("Anbei die Rechnungen für März und April. Bitte überweisen Sie den Betrag bis "
          "Freitag, wie in unserem Rahmenvertrag vereinbart.")
ENGLISH = ("Please find attached the invoices for March and April; payment is due on "
           "Friday, as agreed in our framework contract.")


@pytest.mark.parametrize(("value", "language"), [
    ("de-DE", "de"), ("en", "en"), ("EN-us", "en"), ("fr-CA, en", "fr"), (" pt-BR ", "pt"),
    ("iw", "he"), ("gsw", "gsw"),
    ("und", None), ("mul", None), ("zxx", None), ("x-klingon", None), ("i-default", None),
    ("", None), ("1234", None), ("english", None), ("d", None),
])
def test_content_language_is_the_primary_subtag_of_its_first_tag(
        value: str, language: str | None) -> None:
    """The header's first tag names the language; a tag that names none is no answer."""
    assert content_language([("Subject", "x"), ("Content-Language", value)]) == language


def test_content_language_reads_only_the_first_header() -> None:
    """A second Content-Language header does not override the first."""
    headers = [("content-language", "de"), ("Content-Language", "en")]
    assert content_language(headers) == "de"
    assert content_language([("Subject", "x")]) is None


@pytest.mark.parametrize(("text", "language"), [
    (GERMAN, "de"), (ENGLISH, "en"),
    ("Veuillez trouver ci-joint les factures de mars et d'avril; le paiement est dû vendredi.",
     "fr"),
    ("Adjunto las facturas de marzo y abril; el pago vence el viernes, como acordamos.", "es"),
    ("見積書をご確認ください。明日の会議について資料を送ります。よろしくお願いします。", "ja"),
])
def test_detect_finds_the_language_of_a_sentence(text: str, language: str) -> None:
    """A sentence or two is enough for a reliable answer."""
    assert detect(text) == language


@pytest.mark.parametrize("text", ["", "ok", "Thanks!", "Danke!", "12 345 678", "x" * 5000,
                                  "\x00\x01 abc " * 20])
def test_detect_gives_no_language_for_short_or_odd_text(text: str) -> None:
    """Too short, not words, or control characters (CLD2 refuses them): unknown."""
    assert detect(text) is None


def test_detect_reads_past_control_characters() -> None:
    """Control characters (a broken sender's) are spaces to CLD2, wherever they are."""
    broken = "".join(f"{word}\x00" if i % 3 else f"{word}\x1b\x7f"
                     for i, word in enumerate(GERMAN.split(" ")))
    assert detect(broken) == "de"
    assert detect("\x0b\x0c" + ENGLISH + "\x01") == "en"


def test_detect_reads_text_with_lone_surrogates() -> None:
    """A lone surrogate (a broken charset's decoding) is replaced, not an error."""
    assert detect("\ud800 " + GERMAN) == "de"


def test_language_of_prefers_the_header() -> None:
    """Content-Language wins over the text; without it the text is detected."""
    assert language_of([("Content-Language", "fr")], GERMAN) == "fr"
    assert language_of([("Content-Language", "und")], GERMAN) == "de"
    assert language_of([], ENGLISH) == "en"
    assert language_of([], "ok") is None


def test_detect_reads_a_bounded_sample() -> None:
    """A long text costs what its first SAMPLE_CHARS characters cost (it is sampled)."""
    huge = GERMAN * 20_000
    started = time.perf_counter()
    assert detect(huge) == "de"
    assert time.perf_counter() - started < 0.5
    assert len(GERMAN) * 20_000 > 100 * SAMPLE_CHARS
