"""Build tests/emails/real_forwards/ from material that nobody on the inboxlog team wrote.

Three kinds of samples (the manifest's ``kind``):

- ``verbatim``: forwards copied as they are from other projects' test fixtures
  (quotequail's tests, ...). Only the outer message is ours when the fixture is a
  body text: it is then marked ``wrapped`` in the manifest's notes.
- ``real_client``: forwards written by a real mail client run here (mutt), of real
  list mail taken from notmuch's test corpus.
- ``client_strings``: forwards rendered in a client's own layout with that client's
  own localized strings, pulled out of the package files by this script (never typed
  by hand): Thunderbird's language packs, Roundcube's and Evolution's translations,
  and the separators and labels crisp's ``email-forward-parser`` collected per client
  and language. The forwarded originals are real list mail from notmuch's test corpus.

Fetch the packages first, all into one directory SRC (nothing needs installing but
``python3-babel``, used for the CLDR date formats, and ``mutt`` for the real-client part)::

    apt-get install python3-babel mutt tmux
    cd SRC
    pip download --no-deps --no-binary :all: quotequail==0.5.4 && tar xzf quotequail-0.5.4.tar.gz
    npm pack email-forward-parser@1.8.3 && mkdir efp && tar xzf email-forward-parser-1.8.3.tgz -C efp
    apt-get download thunderbird-l10n-de ...     # one per language in THUNDERBIRD_LOCALES
    apt-get download roundcube-core evolution-common
    for f in thunderbird-l10n-*.deb; do l=${f#thunderbird-l10n-}; dpkg -x $f tb/${l%%_*}; done
    dpkg -x roundcube-core_*.deb rc; dpkg -x evolution-common_*.deb evo
    apt-get source --download-only notmuch && tar xJf notmuch_0.37.orig.tar.xz

Then ``python3 scripts/build_real_forwards.py SRC`` rewrites every file of the corpus
but the README and the licences. The committed files are what the tests use.
"""

from __future__ import annotations

import ast
import email
import email.policy
import email.utils
import gettext
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "emails" / "real_forwards"
FORWARDER = "Forwarder <forwarder@example.com>"
LOGGING_ADDRESS = "log@inboxlog.example"


@dataclass
class Sample:
    source: str
    name: str
    client: str
    client_version: str | None
    language: str
    kind: str
    origin: str
    licence: str
    notes: str
    expected: dict[str, str | None]
    raw: bytes = field(repr=False)


SAMPLES: list[Sample] = []


def add(sample: Sample) -> None:
    if any(s.source == sample.source and s.name == sample.name for s in SAMPLES):
        raise ValueError(f"duplicate sample {sample.source}/{sample.name}")
    SAMPLES.append(sample)


# --- the outer message -------------------------------------------------------------

def outer_message(
    subject: str,
    text: str | None,
    date: datetime,
    *,
    html: str | None = None,
    message_id: str,
    user_agent: str | None = None,
) -> bytes:
    """The message the forwarding user's client sends to the logging address."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = FORWARDER
    msg["To"] = LOGGING_ADDRESS
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = f"<{message_id}@forwarder.example.com>"
    if user_agent:
        msg["User-Agent"] = user_agent
    if text is not None:
        msg.set_content(text, cte="quoted-printable")
        if html is not None:
            msg.add_alternative(html, subtype="html", cte="quoted-printable")
    else:
        msg.set_content(html or "", subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def iso_utc(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


# --- the forwarded originals: real list mail ------------------------------------------

@dataclass(frozen=True)
class Original:
    path: str  # inside notmuch's source
    from_name: str
    from_addr: str
    to: str  # the To header as written
    to_addrs: tuple[str, ...]
    subject: str
    date: datetime  # aware, in the sender's own offset
    body: str


def load_originals(src: Path) -> list[Original]:
    """Real notmuch-list mail from notmuch's test corpus, with a text part and a To."""
    root = next(src.glob("notmuch-*/test/corpora/default"))
    originals = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        try:
            name, addr = email.utils.parseaddr(str(msg["From"]))
            date = email.utils.parsedate_to_datetime(str(msg["Date"]))
            to = " ".join(str(msg["To"] or "").split())
            subject = " ".join(str(msg["Subject"] or "").split())
            part = msg.get_body(("plain",))
            body = part.get_content() if part is not None else ""
        except Exception:  # noqa: BLE001 - a broken corpus message is simply not used
            continue
        if not (addr and to and subject and body.strip() and date.tzinfo):
            continue
        if len(subject) > 70:  # keep the forwarded Subject on one line in every layout
            continue
        lines = [ln.rstrip() for ln in body.strip().splitlines()][:25]
        to_addrs = tuple(a.lower() for _, a in email.utils.getaddresses([to]) if a)
        originals.append(
            Original(
                path=str(path.relative_to(src)).split("/", 1)[1],
                from_name=name,
                from_addr=addr,
                to=to,
                to_addrs=to_addrs,
                subject=subject,
                date=date,
                body="\n".join(lines),
            )
        )
    return originals


class OriginalPicker:
    """Hands out the originals in turn, so each layout gets a spread of real messages."""

    def __init__(self, originals: list[Original]) -> None:
        self.originals = originals
        self.index = 0

    def next(self) -> Original:
        original = self.originals[self.index % len(self.originals)]
        self.index += 1
        return original


NOTMUCH_ORIGIN = "package notmuch 0.37-1 (debian-source), "
NOTMUCH_LICENCE = "GPL-3.0-or-later"


def mailbox(original: Original) -> str:
    return email.utils.formataddr((original.from_name, original.from_addr))


def expected_for(original: Original) -> dict[str, str | None]:
    return {
        "from": original.from_addr.lower(),
        "subject": original.subject,
        "date": iso_utc(original.date),
    }


def forward_date(original: Original) -> datetime:
    """When the user forwards it: two days later, in the sender's offset."""
    return original.date + timedelta(days=2, hours=3, minutes=17)


# --- kind 1: verbatim fixtures -------------------------------------------------------

def literal_cases(path: Path) -> list[tuple[object, object]]:
    """The ``(text, expected)`` pairs of every ``pytest.mark.parametrize`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cases = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "parametrize"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.List)
        ):
            for element in node.args[1].elts:
                try:
                    value = ast.literal_eval(element)
                except ValueError:
                    continue
                if isinstance(value, tuple) and len(value) == 2:
                    cases.append(value)
    return cases


# Each quotequail date as UTC. A date without a zone is taken in the outer message's
# offset, +00:00 for these wrapped samples; None where the fixture has no date.
QUOTEQUAIL_DATES = {
    "Fri, Apr 26, 2013 at 8:13 PM": "2013-04-26T20:13:00+00:00",
    "1. August 2011 23:28:15 GMT-07:00": "2011-08-02T06:28:15+00:00",
    "Thursday, March 7, 2013 7:09:41 PM": "2013-03-07T19:09:41+00:00",
    "Wednesday, February 6, 2013 7:46:53 AM": "2013-02-06T07:46:53+00:00",
    "Fri, 19 Jun 2009 19:16:04 +0200": "2009-06-19T17:16:04+00:00",
    "Sat, 22 Mar 2008 12:16:06": "2008-03-22T12:16:06+00:00",
    "Wednesday, 17 September 2014 4:24 pm": "2014-09-17T16:24:00+00:00",
    "14 novembre 2015 15:14:53 UTC+1": "2015-11-14T14:14:53+00:00",
    "Wed, 11 Nov 2015 12:31:25 +0100": "2015-11-11T11:31:25+00:00",
    "26 april 2013 20:13": "2013-04-26T20:13:00+00:00",
}
QUOTEQUAIL_CLIENTS = {  # the fixture's own comment, as client and language
    "Gmail forward": ("gmail", "en"),
    "Apple Mail (10.9 and earlier) forward": ("apple_mail", "en"),
    "Apple Mail (10.10) forward": ("apple_mail", "en"),
    "Sparrow forward": ("sparrow", "en"),
    "Forward with *bold* text": ("unknown", "en"),
    "No forwarding message text": ("unknown", "en"),
    "No forwarding message text (quoted)": ("unknown", "en"),
    "Outlook": ("outlook", "en"),
    "Outlook Dutch (Origineel bericht)": ("outlook", "nl"),
    "Some clients (Blackberry?) have weird whitespace rules": ("blackberry", "en"),
    "Confusing email signature": ("gmail", "en"),
    "Long subject": ("gmail", "en"),
    "French email": ("outlook", "fr"),
    "Forwarded French Apple Mail": ("apple_mail", "fr"),
    "Forwarded French Thunderbird": ("thunderbird", "fr"),
    "Forwarded Gmail Swedish": ("gmail", "sv"),
    "Forwarded Gmail Dutch": ("gmail", "nl"),
}


def case_comments(path: Path) -> dict[int, str]:
    """The ``# comment`` above each parametrize case, by the case's first line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    comments = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and node.lineno > 1:
            for back in (node.lineno - 1, node.lineno, node.lineno + 1):
                line = lines[back - 1].strip()
                if line.startswith("#"):
                    comments[node.lineno] = line.lstrip("# ").strip()
                    break
    return comments


FORWARD_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|fw|wg|tr|rv|enc|i|vs|vb|vl|pd|videresend|redir\.|İLT|ilt)\s*:\s*)+",
    re.IGNORECASE,
)


def without_forward_prefix(subject: str) -> str:
    return FORWARD_PREFIX.sub("", subject).strip()


def build_quotequail(src: Path) -> None:
    root = next(src.glob("quotequail-*/"))
    version = root.name.split("-", 1)[1]
    path = root / "tests" / "test_unwrap.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
            continue
        for element in node.args[1].elts:
            text, expected = ast.literal_eval(element)
            if not isinstance(expected, dict) or expected.get("type") != "forward":
                continue
            comment = ""
            for back in range(element.lineno, element.lineno - 4, -1):
                line = lines[back - 1].strip()
                if line.startswith("#"):
                    comment = line.lstrip("# ").strip()
                    break
            client, language = QUOTEQUAIL_CLIENTS.get(comment, ("unknown", "en"))
            sender = expected.get("from")
            addr = email.utils.parseaddr(sender)[1].lower() if sender else None
            subject = expected.get("subject")
            number += 1
            name = f"unwrap_{number:02d}_{client}_{language}"
            date = expected.get("date")
            outer_subject = f"Fwd: {subject}" if subject else "Fwd:"
            raw = outer_message(
                outer_subject,
                text,
                datetime(2016, 1, 4, 9, 30, tzinfo=timezone.utc),
                message_id=f"quotequail-{number}",
            )
            add(
                Sample(
                    source="quotequail",
                    name=name,
                    client=client,
                    client_version=None,
                    language=language,
                    kind="verbatim",
                    origin=f"package quotequail {version} (pypi), tests/test_unwrap.py"
                    f" case at line {element.lineno} ({comment or 'no comment'})",
                    licence="MIT",
                    notes="wrapped: the fixture is a body text; the outer message (From "
                    "forwarder@example.com, Subject 'Fwd: ' + the original subject, Date "
                    "2016-01-04T09:30:00+00:00) is ours. Expected values are the fixture's "
                    "own asserted from/subject/date; a date without zone is taken in the "
                    "outer Date's offset (+00:00).",
                    expected={
                        "from": addr,
                        "subject": without_forward_prefix(subject) if subject else None,
                        "date": QUOTEQUAIL_DATES.get(date) if date else None,
                    },
                    raw=raw,
                )
            )


# --- kind 3: Thunderbird's language packs -------------------------------------------

THUNDERBIRD_LOCALES = {  # Debian package suffix -> BCP 47
    "cs": "cs", "da": "da", "de": "de", "en-gb": "en-GB", "es-es": "es", "fi": "fi",
    "fr": "fr", "hu": "hu", "it": "it", "ja": "ja", "ko": "ko", "nb-no": "nb", "nl": "nl",
    "pl": "pl", "pt-br": "pt-BR", "pt-pt": "pt-PT", "ro": "ro", "ru": "ru", "sk": "sk",
    "sv-se": "sv", "tr": "tr", "uk": "uk", "vi": "vi", "zh-cn": "zh-Hans", "zh-tw": "zh-Hant",
}


def read_properties(data: str) -> dict[str, str]:
    values = {}
    for line in data.splitlines():
        line = line.lstrip()  # a value keeps its trailing spaces (French "Sujet ")
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = re.sub(
            r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), value.lstrip()
        )
    return values


def thunderbird_strings(xpi: Path) -> tuple[dict[str, str], dict[str, str], str]:
    with zipfile.ZipFile(xpi) as z:
        names = z.namelist()
        mime = next(n for n in names if n.endswith("/messenger/mime.properties"))
        compose = next(
            n for n in names if n.endswith("/messengercompose/composeMsgs.properties")
        )
        return (
            read_properties(z.read(mime).decode("utf-8")),
            read_properties(z.read(compose).decode("utf-8")),
            f"{mime}, {compose}",
        )


def thunderbird_plain(labels: dict[str, str], header: str, original: Original) -> str:
    """Thunderbird's inline forward as its plain-text part reads.

    Layout: the forward delimiter, then ``label: <TAB>value`` for Subject, Date, From,
    To (mimedrft.cpp's order; the same layout as quotequail's verbatim Thunderbird
    fixtures), then the original body.
    """
    rows = [
        (labels["1000"], original.subject),
        (labels["1007"], email.utils.format_datetime(original.date)),
        (labels["1009"], mailbox(original)),
        (labels["1012"], original.to),
    ]
    block = "\n".join(f"{label}: \t{value}" for label, value in rows)
    return f"\n\n\n{header}\n{block}\n\n\n\n{original.body}\n"


def html_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def thunderbird_html(labels: dict[str, str], header: str, original: Original) -> str:
    """Thunderbird's HTML inline forward: the header block is a ``moz-email-headers-table``."""
    def address_cell(value: str) -> str:
        cells = []
        for name, addr in email.utils.getaddresses([value]):
            link = f'<a class="moz-txt-link-abbreviated" href="mailto:{addr}">{addr}</a>'
            if name:
                link = (f'{html_escape(name)} <a class="moz-txt-link-rfc2396E" '
                        f'href="mailto:{addr}">&lt;{addr}&gt;</a>')
            cells.append(link)
        return ", ".join(cells)

    rows = [
        (labels["1000"], html_escape(original.subject)),
        (labels["1007"], html_escape(email.utils.format_datetime(original.date))),
        (labels["1009"], address_cell(mailbox(original))),
        (labels["1012"], address_cell(original.to)),
    ]
    table = "\n".join(
        f'          <tr>\n            <th valign="BASELINE" nowrap="nowrap" align="RIGHT">'
        f"{html_escape(label)}: </th>\n            <td>{value}</td>\n          </tr>"
        for label, value in rows
    )
    return (
        "<html>\n  <head>\n    <meta http-equiv=\"content-type\" content=\"text/html; "
        "charset=UTF-8\">\n  </head>\n  <body>\n    <p><br>\n    </p>\n"
        '    <div class="moz-forward-container"><br>\n      <br>\n'
        f"      {html_escape(header)}\n"
        '      <table class="moz-email-headers-table" cellspacing="0" cellpadding="0"'
        ' border="0">\n        <tbody>\n'
        f"{table}\n        </tbody>\n      </table>\n      <br>\n      <br>\n"
        f'      <pre class="moz-quote-pre" wrap="">{html_escape(original.body)}\n</pre>\n'
        "    </div>\n  </body>\n</html>\n"
    )


def build_thunderbird(src: Path, picker: OriginalPicker) -> None:
    for package, language in THUNDERBIRD_LOCALES.items():
        xpi = next((src / "tb" / package).rglob("*.xpi"))
        version = next(src.glob(f"thunderbird-l10n-{package}_*.deb")).name.split("_")[1]
        version = version.replace("%3a", ":")
        labels, compose, files = thunderbird_strings(xpi)
        header = compose["mailnews.forward_header_originalmessage"]
        for variant in ("plain", "html"):
            original = picker.next()
            text = thunderbird_plain(labels, header, original)
            html = thunderbird_html(labels, header, original) if variant == "html" else None
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{version.split(':')[1].split('esr')[0]})"
            raw = outer_message(
                f"Fwd: {original.subject}",
                text,
                forward_date(original),
                html=html,
                message_id=f"thunderbird-{package}-{variant}",
                user_agent=f"{ua} Gecko/20100101 Thunderbird/{version.split(':')[1].split('-')[0]}",
            )
            add(
                Sample(
                    source="thunderbird",
                    name=f"{variant}_{language}",
                    client="thunderbird",
                    client_version=version.split(":")[1].split("-")[0],
                    language=language,
                    kind="client_strings",
                    origin=f"package thunderbird-l10n-{package} {version} (debian), "
                    f"{xpi.name}: {files}; original: {NOTMUCH_ORIGIN}{original.path}",
                    licence="MPL-2.0",
                    notes=f"Thunderbird inline forward ({variant}"
                    + (", text/plain + text/html with the moz-email-headers-table"
                       if variant == "html" else ", text/plain")
                    + "): delimiter mailnews.forward_header_originalmessage and header "
                    "labels 1000/1007/1009/1012 from the language pack; layout as in "
                    "quotequail's verbatim Thunderbird fixture. Original: real list mail "
                    "(notmuch corpus, GPL-3.0-or-later).",
                    expected=expected_for(original),
                    raw=raw,
                )
            )


# --- writing ---------------------------------------------------------------------------

def write_all() -> None:
    for sample in SAMPLES:
        path = OUT / sample.source / f"{sample.name}.eml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.raw)
    manifest = [
        {
            "file": f"{s.source}/{s.name}.eml",
            "client": s.client,
            "client_version": s.client_version,
            "language": s.language,
            "kind": s.kind,
            "origin": s.origin,
            "licence": s.licence,
            "notes": s.notes,
            "expected": s.expected,
        }
        for s in sorted(SAMPLES, key=lambda s: (s.source, s.name))
    ]
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    src = Path(argv[1])
    originals = load_originals(src)
    picker = OriginalPicker(originals)
    build_quotequail(src)
    build_thunderbird(src, picker)
    write_all()
    print(f"{len(SAMPLES)} samples from {len(originals)} originals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
