"""Unit tests of core.mail._mime, the defensive MIME decoding under parse_message: each
helper gives a best-effort value and a defect note, and never raises."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.errors import CloseBoundaryNotFoundDefect
from email.message import EmailMessage, Message

import pytest

from core.mail import _mime


def test_clean_text_makes_any_string_storable_as_utf8() -> None:
    """NULs go (PostgreSQL refuses them), lone surrogates become U+FFFD."""
    cleaned = _mime.clean_text("a\x00b\ud800c")
    assert cleaned == "ab\ufffdc"
    cleaned.encode("utf-8")


@pytest.mark.parametrize(("data", "charset", "text", "notes"), [
    ("café".encode("iso-8859-1"), "iso-8859-1", "café", []),
    ("数据".encode("gb18030"), "gbk", "数据", []),  # a label senders use for GB 18030
    (b"plain", None, "plain", []),
    (b"caf\xe9", None, "café", ["body: undeclared 8-bit bytes; decoded as cp1252"]),
    (b"caf\xe9", "us-ascii", "café",
     ["body: undeclared 8-bit bytes (declared 'us-ascii'); decoded as cp1252"]),
    (b"caf\xe9", "x-unknown", "café", ["body: unknown charset 'x-unknown'; decoded as cp1252"]),
    (b"\xff\xfe!", "utf-8", "ÿþ!", ["body: bytes are not valid 'utf-8'; decoded as cp1252"]),
    # Codecs that are no charset: the bytes are never run through them.
    (b"\\x41", "unicode-escape", "\\x41",
     ["body: unknown charset 'unicode-escape'; decoded as utf-8"]),
    (b"QUJD", "base64", "QUJD", ["body: unknown charset 'base64'; decoded as utf-8"]),
])
def test_decode_bytes_falls_back_and_says_so(data: bytes, charset: str | None, text: str,
                                             notes: list[str]) -> None:
    """The declared charset when it works; else UTF-8, a guess, cp1252, with a note."""
    assert _mime.decode_bytes(data, charset, "body") == (text, notes)


def test_header_text_recovers_raw_8bit_headers() -> None:
    """Undeclared 8-bit header bytes (surrogate-escaped by the parser) become text."""
    assert _mime.header_text("caf\udcc3\udca9", "subject") == ("café", [])
    assert _mime.header_text("caf\udce9", "subject") == (
        "café", ["subject: undeclared 8-bit bytes; decoded as cp1252"])
    assert _mime.header_text("plain", "subject") == ("plain", [])


def test_unfold_joins_folded_lines() -> None:
    """Folding CRLF or LF before white space goes, and so do stray line breaks."""
    assert _mime.unfold("a long\r\n subject\n\tfolded\rtwice") == "a long subject\tfoldedtwice"


def _word(data: bytes, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(data).decode()}?="


def test_encoded_words_split_inside_a_character_are_joined_first() -> None:
    """Mailers split a multi-byte character across words; white space between goes."""
    e_acute = "é".encode()
    value = f"{_word(e_acute[:1], 'UTF-8')} {_word(e_acute[1:])}t{_word('é'.encode())}"
    assert _mime.decode_words(value, "subject") == ("ét" + "é", [])


@pytest.mark.parametrize(("value", "text"), [
    ("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
    ("=?utf-8?b?w6k?=", "é"),  # the padding senders drop
    ("=?utf-8*fr?q?caf=C3=A9?=", "café"),  # an RFC 2231 language tag
    ("no words here", "no words here"),
    ("=?iso-8859-1?q?caf=E9?= au lait", "café au lait"),
])
def test_decode_words(value: str, text: str) -> None:
    """RFC 2047 words in Q and B encodings decode; text around them stays."""
    assert _mime.decode_words(value, "subject") == (text, [])


def test_an_invalid_encoded_word_is_kept_as_written() -> None:
    """A word that is not base64 stays literal, with a note; the rest decodes."""
    text, notes = _mime.decode_words("a =?utf-8?b?!!!?= =?utf-8?q?b?=", "subject")
    assert text == "a =?utf-8?b?!!!?= b"
    assert notes == ["subject: invalid encoded word '=?utf-8?b?!!!?=' kept as is"]


def test_decode_header_value_does_all_three_steps() -> None:
    """8-bit bytes, folding and encoded words in one value; the result is stripped."""
    raw = " caf\udcc3\udca9\r\n =?utf-8?q?cr=C3=A8me?= "
    assert _mime.decode_header_value(raw, "subject") == ("café crème", [])


def test_parse_addresses_keeps_the_local_part_and_lowercases_the_domain() -> None:
    """Unusable entries are reported and dropped; encoded display names decode."""
    pairs, notes = _mime.parse_addresses(
        ["Ann <Ann.Lee@ACME.Example>, bogus", "=?utf-8?q?=22Bob_B=22?= <bob@b.example>"], "to")
    assert pairs == [("Ann", "Ann.Lee@acme.example"), ("Bob B", "bob@b.example")]
    assert notes == ["to: unusable address 'bogus' ignored"]


def test_extract_ids() -> None:
    """Bracketed ids in order, without brackets; a bare one only when allowed."""
    assert _mime.extract_ids("<a@b.example> junk < c@d.example >") == [
        "a@b.example", "c@d.example"]
    assert _mime.extract_ids("a@b.example") == []
    assert _mime.extract_ids("a@b.example", allow_bare=True) == ["a@b.example"]
    assert _mime.extract_ids("a b@c", allow_bare=True) == []


@pytest.mark.parametrize(("raw", "expected"), [
    ("Tue, 17 Nov 2026 10:02:11 +0100", datetime(2026, 11, 17, 9, 2, 11, tzinfo=UTC)),
    ("Tue, 17 Nov 2026 10:02:11 -0000", datetime(2026, 11, 17, 10, 2, 11, tzinfo=UTC)),
    ("17 Nov 2026 10:02 GMT", datetime(2026, 11, 17, 10, 2, tzinfo=UTC)),
    ("yesterday", None),
    ("", None),
    ("Tue, 17 Nov 99999 10:02:11 +0100", None),
])
def test_parse_date_is_aware_utc_or_none(raw: str, expected: datetime | None) -> None:
    """RFC 5322 dates in UTC; "-0000" (no zone known) is read as UTC; junk is None."""
    assert _mime.parse_date(raw) == expected


def _nested(depth: int) -> Message:
    leaf = EmailMessage()
    leaf.set_content("deep")
    inner: Message = leaf
    for _ in range(depth):
        outer: Message = EmailMessage()
        outer["Content-Type"] = "multipart/mixed; boundary=b"
        outer.set_payload([inner])
        inner = outer
    return inner


def test_leaves_walks_deep_nesting_without_recursion() -> None:
    """A message nested far past Python's recursion limit still yields its leaf."""
    found = list(_mime.leaves(_nested(1500)))  # the limit is 1000
    assert [leaf.content_type for leaf in found] == ["text/plain"]


def test_leaves_marks_related_parts_embedded_messages_and_broken_multiparts() -> None:
    """Document order; inside multipart/related; message/rfc822; a boundary-less multipart."""
    raw = (
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n"
        b"--rel\r\nContent-Type: text/html\r\n\r\n<img src=cid:logo>\r\n"
        b"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n\r\nPNG\r\n--rel--\r\n"
        b"--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n"
        b"--outer\r\nContent-Type: multipart/alternative\r\n\r\nno boundary\r\n"
        b"--outer--\r\n"
    )
    leaves = list(_mime.leaves(message_from_bytes(raw, policy=policy.default)))
    assert [(leaf.content_type, leaf.in_related, leaf.is_message, leaf.is_broken_multipart)
            for leaf in leaves] == [
        ("text/html", True, False, False),
        ("image/png", True, False, False),
        ("message/rfc822", False, True, False),
        ("multipart/alternative", False, False, True),
    ]
    assert _mime.content_id(leaves[1].part) == "logo"


def _part(headers: str) -> Message:
    return message_from_bytes(headers.encode() + b"\r\n\r\nbody", policy=policy.default)


def test_an_invalid_content_type_is_text_plain() -> None:
    """RFC 2045's default for a type that does not parse."""
    assert _mime.content_type(_part("Content-Type: image/PNG")) == "image/png"
    assert _mime.content_type(_part("Content-Type: garbage")) == "text/plain"
    assert _mime.content_type(_part("Content-Type: text/pl ain")) == "text/plain"


def test_filenames_lose_their_directories_and_control_characters() -> None:
    """A filename never names a path, and encoded names decode."""
    part = _part('Content-Disposition: attachment; filename="..\\\\..\\\\x/evil\x01.pdf"')
    assert _mime.filename(part, "part 1") == ("evil.pdf", [])
    encoded = _part('Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="')
    assert _mime.filename(encoded, "part 1") == ("résumé.pdf", [])
    assert _mime.filename(_part("Content-Type: text/plain"), "part 1") == (None, [])


def test_generated_filenames_are_stable_on_every_machine() -> None:
    """Python's built-in types table, not the machine's /etc/mime.types."""
    assert _mime.generated_filename("image/png", 1) == "image-1.png"
    assert _mime.generated_filename("image/jpeg", 2) == "image-2.jpg"
    assert _mime.generated_filename("application/pdf", 3) == "attachment-3.pdf"
    assert _mime.generated_filename("application/x-unheard-of", 4) == "attachment-4.bin"


def test_an_unknown_transfer_encoding_is_noted_and_the_content_kept() -> None:
    """The stdlib returns such a body untouched; the note says so."""
    part = _part("Content-Transfer-Encoding: x-mystery")
    assert _mime.transfer_encoding_notes(part, "part 2") == [
        "part 2: unknown transfer encoding 'x-mystery'; content kept as is"]
    assert _mime.payload_bytes(part, "part 2")[0] == b"body"
    assert _mime.transfer_encoding_notes(_part("Content-Transfer-Encoding: BASE64"),
                                         "part 2") == []


def test_payload_bytes_undoes_the_transfer_encoding() -> None:
    """Base64 and quoted-printable bodies come back as their bytes."""
    b64 = message_from_bytes(b"Content-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n",
                             policy=policy.default)
    assert _mime.payload_bytes(b64, "part 1") == (b"caf\xc3\xa9", [])
    qp = message_from_bytes(b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9",
                            policy=policy.default)
    assert _mime.payload_bytes(qp, "part 1") == (b"caf\xc3\xa9", [])


def test_describe_defect_names_the_stdlib_defect_in_words() -> None:
    """The defect class's name, split into lower-case words, after where it was."""
    assert _mime.describe_defect(CloseBoundaryNotFoundDefect(), "part 3") == (
        "part 3: close boundary not found")


def test_cid_references_are_unquoted_and_lowercased() -> None:
    """The Content-IDs an html body points at, as the parts' ids are compared."""
    html = '<img src="cid:Logo%40Acme.example"> <img src=cid:<b@c>> <a href="cid:x">'
    assert _mime.cid_references(html) == {"logo@acme.example", "b@c", "x"}
