"""Private tables and parsers for :mod:`core.forwards` and :mod:`core.quotes`.

The header labels, separator lines, month names and address shapes that mail
clients write into the body of a forward or a reply, in the common languages.
Everything here is pure and total: unparseable input gives ``None`` or ``[]``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from core import _mime
from core.parsing import Address

# Header labels of forwarded/quoted header blocks (Gmail, Outlook, Apple Mail,
# Thunderbird, Yahoo), lower-cased. One table per field, every language mixed:
# Gmail localizes some labels and leaves others in English, so a block may mix.
FROM_LABELS = frozenset({
    "from", "de", "von", "da", "van", "från", "fra", "lähettäjä", "od", "feladó", "от",
    "kimden", "afzender", "avsändare", "afsender", "avsender", "nadawca", "odesílatel",
    "remetente", "remitente", "mittente", "expéditeur", "absender", "отправитель",
    "gönderen", "sender", "feladó neve",
})  # fmt: skip
DATE_LABELS = frozenset({
    "date", "sent", "envoyé", "envoyé le", "gesendet", "enviado", "enviado el", "enviada em",
    "enviado em", "inviato", "verzonden", "skickat", "sendt", "lähetetty", "wysłano",
    "wysłane", "odesláno", "elküldve", "küldve", "отправлено", "gönderildi", "gönderilme",
    "datum", "fecha", "data", "päivämäärä", "päiväys", "dátum", "дата", "tarih", "dato",
    "sent at",
})  # fmt: skip
TO_LABELS = frozenset({
    "to", "à", "a", "an", "para", "aan", "till", "til", "vastaanottaja", "do", "komu",
    "címzett", "кому", "kime", "pour", "destinataire", "destinatario", "destinatário",
    "empfänger", "mottagare", "modtager", "mottaker", "adresat", "příjemce", "alıcı",
    "получатель", "címzettek",
})  # fmt: skip
CC_LABELS = frozenset({
    "cc", "kopie", "copie", "copie à", "kopia", "kopio", "másolat", "másolatot kap",
    "копия", "bilgi", "kopi", "kopia do", "dw", "cc.",
})  # fmt: skip
SUBJECT_LABELS = frozenset({
    "subject", "objet", "betreff", "asunto", "oggetto", "onderwerp", "assunto", "ämne",
    "emne", "aihe", "temat", "předmět", "tárgy", "тема", "konu", "sujet", "oggetto del messaggio",
})  # fmt: skip
# Labels that may appear inside a header block and are skipped.
OTHER_LABELS = frozenset({
    "reply-to", "antwort an", "répondre à", "responder a", "importance", "wichtigkeit",
    "priorité", "attachments", "anlagen", "pièces jointes", "datos adjuntos", "allegati",
    "bijlagen", "anexos", "bilagor", "vedlegg", "vedhæftede filer", "liitteet", "załączniki",
    "přílohy", "mellékletek", "вложения", "ekler", "bcc", "cco", "ccn", "blindkopie",
})  # fmt: skip
FIELD_BY_LABEL: dict[str, str] = {
    **{label: "other" for label in OTHER_LABELS},
    **{label: "cc" for label in CC_LABELS},
    **{label: "to" for label in TO_LABELS},
    **{label: "date" for label in DATE_LABELS},
    **{label: "subject" for label in SUBJECT_LABELS},
    **{label: "from" for label in FROM_LABELS},
}

# A "Label: value" line; bold markers (*From:*) and a space before the colon
# (French typography, often a no-break space) are allowed.
# Written so that no two unbounded runs compete for the same characters: long
# lines of spaces must not backtrack quadratically.
HEADER_LINE = re.compile(r"^\s*(?:\*+\s*)?([^\W\d_][\w .'-]{0,30}?)[ \t]*(?:\*+[ \t]*)?[:：](.*)$")
_MAX_HEADER_LINE = 2000

# Words that name a forward in separator lines ("Forwarded message", "Begin
# forwarded message:", ...), as stems so inflections match.
FORWARD_WORDS = re.compile(
    r"forward|weiterge|réexpéd|transf[eé]r|reenvi|inoltr|doorgest|encaminh|vidarebef"
    r"|videres|välitet|przekaz|přeposl|továbbít|пересыл|пересл|переадрес|ilet|yönlendir",
    re.IGNORECASE,
)
# Outlook's "-----Original Message-----" and its translations.
ORIGINAL_WORDS = re.compile(
    r"original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original|ursprungligt meddelande"
    r"|opprinnelig melding|oprindelig meddelelse|alkuperäinen viesti|wiadomość oryginalna"
    r"|oryginalna wiadomość|původní zpráva|eredeti üzenet|исходное сообщение"
    r"|özgün ileti|orijinal mesaj|original nachricht",
    re.IGNORECASE,
)
DASH_LINE = re.compile(r"^\s*([-—–]{2,})\s*([^-—–]{3,60}?)\s*([-—–]{2,})\s*$")
UNDERSCORE_LINE = re.compile(r"^\s*_{10,}\s*$")
# Apple Mail's "Begin forwarded message:" in any language: a short line with a
# forward word, ending with a colon.
APPLE_LINE = re.compile(r"^\s*[^:\n]{0,60}[:：]\s*$")

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan janvier janv januar enero ene gennaio gen januari janeiro januári styczeń "
        "stycznia sty leden ledna январь января янв ocak oca tammikuu tammikuuta tammik tammi",
        "february feb février févr fév februar febrero febbraio februari fevereiro fev február "
        "febr luty lutego lut únor února февраль февраля фев февр şubat şub helmikuu "
        "helmikuuta helmik helmi",
        "march mar mars märz mär mrz marzo maart março marts március márc marzec marca "
        "březen března март марта mart maaliskuu maaliskuuta maalisk maalis",
        "april apr avril abril abr aprile apr april április ápr kwiecień kwietnia kwi duben "
        "dubna апрель апреля апр nisan nis huhtikuu huhtikuuta huhtik huhti",
        "may mai mayo maggio mag mei maio maj május máj maja květen května май мая mayıs "
        "toukokuu toukokuuta toukok touko",
        "june jun juin juni junio giugno giu juni junho június jún czerwiec czerwca cze "
        "červen června июнь июня июн haziran haz kesäkuu kesäkuuta kesäk kesä",
        "july jul juillet juil juli julio luglio lug julho július júl lipiec lipca lip "
        "červenec července июль июля июл temmuz tem heinäkuu heinäkuuta heinäk heinä",
        "august aug août agosto ago augustus augusti augusztus sierpień sierpnia sie srpen "
        "srpna август августа авг ağustos ağu elokuu elokuuta elok",
        "september sep sept septembre septiembre setiembre settembre set setembro szeptember "
        "szept wrzesień września wrz září сентябрь сентября сен сент eylül eyl syyskuu "
        "syyskuuta syysk syys",
        "october oct octobre oktober okt octubre ottobre ott outubro out október październik "
        "października paź říjen října октябрь октября окт ekim eki lokakuu lokakuuta lokak loka",
        "november nov novembre noviembre novembro listopad listopada lis listopadu "
        "ноябрь ноября нояб ноя kasım kas marraskuu marraskuuta marrask marras",
        "december dec décembre déc dezember dez diciembre dic dicembre dezembro desember "
        "grudzień grudnia gru prosinec prosince декабрь декабря дек aralık ara joulukuu "
        "joulukuuta jouluk joulu",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _number)

_ZONES = {
    "utc": 0, "gmt": 0, "z": 0, "wet": 0, "west": 1, "bst": 1, "cet": 1, "mez": 1, "cest": 2,
    "mesz": 2, "eet": 2, "eest": 3, "msk": 3, "trt": 3, "est": -5, "edt": -4, "cst": -6,
    "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7, "jst": 9, "aest": 10,
}  # fmt: skip
_TIME = re.compile(r"(?<![\d.:])(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?![\d])")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})\s?([./])\s?(\d{1,2})\s?[./]\s?(\d{4})(?!\d)")
_HU_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{4})\.\s?(\d{1,2})\.\s?(\d{1,2})\.?(?!\d)")
_OFFSET = re.compile(r"(?:(?:gmt|utc)\s*|(?<![\w:]))([+-])(\d{1,2})(?::?(\d{2}))?(?!\d)")
_RFC_SHAPE = re.compile(r"^(?:[a-z]{3},?\s*)?\d{1,2}\s+[a-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}", re.I)
_MERIDIEM = re.compile(r"(?<!\w)([ap])\.?\s?m\.?(?!\w)")
_WORD = re.compile(r"[^\W\d_]+")


def parse_loose_date(value: str, default_offset: timedelta = timedelta(0)) -> datetime | None:
    """Best-effort parse of a date written by a mail client in any language.

    RFC 5322 first, then month names and numeric forms with a time, an AM/PM
    marker and a zone (``GMT+1``, ``+0100``, ``CET``...). Without a zone the time is
    taken at ``default_offset`` (a client writes a forward header in its user's local
    time: the caller passes the forwarding message's offset). Returns an aware UTC
    datetime or ``None``; never raises.
    """
    try:
        return _parse_loose_date(value, default_offset)
    except Exception:  # any odd value: the date is optional
        return None


def _parse_loose_date(value: str, default_offset: timedelta) -> datetime | None:
    value = value.strip()
    if not value or not any(c.isdigit() for c in value):
        return None
    rfc = _mime.parse_date(value) if _RFC_SHAPE.match(value) else None
    if rfc is not None:
        return rfc
    text = value.lower().replace("\xa0", " ").replace("\u202f", " ")
    year = month = day = None
    numeric = _ISO_DATE.search(text) or _HU_NUMERIC_DATE.search(text) or _NUMERIC_DATE.search(text)
    if numeric is not None:
        groups = numeric.groups()
        if numeric.re is _NUMERIC_DATE:
            first, sep, second, year_text = groups
            a, b, year = int(first), int(second), int(year_text)
            us = sep == "/" and (b > 12 or (a <= 12 and _MERIDIEM.search(text) is not None))
            month, day = (a, b) if us else (b, a)
        else:
            year, month, day = (int(g) for g in groups)
        text = text[: numeric.start()] + " " + text[numeric.end() :]
    hour = minute = second_ = 0
    time_match = _TIME.search(text)
    if time_match is not None:
        hour, minute = int(time_match.group(1)), int(time_match.group(2))
        second_ = int(time_match.group(3) or 0)
        rest = text[time_match.end() :]
        text = text[: time_match.start()] + " " + rest
        meridiem = _MERIDIEM.search(rest)
        if meridiem is not None:
            if meridiem.group(1) == "p" and hour < 12:
                hour += 12
            elif meridiem.group(1) == "a" and hour == 12:
                hour = 0
    offset = _zone_offset(text, time_match is not None, default_offset)
    if month is None:
        months = [_MONTHS[w.rstrip(".")] for w in _WORD.findall(text) if w in _MONTHS]
        if not months:
            return None
        month = months[-1]  # a weekday like "mar." (mardi) precedes the real month
        numbers = [int(n) for n in re.findall(r"(?<![\d+-])\d{1,4}(?!\d)", text)]
        years = [n for n in numbers if 1900 <= n <= 2200]
        days = [n for n in numbers if 1 <= n <= 31]
        if not years or not days:
            return None
        year, day = years[0], days[0]
    if year is None or day is None:
        return None
    local = datetime(year, month, day, hour, minute, second_, tzinfo=timezone(offset))
    return local.astimezone(UTC)


def _zone_offset(text: str, has_time: bool, default: timedelta) -> timedelta:
    if not has_time:
        return timedelta(0)
    match = _OFFSET.search(text)
    if match is not None:
        sign = -1 if match.group(1) == "-" else 1
        digits = match.group(2)
        hours, minutes = int(digits), int(match.group(3) or 0)
        if len(digits) <= 2 and hours <= 14 and minutes < 60:
            return sign * timedelta(hours=hours, minutes=minutes)
    for word in _WORD.findall(text):
        if word in _ZONES:
            return timedelta(hours=_ZONES[word])
    return default


_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def parse_address_list(value: str) -> list[Address]:
    """Addresses from a forward header value; entries without an address are dropped.

    Understands ``Name <addr>``, ``"Name" <addr>``, ``Name [mailto:addr]``,
    Outlook's ``addr<mailto:addr>`` and bare addresses, separated by ``;`` or ``,``.
    """
    result: list[Address] = []
    for chunk in _split_addresses(value):
        address = parse_one_address(chunk)
        if address is not None:
            result.append(address)
    return result


def parse_one_address(chunk: str) -> Address | None:
    """One ``Name <addr>``-like value as an :class:`Address`, ``None`` without an address."""
    chunk = re.sub(r"<mailto:[^>]*>", "", chunk, flags=re.IGNORECASE)
    chunk = re.sub(r"\[mailto:([^\]]*)\]", r"<\1>", chunk, flags=re.IGNORECASE)
    found = _EMAIL.search(chunk)
    if found is None:
        return None
    local, _, domain = found.group(0).rpartition("@")
    name = (chunk[: found.start()] + " " + chunk[found.end() :]).replace("<>", " ")
    name = re.sub(r"[<>()\[\]]", " ", name)
    name = " ".join(name.split()).strip(" \"'")
    if name.lower() == f"{local}@{domain}".lower():
        name = ""
    return Address(email=f"{local}@{domain.lower()}", name=name)


def _split_addresses(value: str) -> list[str]:
    if ";" in value:
        return value.split(";")
    chunks: list[str] = []
    current: list[str] = []
    quoted = angled = False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char in "<[":
            angled = True
        elif char in ">]":
            angled = False
        if char == "," and not quoted and not angled:
            chunks.append("".join(current))
            current = []
        else:
            current.append(char)
    chunks.append("".join(current))
    # "Smith, John <john@x>" split into a name-only chunk: glue it back.
    merged: list[str] = []
    for chunk in chunks:
        if merged and not _EMAIL.search(merged[-1]):
            merged[-1] = merged[-1] + "," + chunk
        else:
            merged.append(chunk)
    return merged


def header_label(line: str) -> tuple[str, str] | None:
    """``(field, value)`` when ``line`` is a known forward-header line, else ``None``.

    ``field`` is one of ``from``, ``date``, ``to``, ``cc``, ``subject``, ``other``.
    """
    if len(line) > _MAX_HEADER_LINE:
        return None
    match = HEADER_LINE.match(line.replace("\xa0", " "))
    if match is None:
        return None
    label = " ".join(match.group(1).lower().split())
    field = FIELD_BY_LABEL.get(label)
    value = match.group(2).strip().lstrip("*").strip()  # Outlook's plain-text bold: *From:*
    return None if field is None else (field, value)


def is_header_block_start(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` opens an Outlook-style block: From, then Date/Sent soon."""
    first = header_label(lines[index])
    if first is None or first[0] != "from":
        return False
    fields = set()
    for line in lines[index + 1 : index + 7]:
        label = header_label(line)
        if label is None:
            if line.strip():
                break
            continue
        fields.add(label[0])
    return "date" in fields and bool(fields & {"to", "subject"})
