"""Forward extraction over a corpus of real-format forwards from the common clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.mail import _forward_formats as formats
from core.mail.forwards import (
    ForwardedOriginal,
    ForwardResult,
    extract_forward,
    is_forward_subject,
    strip_forward_prefixes,
)
from core.mail.parsing import parse_message

CORPUS = Path(__file__).resolve().parents[2] / "emails" / "forwards"
ANNA = "anna.berg@acme-logistics.example"
TOM = "tom.reed@acme-logistics.example"
# Zone-less client dates ("Mon, Nov 16, 2026 at 9:30 AM") are the forwarder's local
# time: the samples' own Date is +0100, so 09:30 there is 08:30 UTC.
GMAIL_DATE = "2026-11-16T08:30:00+00:00"
CET_DATE = "2026-11-16T08:30:00+00:00"  # 09:30 at UTC+1

# file -> (original sender, original subject, date in UTC ISO or None, original To).
# A sender of None means: looks like a forward, nothing recoverable, a reason is given.
EXPECTED: dict[str, tuple[str | None, str, str | None, list[str]]] = {
    "gmail_en.eml": (
        "jordan.miles@northwind-traders.com",
        "Pallet pricing for Q1 2027",
        GMAIL_DATE,
        [ANNA],
    ),
    "gmail_fr.eml": ("camille.dubois@orange.fr", "Demande de devis transport", GMAIL_DATE, [ANNA]),
    "gmail_de.eml": ("j.schaefer@mueller-bau.de", "Angebot Lagerfläche", GMAIL_DATE, [ANNA]),
    "gmail_es.eml": (
        "lucia.fernandez@telefonica.es",
        "Consulta sobre envíos a Canarias",
        GMAIL_DATE,
        [ANNA],
    ),
    "gmail_pl.eml": ("lukasz.wisniewski@wp.pl", "Zapytanie ofertowe – magazyn", GMAIL_DATE, [ANNA]),
    "gmail_ru.eml": ("d.ivanov@yandex.ru", "Запрос цены на доставку", GMAIL_DATE, [ANNA]),
    "gmail_html_only_it.eml": (
        "giulia.romano@libero.it",
        "Richiesta preventivo spedizioni",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_desktop_en.eml": (
        "jordan.miles@northwind-traders.com",
        "Pallet pricing for Q1 2027",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_desktop_de.eml": (
        "j.schaefer@mueller-bau.de",
        "Angebot Lagerfläche",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_desktop_nl.eml": (
        "sanne.devries@kpn-logistiek.nl",
        "Offerte opslag",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_desktop_pt.eml": ("joao.pereira@uol.com.br", "Cotação de frete", GMAIL_DATE, [ANNA]),
    "outlook_desktop_cs.eml": ("petr.dvorak@seznam.cz", "Poptávka skladování", GMAIL_DATE, [ANNA]),
    "outlook_desktop_hu.eml": ("nagy.eszter@freemail.hu", "Árajánlat kérés", GMAIL_DATE, [ANNA]),
    "outlook_desktop_ru.eml": (
        "o.smirnova@mail.ru",
        "Коммерческое предложение",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_legacy_plain_en.eml": (
        "karen.oneil@fabrikam.com",
        "Renewal of the 2026 contract",
        "2026-11-16T20:30:00+00:00",
        [],
    ),
    "outlook_html_only_it.eml": (
        "giulia.romano@libero.it",
        "Richiesta preventivo",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_web_en.eml": (
        "chris.walker@contoso.com",
        "Warehouse tour next week",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_web_fr.eml": (
        "camille.dubois@orange.fr",
        "Demande de devis transport",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_web_es.eml": (
        "lucia.fernandez@telefonica.es",
        "Consulta sobre envíos",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_web_sv.eml": ("erik.lindqvist@telia.se", "Offertförfrågan lager", GMAIL_DATE, [ANNA]),
    "outlook_web_fi.eml": (
        "mikko.virtanen@elisa.fi",
        "Tarjouspyyntö varastointi",
        GMAIL_DATE,
        [ANNA],
    ),
    "outlook_web_tr.eml": (
        "ayse.yilmaz@turkcell.com.tr",
        "Fiyat teklifi talebi",
        GMAIL_DATE,
        [ANNA],
    ),
    "new_outlook_da.eml": ("mette.jensen@tdc.dk", "Tilbud på lagerplads", GMAIL_DATE, [ANNA]),
    "new_outlook_no_html_only.eml": (
        "ole.hansen@online.no",
        "Forespørsel om lagerplass",
        GMAIL_DATE,
        [ANNA],
    ),
    "apple_mail_en.eml": (
        "jordan.miles@northwind-traders.com",
        "Pallet pricing for Q1 2027",
        "2026-11-16T08:30:15+00:00",
        [ANNA],
    ),
    "apple_mail_fr.eml": (
        "camille.dubois@orange.fr",
        "Demande de devis transport",
        "2026-11-16T08:30:15+00:00",
        [ANNA],
    ),
    "apple_mail_de.eml": ("j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, [ANNA]),
    "thunderbird_en.eml": (
        "chris.walker@contoso.com",
        "Warehouse tour next week",
        CET_DATE,
        [ANNA],
    ),
    "thunderbird_fr_plain.eml": (
        "camille.dubois@orange.fr",
        "Demande de devis transport",
        CET_DATE,
        [ANNA],
    ),
    "thunderbird_de.eml": ("j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, [ANNA]),
    "yahoo_en.eml": ("maria.gonzalez@yahoo.com", "Shipping to Texas", CET_DATE, [ANNA]),
    "rfc822_attachment_en.eml": (
        "renee.fournier@fabrikam.com",
        "RE: Contract draft v3",  # the attached original's own subject: a reply
        CET_DATE,
        [ANNA],
    ),
    "nested_gmail_outlook_en.eml": (
        "hannah.klein@globex.example",
        "Cold storage capacity",
        GMAIL_DATE,
        [TOM],
    ),
    "nested_rfc822_gmail_en.eml": (
        "hannah.klein@globex.example",
        "Cold storage capacity",
        CET_DATE,
        [TOM],
    ),
    # The families of issue 11, one hand-written sample each (regression, not the figure).
    "apple_mail_quoted_de.eml": (
        "j.schaefer@mueller-bau.de", "Angebot Lagerfläche", "2026-11-16T08:30:15+00:00", [ANNA]
    ),
    "sparrow_quoted_en.eml": (
        "jordan.miles@northwind-traders.com", "Pallet pricing for Q1 2027", CET_DATE, [ANNA]
    ),
    "bold_labels_en.eml": (
        "chris.walker@contoso.com", "Warehouse tour next week", CET_DATE, [ANNA]
    ),
    "yahoo_flattened_en.eml": (
        "maria.gonzalez@yahoo.com", "Shipping to Texas: A to Z", CET_DATE, [ANNA]
    ),
    "outlook_2019_attribution_en.eml": (
        "karen.oneil@fabrikam.com", "Contract renewal", CET_DATE, []
    ),
    "outlook_2019_attribution_de.eml": (
        "j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, []
    ),
    "ionos_quoted_en.eml": (
        "hannah.klein@globex.example", "Cold storage capacity", CET_DATE, [ANNA]
    ),
    "mailmate_en.eml": (
        "jordan.miles@northwind-traders.com", "Pallet pricing for Q1 2027", CET_DATE, [ANNA]
    ),
    "missive_en.eml": ("chris.walker@contoso.com", "Warehouse tour next week", CET_DATE, [ANNA]),
    "hubspot_de.eml": ("j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, [ANNA]),
    "new_outlook_table_html.eml": ("mette.jensen@tdc.dk", "Tilbud på lagerplads", CET_DATE, []),
    "new_outlook_name_link_html.eml": (
        "j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, [ANNA]
    ),
    "thunderbird_table_zh_html.eml": ("wang.wei@example.cn", "仓储报价", CET_DATE, [ANNA]),
    "folded_subject_en.eml": (
        "karen.oneil@fabrikam.com",
        "Renewal of the 2026 contract and the revised pallet rates for the northern depots",
        CET_DATE,
        [ANNA],
    ),
    "outlook_ko.eml": ("minsu.kim@example.kr", "창고 견적 요청", CET_DATE, [ANNA]),
    "outlook_zh_hant.eml": ("meiling.chen@example.tw", "倉儲報價", CET_DATE, [ANNA]),
    "outlook_vi.eml": ("an.nguyen@example.vn", "Báo giá kho bãi", CET_DATE, [ANNA]),
    "thunderbird_uk.eml": ("olena.shevchenko@example.ua", "Запит ціни", CET_DATE, [ANNA]),
    "gmail_ro.eml": ("andrei.popescu@example.ro", "Cerere de ofertă", CET_DATE, [ANNA]),
    "outlook_ja.eml": ("hanako.sato@example.jp", "倉庫の見積もり", CET_DATE, [ANNA]),
    # aerc names the sender without an address; the quoted block below is the original's
    # own history, not the original: nothing is recovered.
    # Horde IMP: labels aligned right; an address line under an unknown label ends the
    # Subject rather than continuing it.
    "horde_imp_en.eml": ("j.schaefer@mueller-bau.de", "Angebot Lagerfläche", CET_DATE, []),
    "aerc_name_only_en.eml": (None, "", None, []),
    # aerc's :forward -A: the attached original base64-encoded, its Subject folded by a tab.
    "aerc_attached_base64_en.eml": (
        "hannah.klein@globex.example", "Cold storage capacity for the winter", CET_DATE, [ANNA]
    ),
    "unparseable_no_sender.eml": (None, "", None, []),
    "unparseable_fwd_subject_only.eml": (None, "", None, []),
}


def extract(name: str) -> ForwardResult:
    raw = (CORPUS / name).read_bytes()
    return extract_forward(parse_message(raw), raw)


def matches(name: str, result: ForwardResult) -> bool:
    """Whether ``result`` has the expected sender, subject, date and To for ``name``."""
    sender, subject, date, to = EXPECTED[name]
    original = result.original
    if sender is None:
        return original is None and bool(result.reason)
    return (
        original is not None
        and original.from_ is not None
        and original.from_.email == sender
        and original.subject == subject
        and (original.date.isoformat() if original.date else None) == date
        and [a.email for a in original.to] == to
    )


def recovered(name: str) -> ForwardedOriginal:
    original = extract(name).original
    assert original is not None
    return original


def test_every_sample_has_an_expectation() -> None:
    """The corpus and the EXPECTED table list the same files."""
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    """Each sample yields its expected original sender, subject, date and To."""
    result = extract(name)
    sender, subject, date, to = EXPECTED[name]
    if sender is None:
        assert result.original is None
        assert result.reason
        return
    original = result.original
    assert original is not None, result.reason
    assert original.from_ is not None and original.from_.email == sender
    assert original.subject == subject
    assert (original.date.isoformat() if original.date else None) == date
    assert [a.email for a in original.to] == to


def test_corpus_accuracy_is_complete() -> None:
    """Sender, subject, date and To all match on 100% of the corpus."""
    hits = sum(matches(name, extract(name)) for name in EXPECTED)
    assert hits / len(EXPECTED) == 1.0


def test_formats_are_named() -> None:
    """The matched format is reported per client."""
    assert recovered("gmail_en.eml").format == "gmail"
    assert recovered("outlook_web_fr.eml").format == "outlook"
    assert recovered("apple_mail_de.eml").format == "apple_mail"
    assert recovered("thunderbird_en.eml").format == "thunderbird"
    assert recovered("yahoo_en.eml").format == "yahoo"
    assert recovered("rfc822_attachment_en.eml").format == "rfc822_attachment"


def test_note_and_body_are_split() -> None:
    """The forwarder's note is above the header block, the original body below it."""
    original = recovered("gmail_en.eml")
    assert original.note == "FYI - new lead, please log."
    assert original.text.startswith("Hi Anna,")
    assert "Forwarded message" not in original.text
    assert [(a.email, a.name) for a in original.cc] == [
        ("priya.shah@northwind-traders.com", "Priya Shah")
    ]
    assert original.from_ is not None and original.from_.name == "Jordan Miles"


def test_no_note_is_empty() -> None:
    """A forward without a note has note ""."""
    assert recovered("outlook_web_sv.eml").note == ""


def test_inline_html_body_is_recovered() -> None:
    """Gmail and Outlook html forwards yield the html below the header block."""
    gmail = recovered("gmail_en.eml")
    assert "Could you send us pricing" in gmail.html
    assert "Forwarded message" not in gmail.html
    outlook = recovered("outlook_web_en.eml")
    assert "Can we visit on Tuesday?" in outlook.html
    assert "divRplyFwdMsg" not in outlook.html


def test_inline_forward_keeps_the_forwarding_attachments() -> None:
    """An inline forward carries the original's attachments as its own."""
    original = recovered("outlook_desktop_de.eml")
    assert [p.filename for p in original.attachments] == ["Angebot.pdf"]


def test_attached_original_is_parsed_fully() -> None:
    """A message/rfc822 original gives its ids, cc, body and own attachments."""
    original = recovered("rfc822_attachment_en.eml")
    assert (
        original.message_id == "DB9PR02MB7113A1B2C3D4E5F6@DB9PR02MB7113.eurprd02.prod.outlook.com"
    )
    assert original.in_reply_to == ("draft-v3-1@acme-logistics.example",)
    assert original.from_ is not None and original.from_.name == "Renée Fournier"
    assert [a.email for a in original.cc] == ["purchasing@fabrikam.com"]
    assert [p.filename for p in original.attachments] == ["contract-v3-markup.pdf"]
    assert original.note == "Forwarding as attachment."
    assert "Marked-up draft attached." in original.text


def test_nested_forward_keeps_the_outer_note() -> None:
    """The innermost original is returned with the note of the user who forwarded it."""
    original = recovered("nested_gmail_outlook_en.eml")
    assert original.note == "Looping in the CRM."
    assert original.text.startswith("Hello,")


def test_name_only_sender_is_a_failure_with_reason() -> None:
    """A header block naming the sender without an address gives a reason, no original."""
    result = extract("unparseable_no_sender.eml")
    assert result.original is None
    assert result.reason is not None and "Northwind Purchasing" in result.reason


def test_normal_email_is_not_a_forward() -> None:
    """A plain email gives ForwardResult(None, None)."""
    raw = (
        b"From: Jordan <jordan@northwind.example>\r\nTo: anna@acme.example\r\n"
        b"Subject: Lunch?\r\n\r\nAre you free on Friday?\r\n"
    )
    assert extract_forward(parse_message(raw), raw) == ForwardResult(None, None)


def test_reply_history_is_not_a_forward() -> None:
    """An Outlook reply's quoted From/Sent block is history, not a forward."""
    raw = (
        b"From: Anna <anna@acme.example>\r\nTo: jordan@northwind.example\r\n"
        b"Subject: RE: Pricing\r\n\r\nHere you go.\r\n\r\n"
        b"From: Jordan <jordan@northwind.example>\r\nSent: Monday, November 16, 2026 9:30 AM\r\n"
        b"To: Anna <anna@acme.example>\r\nSubject: Pricing\r\n\r\nPrices please.\r\n"
    )
    assert extract_forward(parse_message(raw), raw) == ForwardResult(None, None)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Subject: Fwd: x\r\n\r\n---------- Forwarded message ---------\r\nFrom:\r\n",
        b"Subject: Fwd: x\r\n\r\n---------- Forwarded message ---------\r\nFrom: a\r\n"
        b"Date: \xff\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\n\r\n--b--",
    ],
)
def test_never_raises(raw: bytes) -> None:
    """Odd or broken input gives a ForwardResult, never an exception."""
    assert isinstance(extract_forward(parse_message(raw), raw), ForwardResult)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Fwd: Pricing", "Pricing"),
        ("FW: RE: Pricing", "RE: Pricing"),
        ("TR: TR: Devis", "Devis"),
        ("WG: AW: Angebot", "AW: Angebot"),
        ("RV: Consulta", "Consulta"),
        ("ENC: Cotação", "Cotação"),
        ("I: Preventivo", "Preventivo"),
        ("Doorst: Offerte", "Offerte"),
        ("PD: Zapytanie", "Zapytanie"),
        ("VS: Tilbud", "Tilbud"),
        ("Továbbítás: Árajánlat", "Árajánlat"),
        ("Пересл: Запрос", "Запрос"),
        ("İLT: Teklif", "Teklif"),
        ("Fwd[2]: Pricing", "Pricing"),
        ("[Fwd: Pricing]", "Pricing"),
        ("Pricing (fwd)", "Pricing"),
        ("Pricing", "Pricing"),
        ("Re: Pricing", "Re: Pricing"),
        ("Fwd: Fwd: Re: Pricing", "Re: Pricing"),
    ],
)
def test_strip_forward_prefixes(subject: str, expected: str) -> None:
    """Leading chains of forward prefixes in many languages go; reply prefixes stay."""
    assert strip_forward_prefixes(subject) == expected


def test_is_forward_subject() -> None:
    """Forward markers count; reply prefixes alone and plain subjects do not."""
    assert is_forward_subject("Fwd: x")
    assert is_forward_subject("RE: FW: x")
    assert is_forward_subject("[Fwd: x]")
    assert not is_forward_subject("Re: x")
    assert not is_forward_subject("Information: x")


def test_zone_less_inline_date_takes_the_forwarders_offset() -> None:
    """A forward header date without a zone is read in the forwarding message's zone."""
    raw = (CORPUS / "gmail_en.eml").read_bytes().replace(
        b"Date: Tue, 17 Nov 2026 10:02:11 +0100", b"Date: Tue, 17 Nov 2026 10:02:11 -0500")
    original = extract_forward(parse_message(raw), raw).original
    assert original is not None and original.date is not None
    assert original.date.isoformat() == "2026-11-16T14:30:00+00:00"


# Hostile bodies, sized so that any quadratic scan would run for minutes: the test
# asserts only the outcome, and a regression shows as a test that does not finish.
_HOSTILE_REPEAT = 5000


@pytest.mark.parametrize(
    "body",
    [
        "---------- Forwarded message ---------\nImportance: x\n" * _HOSTILE_REPEAT,
        "> ---------- Forwarded message ---------\n> From: x\n" * _HOSTILE_REPEAT,
        "From: A <a@b.example>\nDate: x\n" * _HOSTILE_REPEAT,
        "Subject: x\n" + "y\nSubject: z\n" * _HOSTILE_REPEAT,
        "\n".join(["To: x", " " * 200] * _HOSTILE_REPEAT),
        "On 1.1.2026, A <a@b.example> wrote:\n" * _HOSTILE_REPEAT,
        "From: " + " " * 200_000 + "x",
        "-" * 200_000,
        "-- " + "a " * 100_000 + "--",
        "From: a@b.example" + "To:" * 70_000,
        "From: a@b.example " + "Subject: Date: To: Cc: " * 10_000,
        "> " * 100_000 + "From: x",
        "On " + "x" * 200_000 + " <a@b.example> wrote:",
        "From: " + "<mailto:" * 25_000,
        "From: " + "a@" * 100_000,
    ],
    ids=lambda body: body[:24],
)
def test_hostile_bodies_end_and_do_not_raise(body: str) -> None:
    """Long runs of labels, separators, spaces or quote marks give a result."""
    raw = ("From: a@x.example\r\nSubject: Fwd: x\r\nContent-Type: text/plain; charset=utf-8"
           "\r\n\r\n" + body + "\r\n").encode()  # fmt: skip
    assert isinstance(extract_forward(parse_message(raw), raw), ForwardResult)


def test_flattened_block_is_cut_at_its_labels_only() -> None:
    """A one-line Yahoo block splits per field; a label word inside the subject stays."""
    line = ('From: John Doe <j@x.example>To: "b@x.example" <b@x.example>Cc: c@x.example'
            "Sent: Tuesday, November 2, 2021, 09:26:50 AM GMT+1Subject: Meeting A: agenda")
    assert formats.split_run_together(line) == [
        "From: John Doe <j@x.example>", 'To: "b@x.example" <b@x.example>', "Cc: c@x.example",
        "Sent: Tuesday, November 2, 2021, 09:26:50 AM GMT+1", "Subject: Meeting A: agenda",
    ]  # fmt: skip
    assert formats.split_run_together("From: Ann <a@x.example> about To: do") == [
        "From: Ann <a@x.example> about To: do"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tuesday, November 2, 2021, 09:26:50 AM GMT+1", "2021-11-02T08:26:50+00:00"),
        ("2026年11月16日 下午 4:30", "2026-11-16T16:30:00+00:00"),
        ("2026년 11월 16일 월요일 오후 5:30", "2026-11-16T17:30:00+00:00"),
        ("Thứ Hai, 16 tháng 11, 2026 3:30 CH", "2026-11-16T15:30:00+00:00"),
        ("22. lipnja 2010. 20:52:50 GMT+05:30", "2010-06-22T15:22:50+00:00"),
        ("lun., 16 nov. 2026 la 09:30", "2026-11-16T09:30:00+00:00"),
        ("16. listopadu 2026 9:30", "2026-11-16T09:30:00+00:00"),
    ],
)
def test_loose_dates_in_more_languages(value: str, expected: str) -> None:
    """CJK, Korean, Vietnamese, Croatian and CLDR month names are read (UTC default)."""
    parsed = formats.parse_loose_date(value)
    assert parsed is not None and parsed.isoformat() == expected


def test_attribution_counts_only_under_a_leading_forward_prefix() -> None:
    """"On ... wrote:" names the original under FW:, never under RE: FW: (a reply)."""
    body = (b'\r\n\r\nOn 16/11/2026 09:30, "Karen" <karen@fabrikam.example> wrote:\r\n\r\n'
            b"    Terms below.\r\n")  # fmt: skip
    forward = b"From: anna@acme.example\r\nSubject: FW: Terms" + body
    reply = b"From: anna@acme.example\r\nSubject: RE: FW: Terms" + body
    original = extract_forward(parse_message(forward), forward).original
    assert original is not None and original.from_ is not None
    assert (original.from_.email, original.from_.name, original.text) == (
        "karen@fabrikam.example", "Karen", "Terms below.")
    assert extract_forward(parse_message(reply), reply).original is None


def test_name_with_mailto_only_keeps_the_address() -> None:
    """"Name <mailto:addr>" gives the address (it was dropped with the mailto)."""
    address = formats.parse_one_address("Mette Jensen <mailto:mette.jensen@tdc.dk>")
    assert address is not None and (address.email, address.name) == (
        "mette.jensen@tdc.dk", "Mette Jensen")


@pytest.mark.parametrize(
    "html",
    [
        "<a href=mailto:" * 20_000 + "x@y.example>" + "n" * 200_000,
        "<a " + " " * 200_000 + "href='mailto:x@y.example'>Name",
        ("<a href='mailto:x@y.example'>" + "N" * 150) * 5_000,
    ],
    ids=["unclosed links", "spaces in a link", "many links"],
)
def test_hostile_html_ends_and_does_not_raise(html: str) -> None:
    """Links to mailto: addresses in odd html give a result."""
    raw = ("From: a@x.example\r\nSubject: Fwd: x\r\nContent-Type: text/html; charset=utf-8"
           "\r\n\r\n" + html + "\r\n").encode()  # fmt: skip
    assert isinstance(extract_forward(parse_message(raw), raw), ForwardResult)
