"""Unit tests for core.mail.parsing: real client output, broken mail, and fuzzed bytes."""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.mail.parsing import (
    ADDRESS,
    Address,
    ParsedMessage,
    html_to_text,
    parse_message,
    sanitize_html,
    synthetic_message_id,
)
from tests.support.xss import ACTIVE, XSS_HTML

EMAILS = Path(__file__).resolve().parents[2] / "emails" / "parsing"

# The 1x1 PNG and the minimal PDF that the sample messages carry, base64-encoded.
PNG_SHA256 = "0ee2781448f2298202dee758a43b6bcc6b2baf679bbca03a774a850e25a212a7"
PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n"
    b"trailer << /Root 1 0 R >>\n"
    b"%%EOF\n"
)
PDF_SHA256 = "6350af32579ffbd7b251a6244bf9bd036d303cbc7404ae06d5e02f1b8f5b994f"


def raw(name: str) -> bytes:
    return (EMAILS / name).read_bytes()


def load(name: str) -> ParsedMessage:
    return parse_message(raw(name))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- messages as real clients write them ---------------------------------------------


def test_gmail_reply_headers() -> None:
    """A Gmail reply yields its ids, addresses, subject and a UTC date."""
    msg = load("gmail_related_pdf.eml")
    assert msg.message_id == "CAH3xE5zD2r8kQ7=Lw0+4mP9uXo7Tt1b_Ra2N8yV@mail.gmail.com"
    assert msg.in_reply_to == ("CAK7pQ3x1b=Zs1m+8xk2oW@mail.gmail.com",)
    assert msg.references == (
        "0102018bc7a3e5f1-5d1e@eu-west-1.amazonses.com",
        "CAK7pQ3x1b=Zs1m+8xk2oW@mail.gmail.com",
    )
    assert msg.from_ == Address(email="Jane.Roe@gmail.com", name="Jane Roe")
    assert msg.from_ is not None and msg.from_.key == "jane.roe@gmail.com"
    assert msg.to == (Address(email="sales@acme-logistics.com", name="Sales Team"),)
    assert msg.cc == (
        Address(email="john.doe@example.org", name="Doe, John"),
        Address(email="ops@example.org", name=""),
    )
    assert msg.subject == "Re: Quote for Q3 freight"
    assert msg.date == utc(2023, 11, 14, 8, 12, 33)
    assert msg.thread_index is None
    assert msg.defects == ()


def test_gmail_alternative_bodies() -> None:
    """multipart/alternative inside multipart/related gives both text and html bodies."""
    msg = load("gmail_related_pdf.eml")
    assert msg.text.startswith(
        "Hi team,\n\nthanks for the quote \u2013 the signed PDF is attached.\n"
    )
    assert "On Mon, Nov 13, 2023 at 5:01\u202fPM Sales Team <sales@acme-logistics.com> wrote:" in (
        msg.text
    )
    assert "\r" not in msg.text
    assert msg.html.startswith('<div dir="ltr"><div>Hi team,</div>')
    assert '<img src="cid:ii_lp0x9z2k0"' in msg.html


def test_gmail_inline_image_and_pdf_attachment() -> None:
    """The cid image is an inline Part, the PDF a regular one, both byte-exact."""
    image, pdf = load("gmail_related_pdf.eml").attachments
    assert image.filename == "logo.png"
    assert image.content_type == "image/png"
    assert image.inline is True
    assert image.content_id == "ii_lp0x9z2k0"
    assert sha256(image.content) == PNG_SHA256
    assert pdf.filename == "Quote Q3 signed.pdf"
    assert pdf.content_type == "application/pdf"
    assert pdf.inline is False
    assert pdf.content_id == "f_lp0xa1b21"
    assert pdf.content == PDF
    assert sha256(pdf.content) == PDF_SHA256


def test_outlook_thread_index_and_ids() -> None:
    """Outlook's Thread-Index and its folded Message-ID/References are read."""
    msg = load("outlook_thread_index.eml")
    assert msg.thread_index == "AdoXyH2k9tV0lJqDTUqz3uEr6Xo8BwAAbJ5gAAF3xkA="
    parent = "AM9PR04MB82119A0E1B7C4D2E3F4A5B6C7D8E9@AM9PR04MB8211.eurprd04.prod.outlook.com"
    assert msg.message_id == (
        "AM9PR04MB8211C0F3E4E2B1A9D5D3B7E8E9B1A@AM9PR04MB8211.eurprd04.prod.outlook.com"
    )
    assert msg.in_reply_to == (parent,)
    assert msg.references == (parent,)
    assert msg.header("x-ms-has-attach") == ""
    assert msg.header("Thread-Topic") == "Angebot Bürofläche Köln"


def test_outlook_windows_1252_bodies_and_names() -> None:
    """Windows-1252 quoted-printable bodies and ISO-8859-1 encoded names decode exactly."""
    msg = load("outlook_thread_index.eml")
    assert msg.subject == "AW: Angebot Bürofläche Köln"
    assert msg.from_ == Address(email="H.Mueller@contoso.de", name="Müller, Hans")
    assert msg.cc == (Address(email="b.schroeder@contoso.de", name="Bärbel Schröder"),)
    assert msg.to == (Address(email="sales@acme-logistics.com", name="sales@acme-logistics.com"),)
    assert msg.date == utc(2023, 11, 15, 14, 3, 27)
    expected = "vielen Dank für das Angebot \u2013 wir nehmen die 120 m² für 1.450 € monatlich."
    assert msg.text.startswith(f"Hallo zusammen,\n\n{expected}\n\nMit freundlichen Grüßen\n")
    assert html_to_text(msg.html) == (
        f"Hallo zusammen,\n\n{expected}\n\nMit freundlichen Grüßen\nHans Müller"
    )
    assert msg.attachments == ()
    assert msg.defects == ()


def test_apple_mail_utf8_quoted_printable() -> None:
    """Apple Mail's UTF-8 quoted-printable parts, emoji and encoded subject decode."""
    msg = load("apple_mail.eml")
    assert msg.subject == "Café meeting ☕"
    assert msg.from_ == Address(email="Zoe.Martin@icloud.com", name="Zoë Martin")
    assert msg.message_id == "5F2E8C3A-91D4-4B6E-8A7F-0C3D2E1B9A87@icloud.com"
    assert msg.date == utc(2023, 11, 16, 13, 45, 10)
    assert msg.text == (
        "Hi there,\n\nCould we meet at the café on Friday at 10? 🙂\n\nZoë\n\nSent from my iPhone"
    )
    assert msg.html.endswith("<div>Sent from my iPhone</div></body></html>")
    assert msg.attachments == ()


def test_plain_text_message_addresses() -> None:
    """Sender, multi-address Reply-To, groups in To and an empty group in Cc parse."""
    msg = load("plain_text.eml")
    assert msg.from_ == Address(email="anna@northwind.example", name="Anna Kowalska")
    assert msg.sender == Address(email="mailer@northwind.example", name="Northwind Mailer")
    assert msg.reply_to == (
        Address(email="support@northwind.example", name="Northwind Support"),
        Address(email="billing@northwind.example", name=""),
    )
    assert msg.to == (
        Address(email="peter.novak@acme-logistics.com", name="Peter Novak"),
        Address(email="lisa@acme-logistics.com", name="Lisa"),
        Address(email="tom@acme-logistics.com", name=""),
    )
    assert msg.cc == ()
    assert msg.resent_from == (Address(email="peter.novak@acme-logistics.com", name="Peter Novak"),)


def test_plain_text_message_body() -> None:
    """A plain 8-bit UTF-8 message has CRLF normalised, a folded subject, and no html."""
    data = raw("plain_text.eml")
    assert b"\r\n" in data  # the sample must keep its CRLF line endings
    msg = parse_message(data)
    assert msg.subject == "Delivery schedule for week 47"
    assert msg.text == (
        "Hello Peter,\n\nthe trucks leave Gdańsk on Monday at 06:00; ETA in Łódź is 14:30.\n\n"
        "Regards,\nAnna\n"
    )
    assert msg.html == ""
    assert msg.attachments == ()
    assert msg.defects == ()


def test_headers_in_order_and_lookup() -> None:
    """Every header is kept in order, unfolded and decoded; header() is case-insensitive."""
    msg = load("plain_text.eml")
    names = [name for name, _ in msg.headers]
    assert names[:4] == ["Resent-From", "Resent-To", "Resent-Date", "Resent-Message-ID"]
    assert names.count("Reply-To") == 1
    assert msg.header("reply-to") == (
        "Northwind Support <support@northwind.example>, billing@northwind.example"
    )
    assert msg.header("SUBJECT") == "Delivery schedule for week 47"
    assert msg.header("X-Not-There") is None


# --- broken and hostile messages ------------------------------------------------------


def test_unknown_charset_falls_back_to_utf8() -> None:
    """An unknown charset in body and encoded words is decoded as UTF-8 and noted."""
    msg = load("unknown_charset.eml")
    assert msg.subject == "Grüße aus Zürich"
    assert msg.text == "Grüße aus Zürich \u2013 bis bald!\n"
    assert "Subject: unknown charset 'x-unknown'; decoded as utf-8" in msg.defects
    assert "part 1 (text/plain): unknown charset 'x-unknown'; decoded as utf-8" in msg.defects


def test_undeclared_8bit_latin1() -> None:
    """Latin-1 bytes with no charset at all are guessed right and noted as defects."""
    msg = load("undeclared_8bit_latin1.eml")
    assert msg.subject == "Auftragsbestätigung"
    assert msg.text == (
        "Sehr geehrte Damen und Herren,\n\n"
        "wir bestätigen den Auftrag für die Lieferung nach Köln.\n"
        "Die Gebühr beträgt 250 Euro zuzüglich Mehrwertsteuer.\n\n"
        "Mit freundlichen Grüßen\nJürgen Weiß\n"
    )
    assert any(d.startswith("Subject: undeclared 8-bit bytes") for d in msg.defects)
    assert any(d.startswith("part 1 (text/plain): undeclared 8-bit") for d in msg.defects)


def test_undeclared_8bit_utf8() -> None:
    """UTF-8 in a part declared us-ascii and in raw headers decodes; latin-1 names too."""
    msg = load("undeclared_8bit_utf8.eml")
    assert msg.subject == "Naïve café order — 東京"
    assert msg.from_ == Address(email="jose@alvarez.example", name="José Álvarez")
    assert msg.text == "Two naïve cafés — one in 東京, one in Zürich.\n"
    assert msg.date == utc(2023, 11, 22, 3, 0)
    assert (
        "part 1 (text/plain): undeclared 8-bit bytes (declared 'us-ascii'); decoded as utf-8"
    ) in msg.defects
    # Raw UTF-8 headers are legal (RFC 6532); only the latin-1 From is a defect.
    assert not any(d.startswith("Subject") for d in msg.defects)
    assert any(d.startswith("From: undeclared 8-bit bytes") for d in msg.defects)


def test_truncated_boundary_keeps_what_arrived() -> None:
    """A message cut off inside its last part keeps the body and the partial attachment."""
    msg = load("truncated_boundary.eml")
    assert msg.text == "Your shipment 4711 was delivered at 17:58.\n"
    (pod,) = msg.attachments
    assert pod.filename == "pod-4711.pdf"
    assert pod.content == PDF[:114]  # two complete base64 lines of 57 bytes each
    assert "message: close boundary not found" in msg.defects


def test_missing_from_date_and_message_id() -> None:
    """Missing From, Date and Message-ID give None and defect notes, nothing else."""
    msg = load("missing_headers.eml")
    assert msg.from_ is None
    assert msg.date is None
    assert msg.message_id is None
    assert msg.subject == "quick question"
    assert msg.text == "Do you ship to Iceland?\n"
    assert msg.defects == (
        "missing From header",
        "missing Date header",
        "missing Message-ID header",
    )


def test_encoded_subject_split_inside_a_character() -> None:
    """Adjacent encoded words are joined before decoding, so split UTF-8 survives."""
    msg = load("encoded_words.eml")
    assert msg.subject == "日本語の件名"


def test_encoded_display_names() -> None:
    """RFC 2047 display names decode, in UTF-8, ISO-8859-2 and with quoted commas."""
    msg = load("encoded_words.eml")
    assert msg.from_ == Address(email="toi@vn.example", name="Tôi Nguyễn")
    assert msg.to == (
        Address(email="W.Kolodziej@example.pl", name="Wojciech Kołodziej"),
        Address(email="jane@example.com", name="Doe, Jane"),
    )
    assert msg.to[0].key == "w.kolodziej@example.pl"


def test_invalid_encoded_words() -> None:
    """Undecodable encoded words stay literal, unknown charsets fall back; addresses survive."""
    msg = load("encoded_words.eml")
    assert [a.email for a in msg.cc] == ["broken@example.com", "unknown@example.com"]
    assert msg.cc[1].name == "Unknown Charset"
    assert msg.header("X-Broken-Words") == "=?utf-8?b?!!!?= and =?utf-8?q?unterminated"
    assert "X-Broken-Words: invalid encoded word '=?utf-8?b?!!!?=' kept as is" in msg.defects
    assert "Cc: unknown charset 'nope-charset'; decoded as utf-8" in msg.defects


def test_filenames_rfc2231_rfc2047_and_generated() -> None:
    """RFC 2231 continuations and RFC 2047 names decode; paths are cut; nameless get one."""
    msg = load("rfc2231_filename.eml")
    assert msg.text == "Anbei die Unterlagen."
    names = [p.filename for p in msg.attachments]
    assert names == [
        "Übersicht Größen und Maße.pdf",
        "Präsentation.pdf",
        "notes.txt",
        "attachment-4.pdf",
    ]
    assert all(p.content == PDF for p in msg.attachments if p.content_type == "application/pdf")
    notes = msg.attachments[2]
    assert notes.content_type == "text/plain"
    assert notes.content == b"line one\nline two"


def test_bare_lf_line_endings() -> None:
    """A message with bare LF (and a stray CRLF) parses; text has only LF."""
    data = raw("bare_lf.eml")
    assert b"\r\n" in data and data.count(b"\n") > 2 * data.count(b"\r\n")
    msg = parse_message(data)
    assert msg.subject == "Nightly report"
    assert msg.date == utc(2023, 11, 26, 3, 0)  # "-0000" means UTC with no zone known
    assert msg.text == "Build #812 passed.\nArtifacts: 3 files."
    (report,) = msg.attachments
    assert (report.filename, report.content_type) == ("report.csv", "text/csv")
    assert report.content == b"job,status\nbuild,passed\n"


def test_nul_bytes_are_stripped_from_text() -> None:
    """NULs vanish from subject, names, body and filename but stay in attachment bytes."""
    msg = load("nul_bytes.eml")
    assert msg.subject == "Invoice 42"
    assert msg.from_ == Address(email="null@example.com", name="Null Sender")
    assert msg.text == "Amount due: 42 EUR"
    (blob,) = msg.attachments
    assert blob.filename == "invoice.bin"
    assert blob.content == b"\x00\x01\x02\x00"
    assert all("\x00" not in value for _, value in msg.headers)


def test_two_hundred_nested_multiparts() -> None:
    """200 levels of multipart nesting still yield the innermost body and the attachment."""
    msg = load("nested_200.eml")
    assert msg.text == "deep inside"
    (pdf,) = msg.attachments
    assert pdf.filename == "level-100.pdf"
    assert sha256(pdf.content) == PDF_SHA256
    assert msg.defects == ()


def test_nesting_beyond_parser_limits_keeps_headers() -> None:
    """Nesting that breaks the stdlib parser falls back to headers plus the raw body as text."""
    body = b"Content-Type: text/plain\n\nbottom\n"
    for level in range(3000):
        body = (
            b'Content-Type: multipart/mixed; boundary="d%d"\n\n--d%d\n' % (level, level)
            + body
            + b"\n--d%d--\n" % level
        )
    msg = parse_message(b"From: a@example.com\nSubject: deep\n" + body)
    assert msg.subject == "deep"
    assert msg.from_ == Address(email="a@example.com", name="")
    assert "bottom" in msg.text
    assert any(d.startswith("MIME structure could not be parsed") for d in msg.defects)


def test_forwarded_message_is_one_attachment() -> None:
    """A message/rfc822 part is attached whole, named after its subject, not flattened."""
    msg = load("forwarded_message.eml")
    assert msg.text == "FYI, see the attached message."
    (eml,) = msg.attachments
    assert eml.filename == "Original question \u2013 pallets.eml"
    assert eml.content_type == "message/rfc822"
    inner = parse_message(eml.content)
    assert inner.message_id == "orig-1@example.net"
    assert inner.text == "How many pallets fit in one truck?"
    assert [p.content for p in inner.attachments] == [PDF]


def test_html_only_message_gets_text_from_html() -> None:
    """With only an html body, text is derived from it without scripts or styles."""
    msg = load("html_only.eml")
    assert msg.text == (
        "Black Friday\nSave 30 % on all pallets & crates.\nOnly today!\n"
        "Item Price\nPallet €9\nFast\nCheap\nUnsubscribe here"
    )
    assert msg.text == html_to_text(msg.html)
    assert "<script>" in msg.html  # html is returned raw, sanitizing is separate
    assert msg.attachments == ()


def test_multipart_without_boundary_is_read_as_text() -> None:
    """A multipart that declares no boundary becomes the text body, with defects noted."""
    msg = load("missing_boundary.eml")
    assert msg.text == "This body has no boundary at all.\n"
    assert msg.attachments == ()
    assert "message: no boundary in multipart" in msg.defects


def test_bogus_transfer_encodings() -> None:
    """Bad quoted-printable, bad base64 and unknown encodings decode as far as possible."""
    msg = load("bogus_transfer_encoding.eml")
    assert msg.text == "Price: 5 € =ZZ not an escape and a soft break"
    data, weird = msg.attachments
    assert data.content == b"Hello, world"
    assert weird.content == b"plain bytes"
    assert "part 2 (application/octet-stream): invalid base64 characters" in msg.defects
    assert (
        "part 3 (application/octet-stream): unknown transfer encoding 'x-rot13'; content kept as is"
    ) in msg.defects


def test_generated_names_and_inline_detection() -> None:
    """Nameless parts get image-N/attachment-N names; inline follows cid use or disposition."""
    msg = parse_message(
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nLogo: [logo]\n"
        b'--b\nContent-Type: text/html\n\n<p>Logo: <img src="cid:Logo%401"></p>\n'
        b"--b\nContent-Type: image/png\nContent-ID: <logo@1>\n\npng\n"
        b"--b\nContent-Type: application/pdf\nContent-ID: <unused@1>\n\npdf\n"
        b"--b\nContent-Type: image/gif\nContent-Disposition: inline\n\ngif\n"
        b"--b\nContent-Type: text/plain\n\nsecond text part\n"
        b"--b--\n"
    )
    assert msg.text == "Logo: [logo]"
    assert msg.html == '<p>Logo: <img src="cid:Logo%401"></p>'
    assert [(p.filename, p.inline, p.content_id) for p in msg.attachments] == [
        ("image-1.png", True, "logo@1"),
        ("attachment-2.pdf", False, "unused@1"),
        ("image-3.gif", True, None),
        ("attachment-4.txt", False, None),
    ]


def test_related_image_with_content_id_is_inline() -> None:
    """An image with a Content-ID inside multipart/related is inline even if unreferenced."""
    msg = parse_message(
        b"From: a@example.com\nContent-Type: multipart/related; boundary=r\n\n"
        b"--r\nContent-Type: text/html\n\n<p>no reference</p>\n"
        b"--r\nContent-Type: image/jpeg\nContent-ID: <bg@1>\n\njpeg\n"
        b"--r--\n"
    )
    (image,) = msg.attachments
    assert (image.filename, image.inline, image.content_id) == ("image-1.jpg", True, "bg@1")
    assert msg.text == "no reference"


def test_text_only_message_has_no_html() -> None:
    """A single text/plain message without MIME headers has text and empty html."""
    msg = parse_message(b"From: a@example.com\r\nSubject: hi\r\n\r\nline 1\r\nline 2\r\n")
    assert msg.text == "line 1\nline 2\n"
    assert msg.html == ""


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 50, b"\xff\xfe\xfd", b"\r\n\r\n", b":", b"From:\n\n", b"--\n--\n"],
)
def test_degenerate_inputs(data: bytes) -> None:
    """Empty and garbage input returns an empty-ish message instead of raising."""
    msg = parse_message(data)
    assert msg.message_id is None
    assert msg.from_ is None
    assert "\x00" not in msg.text


# --- identifiers and dates -------------------------------------------------------------


def test_bare_message_id_accepted() -> None:
    """A Message-ID without brackets is accepted when it has '@' and no whitespace."""
    assert (
        parse_message(b"Message-ID: abc.123@host.example\n\n").message_id == "abc.123@host.example"
    )
    assert parse_message(b"Message-ID: abc 123@host\n\n").message_id is None
    assert parse_message(b"Message-ID: <no-at-sign>\n\n").message_id is None
    assert parse_message(b"Message-ID: <a@b> (comment) <c@d>\n\n").message_id == "a@b"


def test_in_reply_to_only_bracketed_ids_with_at() -> None:
    """In-Reply-To keeps only <x@y> tokens: no bare words, no bracketed ids without '@'."""
    msg = parse_message(
        b"In-Reply-To: <one@example.com> bare@example.com <noat> Your message of Monday\n\n"
    )
    assert msg.in_reply_to == ("one@example.com",)


def test_references_deduplicated_and_capped() -> None:
    """References keep first-seen order without duplicates, and only the last 100."""
    ids = " ".join(f"<id{i}@example.com>" for i in range(150))
    msg = parse_message(f"References: <a@x> <b@x>\n <a@x> {ids}\nMessage-ID: <m@x>\n\n".encode())
    assert len(msg.references) == 100
    assert msg.references[0] == "id50@example.com"
    assert msg.references[-1] == "id149@example.com"
    short = parse_message(b"References: <a@x> <b@x>\n <a@x> junk <c@x>\n\n")
    assert short.references == ("a@x", "b@x", "c@x")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Tue, 14 Nov 2023 09:12:33 +0100", utc(2023, 11, 14, 8, 12, 33)),
        ("14 Nov 2023 09:12 EST", utc(2023, 11, 14, 14, 12)),
        ("Tue, 14 Nov 2023 09:12:33 -0000", utc(2023, 11, 14, 9, 12, 33)),
        ("Tue, 14 Nov 2023 23:30:00 -0800", utc(2023, 11, 15, 7, 30)),
        ("yesterday", None),
        ("Tue, 14 Nov 99999 09:12:33 +0100", None),
        ("Tue, 14 Nov 2023 25:99:99 +9999", None),
    ],
)
def test_dates_in_utc(header: str, expected: datetime | None) -> None:
    """Dates become aware UTC datetimes; unparseable ones become None with a defect."""
    msg = parse_message(f"Date: {header}\n\n".encode())
    assert msg.date == expected
    if expected is None:
        assert f"Date: unparseable value {header!r}" in msg.defects
    else:
        assert msg.date is not None and msg.date.utcoffset() is not None


def test_synthetic_message_id_is_stable() -> None:
    """The synthetic id is equal for two copies (even CRLF vs LF) and changes with the body."""
    lf = raw("missing_headers.eml")
    crlf = lf.replace(b"\n", b"\r\n")
    first = synthetic_message_id(parse_message(lf))
    assert first == synthetic_message_id(parse_message(crlf))
    assert first.endswith("@synthetic.inboxlog")
    assert len(first.split("@")[0]) == 32
    other = synthetic_message_id(parse_message(lf.replace(b"Iceland", b"Norway")))
    assert other != first


def test_synthetic_message_id_ignores_recipient_order() -> None:
    """Recipient order and To/Cc case do not change the synthetic id."""
    one = parse_message(b"From: a@x.com\nTo: B@y.com, c@z.com\nSubject: s\n\nbody\n")
    two = parse_message(b"From: A@X.com\nTo: c@z.com\nCc: b@Y.com\nSubject: s\n\nbody\n")
    assert synthetic_message_id(one) == synthetic_message_id(two)


# --- html ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\ntwo"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<div>x</div>\n\n   <div>y</div>", "x\ny"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<style>p{}</style><script>if (a<b) x()</script>visible", "visible"),
        ("Fish &amp; chips &lt;3 &#8364;5 &eacute;", "Fish & chips <3 €5 é"),
        ("a<br><br><br><br><br>b", "a\n\nb"),
        ("<p>broken <b>markup <i>never closed", "broken markup never closed"),
        ("<pre>  keep\n  lines</pre>", "keep\nlines"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    """html_to_text strips tags, breaks lines at blocks, unescapes and collapses blanks."""
    assert html_to_text(html) == text


def test_sanitize_html_removes_active_content() -> None:
    """Scripts, styles, event handlers, javascript: links, frames and forms are removed."""
    dirty = (
        '<p onclick="steal()">Hi<script>evil()</script><style>p{}</style></p>'
        '<a href="javascript:alert(1)">js</a><iframe src="https://x.example"></iframe>'
        '<form action="https://x.example"><input name="q"><button>Go</button></form>'
        '<img src="x" onerror="evil()"><img src="data:text/html;base64,PHNjcmlwdD4=">'
    )
    clean = sanitize_html(dirty)
    for bad in ("script", "evil", "onclick", "onerror", "javascript", "iframe", "form", "Go"):
        assert bad not in clean
    assert clean.startswith("<p>Hi</p>")


@pytest.mark.parametrize("payload", XSS_HTML)
def test_sanitize_html_leaves_nothing_of_the_xss_corpus_active(payload: str) -> None:
    """Each payload of the corpus the pages' browser tests render comes out inert."""
    assert not ACTIVE.search(sanitize_html(payload)), sanitize_html(payload)


def test_sanitize_html_keeps_email_formatting() -> None:
    """Tables, fonts, safe styles, cid/data/https images and safe links are kept."""
    html = (
        '<table border="0" cellpadding="4"><tr><td style="color: red; position: fixed">'
        '<font color="#333">x</font></td></tr></table>'
        '<img src="cid:logo@1" alt="logo"><img src="data:image/png;base64,iVBO">'
        '<img src="https://cdn.example/a.png">'
        '<a href="https://example.com/a">web</a><a href="mailto:a@example.com">mail</a>'
    )
    clean = sanitize_html(html)
    assert '<table border="0" cellpadding="4">' in clean
    assert '<td style="color:red">' in clean
    assert '<font color="#333">' in clean
    assert '<img src="cid:logo@1" alt="logo">' in clean
    assert '<img src="data:image/png;base64,iVBO">' in clean
    assert '<img src="https://cdn.example/a.png">' in clean
    assert '<a href="https://example.com/a" rel="noopener noreferrer">web</a>' in clean
    assert '<a href="mailto:a@example.com" rel="noopener noreferrer">mail</a>' in clean


def test_sanitize_html_never_raises() -> None:
    """Lone surrogates, NULs and broken markup come back as a string."""
    for html in ("\ud800<b>x", "a\x00b", "<<<>>>", "<a href='", "<!--", "\ufffe" * 10):
        assert isinstance(sanitize_html(html), str)
    assert sanitize_html("a\x00b") == "ab"


# --- robustness -------------------------------------------------------------------------

_FUZZ_TOKENS = (
    b"\r\n", b"\n", b"\x00", b"=?", b"?=", b"=?utf-8?b?", b"=?x-unknown?q?", b"--",
    b"Content-Type: multipart/mixed; boundary=x\n", b"Content-Transfer-Encoding: base64\n",
    b"charset=", b"<", b">", b"@", b"\xff", b"\xc3", b"cid:", b"filename*0*=", b'"', b":",
)  # fmt: skip


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        pos = rng.randrange(len(buf) + 1)
        op = rng.randrange(5)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = rng.choice(_FUZZ_TOKENS)
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 50)]
        elif op == 3:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 30))
        else:
            start = rng.randrange(len(buf) + 1)
            buf[pos:pos] = buf[start : start + rng.randint(1, 200)]
    return bytes(buf)


def test_parse_message_never_raises_on_mutated_input() -> None:
    """2000 deterministic random and mutated messages parse without raising, clean text."""
    rng = random.Random(20231114)
    # The 200-level sample is left out: it costs a lot per parse and adds no new paths.
    seeds = [p.read_bytes() for p in sorted(EMAILS.glob("*.eml")) if "nested" not in p.name]
    assert len(seeds) >= 15
    for i in range(2000):
        random_bytes = i % 3 == 0
        data = (
            rng.randbytes(rng.randint(0, 400)) if random_bytes else _mutate(rng, rng.choice(seeds))
        )
        msg = parse_message(data)
        for text in (msg.subject, msg.text, msg.html, *(v for _, v in msg.headers)):
            assert "\x00" not in text
            text.encode("utf-8")  # no lone surrogates
        assert all(part.filename for part in msg.attachments)
        assert msg.date is None or msg.date.utcoffset() is not None
        synthetic_message_id(msg)
        sanitize_html(msg.html)


def test_address_pattern_finds_whole_addresses_in_free_text() -> None:
    """One pattern reads addresses from forward headers and trace headers alike."""
    assert ADDRESS.findall("Ann <ann.o'neil+x@mail.acme.example>; bob@beta.example") == [
        "ann.o'neil+x@mail.acme.example", "bob@beta.example"]
    assert ADDRESS.findall("for <zoë@exämple.de>;") == ["zoë@exämple.de"]
    # The rest of a run that already gave an address is not an address of its own.
    assert ADDRESS.findall("a@b.example!c@d.example") == ["a@b.example"]
    assert ADDRESS.search("no address here @ all") is None


def test_address_pattern_is_linear_on_a_long_run_without_an_at() -> None:
    """A megabyte of local-part characters is rejected at once, not tried from each one."""
    started = time.perf_counter()
    assert ADDRESS.search("a" * 1_000_000) is None
    assert time.perf_counter() - started < 1.0
