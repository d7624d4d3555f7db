"""Build tests/emails/real_forwards/ from material that nobody on the inboxlog team wrote.

Three kinds of samples (the manifest's ``kind``):

- ``verbatim``: forwards copied as they are from other projects' test fixtures
  (quotequail's, the Python email-forward-parser's and talon's tests). Only the outer
  message is ours when the fixture is a body text: it is then marked ``wrapped``.
- ``real_client``: forwards written by real clients run here (mutt, neomutt, alpine and
  aerc under tmux; Roundcube's own PHP forward code under php-cli).
- ``client_strings``: forwards rendered in a client's own layout with that client's own
  localized strings, pulled out of the package files by this script (never typed by
  hand): Thunderbird's language packs; Roundcube's, Claws Mail's, SOGo's, KMail's and
  Horde IMP's translated forward headers and templates; and the separators and labels
  crisp's ``email-forward-parser`` collected per client and language.

The forwarded originals of the last two kinds are real list mail (the notmuch list and
LKML) from the test corpus in notmuch's Debian source package.

Fetch the packages first, all into one directory SRC (``python3-babel`` gives the CLDR
date formats; run the script with a Python that has it, e.g. Debian's python3)::

    apt-get install python3-babel
    cd SRC
    pip download --no-deps --no-binary :all: quotequail==0.5.4 && tar xzf quotequail-0.5.4.tar.gz
    npm pack email-forward-parser@1.8.3
    mkdir efp && tar xzf email-forward-parser-1.8.3.tgz -C efp
    pip download --no-deps --no-binary :all: --ignore-requires-python \
        email-forward-parser==0.2.1 talon==1.4.4   # then tar xzf each
    apt-get download thunderbird-l10n-de ...     # one per language in THUNDERBIRD_LOCALES
    apt-get download roundcube-core claws-mail-i18n sogo sogo-common kf5-messagelib-data \
        php-horde-imp
    for f in thunderbird-l10n-*.deb; do l=${f#thunderbird-l10n-}; dpkg -x $f tb/${l%%_*}; done
    dpkg -x roundcube-core_*.deb rc; dpkg -x claws-mail-i18n_*.deb claws
    dpkg -x sogo_*.deb sogo; dpkg -x sogo-common_*.deb sogo; dpkg -x php-horde-imp_*.deb imp
    dpkg -x kf5-messagelib-data_*.deb kmail
    apt-get source --download-only notmuch && tar xJf notmuch_0.37.orig.tar.xz

The clients run here need ``apt-get install mutt neomutt alpine aerc tmux php-cli`` and,
for mutt's translations, the locales of MUTT_LOCALES generated (``/etc/locale.gen``,
``locale-gen``). ``--no-clients`` keeps the committed mutt/neomutt/alpine/aerc samples
instead of running them again (their Date and Message-ID change on every run).

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
from datetime import UTC, datetime, timedelta
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
            msg.set_boundary(f"------------{message_id}")  # a rebuild writes the same bytes
    else:
        msg.set_content(html or "", subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def iso_utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


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
    """Real list mail from notmuch's test corpora (the notmuch list, LKML) with a text part."""
    corpora = next(src.glob("notmuch-*/test/corpora"))
    paths = sorted(p for name in ("default", "lkml") for p in (corpora / name).rglob("*")
                   if p.is_file())
    originals = []
    for path in paths:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        try:
            name, addr = email.utils.parseaddr(str(msg["From"]))
            date = email.utils.parsedate_to_datetime(str(msg["Date"]))
            to = " ".join(str(msg["To"] or "").split())
            subject = " ".join(str(msg["Subject"] or "").split())
            part = msg.get_body(("plain",))
            body = part.get_content() if part is not None else ""
        except Exception:
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
        import random

        self.originals = list(originals)
        random.Random(11).shuffle(self.originals)  # fixed seed: a rebuild picks the same
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
                datetime(2016, 1, 4, 9, 30, tzinfo=UTC),
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


# Verbatim forwards in other test modules: (package dir glob, module, function or
# constant, client, language). Their senders, subjects and dates are the tests' own
# assertions where the test asserts them, else read from the fixture's header block.
FIXTURE_FORWARDS = [
    ("email_forward_parser-0.2.1", "tests/forward_parser_test.py",
     "test_parse_gmail_forwarded_body_with_semicolon_recipients", "gmail", "en"),
    ("email_forward_parser-0.2.1", "tests/forward_parser_test.py",
     "test_parse_gmail_forwarded_body_with_wrapped_from_line", "gmail", "en"),
    ("email_forward_parser-0.2.1", "tests/forward_parser_test.py",
     "test_parse_apple_forwarded_body_without_subject", "apple_mail", "en"),
    ("email_forward_parser-0.2.1", "tests/forward_parser_test.py",
     "test_parse_forwarded_body_keeps_name_only_from_line", "outlook_live", "en"),
    ("email_forward_parser-0.2.1", "tests/forward_parser_test.py",
     "test_parse_forwarded_body_with_wrapped_from_line_without_address", "gmail", "en"),
    ("email_forward_parser-0.2.1", "tests/coverage_edges_test.py",
     "test_parse_body_forwarded_subject_without_separator_uses_from_fallback", "unknown", "en"),
    ("talon-1.4.4", "tests/text_quotations_test.py",
     "test_dont_parse_quotations_for_forwarded_messages", "gmail", "en"),
]
FIXTURE_DATES = {  # as UTC; zone-less dates in the outer Date's offset (+00:00)
    "Mon, 1 Jan 2024 at 12:00 PM": "2024-01-01T12:00:00+00:00",
    "Sun, 13 Sept 2026 at 11:34": "2026-09-13T11:34:00+00:00",
    "Sunday, 13 September 2026 11:34": "2026-09-13T11:34:00+00:00",
    "Tue, Sep 4, 2012 at 1:35 PM": "2012-09-04T13:35:00+00:00",
}
FIXTURE_PACKAGES = {
    "email_forward_parser-0.2.1": ("email-forward-parser 0.2.1 (pypi)", "Apache-2.0"),
    "talon-1.4.4": ("talon 1.4.4 (pypi)", "Apache-2.0"),
}


def fixture_text(tree: ast.Module, function: str) -> str:
    constants = {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)
    }
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            return node.value.value
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "get_forwarded_metadata"
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in constants
        ):
            return constants[node.args[0].id]
    raise ValueError(function)


def asserted(tree: ast.Module, function: str) -> dict[str, str]:
    """The ``from_``/``subject``/``date`` values the test asserts."""
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    found: dict[str, str] = {}
    for node in ast.walk(func):
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute)):
            continue
        right = node.comparators[0]
        if node.left.attr == "from_" and isinstance(right, ast.Call):
            found["from"] = ast.literal_eval(right.args[1])
        elif node.left.attr in ("subject", "date") and isinstance(right, ast.Constant):
            found[node.left.attr] = right.value
    return found


def header_value(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else None


def build_fixture_forwards(src: Path) -> None:
    for number, (package, module, function, client, language) in enumerate(FIXTURE_FORWARDS, 1):
        root = next(src.glob(package))
        tree = ast.parse((root / module).read_text(encoding="utf-8"))
        text = fixture_text(tree, function)
        claims = asserted(tree, function)
        read = []
        sender = claims.get("from")
        if "from" not in claims:
            sender = email.utils.parseaddr(header_value(text, "From") or "")[1]
            read.append("from")
        subject = claims.get("subject")
        if subject is None:
            match = re.search(r"^Subject:\s*(.+?)\n(?=[\w-]+:|\n)", text, re.M | re.S)
            subject = " ".join(match.group(1).split()) if match else None
            read.append("subject")
        date = claims.get("date") or header_value(text, "Date")
        if "date" not in claims:
            read.append("date")
        name_origin, licence = FIXTURE_PACKAGES[package]
        source = package.split("-")[0].replace("_", "-")
        raw = outer_message(
            f"Fwd: {subject}" if subject else "Fwd:", text,
            datetime(2026, 9, 20, 8, 0, tzinfo=UTC),
            message_id=f"{source}-{number}",
        )
        add(
            Sample(
                source=source,
                name=f"{function.removeprefix('test_')[:60]}",
                client=client,
                client_version=None,
                language=language,
                kind="verbatim",
                origin=f"package {name_origin}, {module} {function}",
                licence=licence,
                notes="wrapped: the fixture is a body text; the outer message (From "
                "forwarder@example.com, Date 2026-09-20T08:00:00+00:00) is ours. Expected "
                "values are the test's own assertions"
                + (f", except {', '.join(read)} read from the fixture's header block"
                   if read else "")
                + ". A date without zone is taken in the outer Date's offset (+00:00)."
                + (" The sender has no address: no original can be logged." if not sender
                   else ""),
                expected={
                    "from": sender.lower() if sender else None,
                    "subject": without_forward_prefix(subject) if subject else None,
                    "date": FIXTURE_DATES.get(date) if date else None,
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
                    "labels 1000/1007/1009/1012 from the language pack; plain layout as in "
                    "quotequail's verbatim Thunderbird fixture"
                    + ("; table markup from the strings of the thunderbird package's "
                       "libxul.so (<div class=\"moz-forward-container\">, <TABLE CELLPADDING=0 "
                       "CELLSPACING=0 BORDER=0 class=\"moz-email-headers-table\">, <TR><TH "
                       "VALIGN=BASELINE ALIGN=RIGHT NOWRAP>label: </TH><TD>value</TD></TR>) "
                       "as its compose editor serializes them" if variant == "html" else "")
                    + ". Original: real list mail (notmuch's test corpus).",
                    expected=expected_for(original),
                    raw=raw,
                )
            )


# --- kind 3: the separators and labels crisp's email-forward-parser collected ------------

CRISP_ENTRY = re.compile(r"^\s*/(?P<regex>.+)/(?P<flags>[a-z]*),?\s*//\s*(?P<comment>.+?)\s*$")
CRISP_KEY = re.compile(r"^\s{4}(?P<key>[a-z_]+): \[\s*$")
CRISP_CLIENT = re.compile(r"(?P<client>[A-Za-z0-9 /&.]+?)\s*\((?P<langs>[^)]*)\)")
# crisp's comment names the wrong language for these entries; the text says which it is.
CRISP_LANGUAGE_FIXES = {
    ("separator", "Начало переадресованного сообщения", "ro"): "ru",
    ("original_from", "Feladó", "fr"): "hu",
    ("original_date_lax", "Verzonden", "it"): "nl",
}
CRISP_CLIENTS = {
    "Apple Mail": "apple_mail", "Apple Mail iOS": "apple_mail_ios", "Gmail": "gmail",
    "Outlook Live / 365": "outlook_live", "New Outlook 2019": "new_outlook",
    "Outlook 2019": "outlook_2019", "Thunderbird": "thunderbird", "Yahoo Mail": "yahoo",
    "Yahook Mail": "yahoo", "Missive": "missive", "HubSpot": "hubspot",
    "IONOS by 1 & 1": "ionos", "Mailmate": "mailmate", "MailMate": "mailmate",
}
CRISP_LANGS = {"cz": "cs"}


@dataclass(frozen=True)
class CrispEntry:
    key: str
    regex: str
    text: str  # the literal the regex matches, as the client writes it
    clients: dict[str, tuple[str, ...]]  # client -> languages


def regex_literal(regex: str) -> str:
    """The text a crisp label or separator regex matches, with its own punctuation."""
    text = regex
    text = re.sub(r"^\^", "", text)
    text = text.replace(r"\s?:", ":").replace(r"\s?：", "：")
    text = re.sub(r"\(\.\+\??\)|\(\.\+\)\$|\$$", "", text)
    text = text.replace(">?", "").replace(r"\*?", "")
    text = re.sub(r"\\s[*?]", " ", text)
    text = text.replace("(", "").replace(")", "") if text.startswith("(") else text
    text = text.replace(r"\(", "(").replace(r"\)", ")").replace(r"\/", "/").replace("\\", "")
    return " ".join(text.split())


def load_crisp(path: Path) -> list[CrispEntry]:
    entries = []
    key = None
    for line in path.read_text(encoding="utf-8").splitlines():
        head = CRISP_KEY.match(line)
        if head:
            key = head.group("key")
            continue
        entry = CRISP_ENTRY.match(line)
        if not (entry and key):
            continue
        clients: dict[str, tuple[str, ...]] = {}
        for found in CRISP_CLIENT.finditer(entry.group("comment")):
            name = CRISP_CLIENTS.get(found.group("client").strip().lstrip(", "))
            if name is None:
                continue
            langs = tuple(
                CRISP_LANGS.get(lang.strip(), lang.strip())
                for lang in found.group("langs").split(",")
            )
            clients[name] = clients.get(name, ()) + langs
        text = regex_literal(entry.group("regex")) if key != "separator_with_information" else ""
        fixed = {}
        for client, langs in clients.items():
            fixed[client] = tuple(
                CRISP_LANGUAGE_FIXES.get((key, text.rstrip(":"), lang), lang) for lang in langs
            )
        entries.append(CrispEntry(key, entry.group("regex"), text, fixed))
    return entries


def crisp_table(entries: list[CrispEntry]) -> dict[tuple[str, str, str], str]:
    """(key, client, language) -> the literal, first listed entry first."""
    table: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        for client, langs in entry.clients.items():
            for lang in langs:
                table.setdefault((entry.key, client, lang), entry.text or entry.regex)
    return table


def crisp_languages(table: dict[tuple[str, str, str], str], key: str, client: str) -> list[str]:
    return sorted({lang for (k, c, lang) in table if k == key and c == client})


def label(
    table: dict[tuple[str, str, str], str], key: str, client: str, lang: str
) -> str | None:
    """The label in ``lang`` (or crisp's "all locales"), up to its own colon."""
    for candidate in (lang, "all locales"):
        value = table.get((key, client, candidate))
        if value:
            colon = min(i for i in (value.find(":"), value.find("："), len(value)) if i >= 0)
            return value[:colon] + (value[colon] if colon < len(value) else ":")
    return None


def dashes(separator: str, prefer: str = "min") -> str:
    """``-{5,8} Mensaje reenviado -{5,8}`` as written: the least count, or as asked."""
    def count(match: re.Match[str]) -> str:
        low = int(match.group(2))
        high = int(match.group(3) or low)
        return match.group(1) * (low if prefer == "min" else high)

    return re.sub(r"([-_])\{(\d+)(?:,(\d+))?\}", count, separator)


BABEL_LOCALES = {"no": "nb", "pt": "pt_PT", "pt-br": "pt_BR", "cs": "cs"}
BCP47 = {"pt-br": "pt-BR", "pt": "pt-PT", "no": "nb"}


def babel_locale(lang: str) -> str:
    return BABEL_LOCALES.get(lang, lang)


def cldr(value: datetime, lang: str, date_format: str, time_pattern: str) -> str:
    from babel.dates import format_date, format_time  # python3-babel (CLDR)

    return (
        f"{format_date(value, date_format, locale=babel_locale(lang))} "
        f"{format_time(value, time_pattern, locale=babel_locale(lang))}"
    )


def gmt_offset(value: datetime, style: str) -> str:
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    if style == "hh:mm":
        return f"GMT{sign}{hours:02d}:{rest:02d}"
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


CRISP_ORIGIN = "package email-forward-parser 1.8.3 (npm), dist/parser.js"
CRISP_NOTE = (
    "Strings from crisp's email-forward-parser (the separators and labels it collected "
    "per client and language, read out of dist/parser.js REGEXES by the script, each "
    "entry's comment naming client and languages). "
)


def crisp_sample(
    client: str, lang: str, variant: str, original: Original, subject_prefix: str,
    text: str, notes: str, *, zone_less: bool, html: str | None = None,
) -> None:
    language = BCP47.get(lang, lang)
    raw = outer_message(
        f"{subject_prefix} {original.subject}",
        text,
        forward_date(original),
        html=html,
        message_id=f"{client}-{variant}-{lang}",
    )
    zone = ""
    if zone_less:
        zone = (" The forwarded date has no zone: the expectation assumes the outer "
                f"Date's offset ({forward_date(original).strftime('%z')}), the zone it "
                "is written in.")
    add(
        Sample(
            source=client,
            name=f"{variant}_{language}",
            client=client,
            client_version=None,
            language=language,
            kind="client_strings",
            origin=f"{CRISP_ORIGIN}; original: {NOTMUCH_ORIGIN}{original.path}",
            licence="MIT",
            notes=CRISP_NOTE + notes + zone + " Original: real list mail (notmuch's test "
            "corpus).",
            expected=expected_for(original),
            raw=raw,
        )
    )


def subject_prefix(table: dict[tuple[str, str, str], str], client: str, lang: str) -> str:
    for candidate in (lang, "all locales"):
        value = table.get(("subject", client, candidate))
        if value:
            return value.replace("(.*)", "").rstrip(":").strip() + ":"
    return "Fwd:"


def quoted(lines: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in lines.splitlines())


def build_crisp(src: Path, picker: OriginalPicker) -> None:
    entries = load_crisp(next(src.glob("efp/package/dist/parser.js")))
    table = crisp_table(entries)

    # Apple Mail: "Begin forwarded message:" and the labels in the language; the date as
    # in quotequail's verbatim Apple Mail fixtures ("1. August 2011 23:28:15 GMT-07:00").
    for lang in crisp_languages(table, "separator", "apple_mail"):
        labels = [label(table, k, "apple_mail", lang) for k in
                  ("original_from", "original_date", "original_to", "original_subject")]
        if None in labels:
            continue
        for variant in ("quoted", "plain"):
            original = picker.next()
            date = cldr(original.date, lang, "long", "HH:mm:ss") + " " + gmt_offset(
                original.date, "hh:mm")
            block = "\n".join(f"{lab} {value}" for lab, value in zip(
                labels, (mailbox(original), date, original.to, original.subject), strict=True))
            separator = table[("separator", "apple_mail", lang)]
            if variant == "quoted":  # macOS 10.10 and later quote the whole forward
                text = "\n\n" + quoted(f"{separator}\n\n{block}\n\n{original.body}") + "\n"
                how = "every line quoted with '> ', the separator included"
            else:  # macOS 10.9 and earlier: the separator, then the quoted block
                text = f"\n\n{separator}\n\n" + quoted(f"{block}\n\n{original.body}") + "\n"
                how = "the separator unquoted, the header block and body quoted"
            crisp_sample("apple_mail", lang, variant, original, "Fwd:", text,
                         f"Apple Mail forward ({how}); layout from quotequail's verbatim "
                         "Apple Mail fixtures; date written as CLDR long date (Babel) + "
                         "HH:mm:ss + GMT offset.", zone_less=False)

    # Gmail: "---------- Forwarded message ---------" in every locale (10 and 9 dashes as
    # Gmail writes them; crisp's regex takes 8 to 10), the From label in the language,
    # Date/Subject/To in English (crisp: "Gmail (all locales)"). The date as in
    # quotequail's verbatim Gmail fixtures: "Fri, Apr 26, 2013 at 8:13 PM" in English,
    # CLDR long date + HH:mm elsewhere ("26 april 2013 20:13").
    gmail_langs = ["en", *crisp_languages(table, "original_from", "gmail")]
    for lang in gmail_langs:
        original = picker.next()
        local = original.date
        if lang == "en":
            date = local.strftime("%a, %b ") + f"{local.day}, {local.year} at " + \
                local.strftime("%I:%M %p").lstrip("0")
            from_label = "From:"
        else:
            date = cldr(local, lang, "long", "HH:mm")
            from_label = label(table, "original_from", "gmail", lang)
        block = "\n".join([
            f"{from_label} {mailbox(original)}",
            f"{label(table, 'original_date', 'gmail', lang)} {date}",
            f"{label(table, 'original_subject', 'gmail', lang)} {original.subject}",
            f"{label(table, 'original_to', 'gmail', lang)} {original.to}",
        ])
        separator = "---------- Forwarded message ---------"
        text = f"\n\n{separator}\n{block}\n\n\n{original.body}\n"
        crisp_sample("gmail", lang, "plain", original, "Fwd:", text,
                     "Gmail forward; layout from quotequail's verbatim Gmail fixtures.",
                     zone_less=True)

    # Outlook 2019 (desktop) forwards whose attribution is reply-shaped, under "FW:":
    # crisp's separator_with_information pattern for the language, its named groups
    # filled in; the body below indented by four spaces (crisp's four_spaces rule).
    for entry in entries:
        if entry.key != "separator_with_information":
            continue
        for lang in entry.clients.get("outlook_2019", ()):
            original = picker.next()
            from babel.dates import get_date_format

            pattern = get_date_format("short", locale=babel_locale(lang)).pattern
            pattern = re.sub(r"(?<!y)y{1,2}(?!y)", "yyyy", pattern)
            from babel.dates import format_date, format_time

            date = (f"{format_date(original.date, pattern, locale=babel_locale(lang))} "
                    f"{format_time(original.date, 'HH:mm', locale=babel_locale(lang))}")
            line = attribution(entry.regex, date, original.from_name or original.from_addr,
                               original.from_addr)
            body = "\n".join(f"    {ln}" if ln else "" for ln in original.body.splitlines())
            text = f"\n\n{line}\n\n{body}\n"
            crisp_sample("outlook_2019", lang, "attribution", original, "FW:", text,
                         "Outlook 2019 forward with a reply-shaped attribution line (crisp's "
                         "separator_with_information pattern for the language, its groups "
                         "filled with the original's date, name and address), body indented "
                         "by four spaces; date as the CLDR short date (4-digit year) + "
                         "HH:mm.", zone_less=True)

    # Outlook Live / 365: 32 underscores, then From/Sent/To/Subject (English labels in
    # every locale, crisp says), under the locale's own forward prefix.
    for lang in crisp_languages(table, "subject", "outlook_live"):
        original = picker.next()
        from babel.dates import format_date, format_time

        date = (f"{format_date(original.date, 'full', locale='en')} "
                f"{format_time(original.date, 'h:mm a', locale='en')}")
        block = "\n".join([
            f"{label(table, 'original_from', 'outlook_live', lang)} {mailbox(original)}",
            f"{label(table, 'original_date', 'outlook_live', lang)} {date}",
            f"{label(table, 'original_to', 'outlook_live', lang)} {original.to}",
            f"{label(table, 'original_subject', 'outlook_live', lang)} {original.subject}",
        ])
        separator = dashes(table[("separator", "outlook_live", "all locales")])
        text = f"\n\n{separator}\n{block}\n\n{original.body}\n"
        crisp_sample("outlook_live", lang, "plain", original,
                     subject_prefix(table, "outlook_live", lang), text,
                     "Outlook Live / 365 forward: the 32-underscore separator, English "
                     "labels (crisp: all locales), the locale's own subject prefix; the date "
                     "in English (CLDR full date + h:mm a).", zone_less=True)

    # New Outlook 2019: the header block in the language's labels, no separator line.
    for lang in crisp_languages(table, "original_from", "new_outlook"):
        keys = ("original_from", "original_date", "original_to", "original_subject")
        labels = [label(table, k, "new_outlook", lang) for k in keys]
        if None in labels or ("subject", "new_outlook", lang) not in table:
            continue
        original = picker.next()
        date = cldr(original.date, lang, "full", "HH:mm")
        block = "\n".join(f"{lab} {value}" for lab, value in zip(
            labels, (mailbox(original), date, original.to, original.subject), strict=True))
        text = f"\n\n{block}\n\n{original.body}\n"
        crisp_sample("new_outlook", lang, "plain", original,
                     subject_prefix(table, "new_outlook", lang), text,
                     "New Outlook 2019 forward: From/Date/To/Subject in the language's labels "
                     "with no separator line; date as CLDR full date + HH:mm.",
                     zone_less=True)

    # Yahoo Mail: "----- Forwarded Message -----" and crisp's lax labels; half of them
    # flattened from HTML onto one line, as their text part reads, the rest one per line.
    for lang in crisp_languages(table, "original_from_lax", "yahoo"):
        keys = ("original_from_lax", "original_to_lax", "original_date_lax",
                "original_subject_lax")
        labels = [label(table, k, "yahoo", lang) for k in keys]
        separator = table.get(("separator", "yahoo", lang))
        if None in labels or separator is None:
            continue
        for variant in ("flattened", "lines"):
            original = picker.next()
            from babel.dates import format_date, format_time

            date = (f"{format_date(original.date, 'full', locale=babel_locale(lang))}, "
                    f"{format_time(original.date, 'HH:mm:ss', locale=babel_locale(lang))} "
                    f"{gmt_offset(original.date, 'h')}")
            if lang == "en":
                date = (f"{format_date(original.date, 'full', locale='en')}, "
                        f"{original.date.strftime('%I:%M:%S %p')} "
                        f"{gmt_offset(original.date, 'h')}")
            to = ", ".join(f'"{a}" <{a}>' for a in original.to_addrs)
            fields = [f"{lab} {value}" for lab, value in zip(
                labels, (mailbox(original), to, date, original.subject), strict=True)]
            joiner = "" if variant == "flattened" else "\n"
            text = f"\n\n{dashes(separator)}{joiner}{joiner.join(fields)}\n\n{original.body}\n"
            crisp_sample("yahoo", lang, variant, original, "Fw:", text,
                         "Yahoo Mail forward, " + (
                             "its text part flattened from HTML: separator and labels run "
                             "together on one line" if variant == "flattened" else
                             "one label per line") + "; labels are crisp's Yahoo (lax) ones; "
                         "date as CLDR full date, HH:mm:ss, GMT offset (the issue's sample "
                         "'Tuesday, November 2, 2021, 09:26:50 AM GMT+1').", zone_less=False)

    # HubSpot: its separator and labels per language (crisp), Gmail-like layout.
    for lang in crisp_languages(table, "original_from", "hubspot"):
        keys = ("original_from", "original_date", "original_subject", "original_to")
        labels = [label(table, k, "hubspot", lang) for k in keys]
        separator = table.get(("separator", "hubspot", lang)) or table.get(
            ("separator", "hubspot", "en"))
        if None in labels:
            continue
        original = picker.next()
        date = cldr(original.date, lang, "full", "HH:mm")
        block = "\n".join(f"{lab} {value}" for lab, value in zip(
            labels, (mailbox(original), date, original.subject, original.to), strict=True))
        text = f"\n\n{dashes(separator, 'max')}\n{block}\n\n{original.body}\n"
        crisp_sample("hubspot", lang, "plain", original, "Fwd:", text,
                     "HubSpot forward: the language's separator and labels; date as CLDR "
                     "full date + HH:mm.", zone_less=True)


def attribution(regex: str, date: str, name: str, addr: str) -> str:
    """Crisp's attribution pattern written out: its groups filled, its syntax dropped."""
    text = regex.lstrip("^")
    text = text.replace("(?<date>.+)", "\x00D").replace("(?<from_name>.+)", "\x00N")
    text = text.replace("(?<from_address>.+)", "\x00A")
    text = text.replace("[\\[|<|(]", "<").replace("[\\]|>|)]", ">")
    text = text.replace("[\\[|<]", "<").replace("[\\]|>]", ">")
    text = re.sub(r"\\s[?*]", " ", text)
    text = text.replace("\\(", "(").replace("\\)", ")").replace("\\,", ",").replace('\\"', '"')
    text = text.replace("D.", "D.").replace("\\", "")
    text = text.replace("\x00D", date).replace("\x00N", name).replace("\x00A", addr)
    text = re.sub(r" +", " ", text).strip()
    return re.sub(r" ([:,])", r"\1", text)


# --- kind 3: Roundcube's own forward header over its localizations --------------------

ROUNDCUBE_LOCALES = {  # localization directory -> BCP 47
    "ar_SA": "ar", "bg_BG": "bg", "ca_ES": "ca", "cs_CZ": "cs", "da_DK": "da", "de_DE": "de",
    "el_GR": "el", "en_US": "en", "es_ES": "es", "et_EE": "et", "fa_IR": "fa", "fi_FI": "fi",
    "fr_FR": "fr", "he_IL": "he", "hr_HR": "hr", "hu_HU": "hu", "id_ID": "id", "it_IT": "it",
    "ja_JP": "ja", "ko_KR": "ko", "lt_LT": "lt", "lv_LV": "lv", "nb_NO": "nb", "nl_NL": "nl",
    "pl_PL": "pl", "pt_BR": "pt-BR", "pt_PT": "pt-PT", "ro_RO": "ro", "ru_RU": "ru",
    "sk_SK": "sk", "sl_SI": "sl", "sr_CS": "sr", "sv_SE": "sv", "th_TH": "th", "tr_TR": "tr",
    "uk_UA": "uk", "vi_VN": "vi", "zh_CN": "zh-Hans", "zh_TW": "zh-Hant",
}
ROUNDCUBE_HTML = ("de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "cs_CZ", "ru_RU", "ja_JP",
                  "zh_CN", "pt_BR", "tr_TR", "sv_SE")
ROUNDCUBE_LABEL = re.compile(r"^\$labels\['(\w+)'\]\s*=\s*'((?:[^'\\]|\\.)*)';", re.M)


def roundcube_labels(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {k: v.replace("\\'", "'") for k, v in ROUNDCUBE_LABEL.findall(text)}


ROUNDCUBE_HARNESS = r"""<?php
// Roundcube's own get_forward_header() over a message stand-in: argv roundcube dir,
// config dir; stdin a JSON list of {lang, tz, subject, from, to, date}; stdout the headers.
define('INSTALL_PATH', rtrim($argv[1], '/') . '/');
define('RCMAIL_CONFIG_DIR', $argv[2]);
error_reporting(E_ERROR);
require_once INSTALL_PATH . 'program/include/iniset.php';
$rcmail = rcmail::get_instance(0, 'test');
class ForwardedMessage {
    public $headers; public $subject; private $values;
    function __construct($values) {
        $this->values = $values; $this->subject = $values['subject'];
        $this->headers = new rcube_message_header(); $this->headers->subject = $values['subject'];
    }
    function get_header($name, $raw = false) { return $this->values[$name] ?? null; }
}
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $job) {
    $rcmail->load_language($job['lang']);
    $rcmail->config->set('timezone', $job['tz']);
    $out[] = rcmail_action_mail_compose::get_forward_header(new ForwardedMessage($job), false);
}
echo json_encode($out);
"""


def etc_zone(value: datetime) -> str | None:
    """The IANA ``Etc/GMT±h`` zone of ``value``'s offset, None for a part-hour offset."""
    minutes = int((value.utcoffset() or timedelta(0)).total_seconds() // 60)
    if minutes % 60:
        return None
    hours = -minutes // 60  # Etc/GMT+5 is UTC-05:00
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{hours:+d}"


def roundcube_run(root: Path, jobs: list[dict[str, str]], work: Path) -> list[str]:
    """Roundcube's get_forward_header() run by php-cli over ``jobs``."""
    import subprocess

    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "config.inc.php").write_text(
        "<?php\n$config = ['db_dsnw' => 'sqlite:///:memory:', 'log_driver' => 'stdout'];\n")
    (work / "forward.php").write_text(ROUNDCUBE_HARNESS)
    done = subprocess.run(["php", str(work / "forward.php"), str(root), str(work / "config")],
                          input=json.dumps(jobs), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def build_roundcube(src: Path, picker: OriginalPicker) -> None:
    root = next(src.glob("rc/usr/share/roundcube"))
    version = next(src.glob("roundcube-core_*.deb")).name.split("_")[1]
    english = roundcube_labels(root / "program/localization/en_US/labels.inc")
    planned = [
        (locale, language, variant, picker.next())
        for locale, language in ROUNDCUBE_LOCALES.items()
        for variant in (("plain", "html") if locale in ROUNDCUBE_HTML else ("plain",))
    ]
    run = [(i, p) for i, p in enumerate(planned) if p[2] == "plain" and etc_zone(p[3].date)]
    headers = dict(zip(
        (i for i, _ in run),
        roundcube_run(root, [
            {"lang": locale, "tz": etc_zone(original.date), "subject": original.subject,
             "from": mailbox(original), "to": original.to,
             "date": email.utils.format_datetime(original.date)}
            for _, (locale, _, _, original) in run
        ], src / "roundcube-work"), strict=True,
    ))
    for number, (locale, language, variant, original) in enumerate(planned):
        labels = english | roundcube_labels(root / f"program/localization/{locale}/labels.inc")
        if number in headers:  # Roundcube's own code wrote the header block
            text = headers[number] + original.body.strip("\r\n")
            html = None
            raw = outer_message(
                f"Fwd: {original.subject}", text, forward_date(original),
                message_id=f"roundcube-{locale}-{variant}",
                user_agent=f"Roundcube Webmail/{version.split('+')[0]}",
            )
            add(Sample(
                source="roundcube", name=f"{variant}_{language}", client="roundcube",
                client_version=version.split("+")[0], language=language,
                kind="real_client",
                origin=f"package roundcube-core {version} (debian): its own "
                "rcmail_action_mail_compose::get_forward_header() run by php-cli with "
                f"the {locale} localization; original: {NOTMUCH_ORIGIN}{original.path}",
                licence="GPL-3.0-or-later",
                notes="Roundcube's plain-text inline forward written by Roundcube's own "
                "PHP (get_forward_header() + the body as create_forward_body() joins "
                "them), run over a stand-in for the parsed original (subject, From, To, "
                "Date as the message has them) with the user's timezone set to the "
                f"original's offset ({etc_zone(original.date)}). Its date is date_long "
                "'Y-m-d H:i' without zone: the expectation assumes the outer Date's "
                f"offset ({forward_date(original).strftime('%z')}), the zone it is "
                "written in. Original: real list mail (notmuch's test corpus).",
                expected=expected_for(original), raw=raw))
            continue
        # date_long 'Y-m-d H:i' in the user's zone (config timezone 'auto')
        date = original.date.strftime("%Y-%m-%d %H:%M")
        if variant == "plain":
            text = (
                f"\n\n\n-------- {labels['originalmessage']} --------\n"
                f"{labels['subject']}: {original.subject}\n"
                f"{labels['date']}: {date}\n"
                f"{labels['from']}: {mailbox(original)}\n"
                f"{labels['to']}: {original.to}\n\n{original.body}\n"
            )
            html = None
        else:
            rows = "".join(
                f'<tr><th align="right" nowrap="nowrap" valign="baseline">{html_escape(lab)}: </th>'
                f"<td>{html_escape(value)}</td></tr>"
                for lab, value in (
                    (labels["subject"], original.subject), (labels["date"], date),
                    (labels["from"], mailbox(original)), (labels["to"], original.to))
            )
            body = "<br />\n".join(html_escape(ln) for ln in original.body.splitlines())
            html = (
                '<html><head><meta http-equiv="Content-Type" content="text/html; '
                'charset=UTF-8" /></head><body style=\'font-size: 10pt; font-family: '
                "Verdana,Geneva,sans-serif'>\n<p><br /></p>\n"
                f"<br /><p>-------- {html_escape(labels['originalmessage'])} --------</p>"
                '<table border="0" cellpadding="0" cellspacing="0"><tbody>'
                f"{rows}</tbody></table><br>\n<div class=\"pre\">{body}</div>\n"
                "</body></html>\n"
            )
            text = None
        raw = outer_message(
            f"Fwd: {original.subject}", text, forward_date(original), html=html,
            message_id=f"roundcube-{locale}-{variant}",
            user_agent=f"Roundcube Webmail/{version.split('+')[0]}",
        )
        add(
            Sample(
                source="roundcube",
                name=f"{variant}_{language}",
                client="roundcube",
                client_version=version.split("+")[0],
                language=language,
                kind="client_strings",
                origin=f"package roundcube-core {version} (debian), "
                f"usr/share/roundcube/program/localization/{locale}/labels.inc "
                "(originalmessage, subject, date, from, to; en_US for those it lacks), "
                "layout of program/actions/mail/compose.php get_forward_header(), "
                f"date_long of etc/roundcube/defaults.inc.php; original: {NOTMUCH_ORIGIN}"
                f"{original.path}",
                licence="GPL-3.0-or-later",
                notes="Roundcube inline forward, " + (
                    "text/plain" if variant == "plain" else
                    "text/html only (the header block in Roundcube's table)") +
                ", written as get_forward_header() writes it. The date is date_long "
                "'Y-m-d H:i' without zone: the expectation assumes the outer Date's "
                f"offset ({forward_date(original).strftime('%z')}), the zone it is "
                "written in. Original: real list mail (notmuch's test corpus).",
                expected=expected_for(original),
                raw=raw,
            )
        )


# --- kind 3: classic Outlook (2003-2010) as LKML mail quotes it --------------------------

OUTLOOK_LAYOUT_SOURCE = "test/corpora/lkml/cur/1382298793.002543:2,"


def build_outlook_classic(src: Path, picker: OriginalPicker) -> None:
    """Outlook's ``-----Original Message-----`` block, in the layout a real one shows.

    The layout (separator, ``From: Name [mailto:addr]``, ``Sent: Sunday, November 14,
    2010 7:05 PM``, To, Cc, Subject) is read from a real Outlook block quoted in LKML
    mail of notmuch's corpus; an Outlook forward writes the same block under ``FW:``.
    """
    notmuch = next(src.glob("notmuch-*"))
    layout = (notmuch / OUTLOOK_LAYOUT_SOURCE).read_text(encoding="utf-8", errors="replace")
    block = re.search(r"^> (-----Original Message-----)\n> (From):.*\n> (Sent):.*\n> (To):.*\n"
                      r"> (Cc):.*\n(?:> .*\n)*?> (Subject):", layout, re.M)
    separator, *labels = block.groups()
    for number in range(8):
        original = picker.next()
        local = original.date
        sent = (local.strftime("%A, %B %d, %Y ") + local.strftime("%I:%M %p").lstrip("0"))
        sender = (f"{original.from_name} [mailto:{original.from_addr}]"
                  if original.from_name else original.from_addr)
        if number % 2:  # Outlook's plain part of an HTML mail writes <mailto:> instead
            sender = (f"{original.from_name} <{original.from_addr}<mailto:"
                      f"{original.from_addr}>>" if original.from_name else original.from_addr)
        text = (f"\n\n{separator}\n{labels[0]}: {sender}\n{labels[1]}: {sent}\n"
                f"{labels[2]}: {original.to}\n{labels[4]}: {original.subject}\n\n"
                f"{original.body}\n")
        raw = outer_message(f"FW: {original.subject}", text, forward_date(original),
                            message_id=f"outlook-classic-{number}")
        add(Sample(
            source="outlook_classic", name=f"original_message_en_{number + 1:02d}",
            client="outlook_desktop", client_version="2003-2010", language="en",
            kind="client_strings",
            origin=f"layout: {NOTMUCH_ORIGIN}{OUTLOOK_LAYOUT_SOURCE} (a real Outlook "
            "'-----Original Message-----' block quoted in LKML mail); mailto form: the "
            f"comments of {CRISP_ORIGIN} REGEXES.mailbox; original: {NOTMUCH_ORIGIN}"
            f"{original.path}",
            licence=NOTMUCH_LICENCE,
            notes="Classic Outlook forward under FW:, the header block laid out as the real "
            "block in the layout source, sender as " + (
                "'Name <addr<mailto:addr>>' (Outlook's text part of an HTML mail, as crisp "
                "documents it)" if number % 2 else "'Name [mailto:addr]'") +
            ". The Sent date has no zone: the expectation assumes the outer Date's offset "
            f"({forward_date(original).strftime('%z')}), the zone it is written in. "
            "Original: real list mail (notmuch's test corpus).",
            expected=expected_for(original), raw=raw))


# --- kind 3: Claws Mail's own forward template in each of its translations -----------

CLAWS_LANGS = {"ca": "ca", "cs": "cs", "da": "da", "de": "de", "el_GR": "el", "es": "es",
               "fi": "fi", "fr": "fr", "hu": "hu", "id_ID": "id", "it": "it", "ja": "ja",
               "nb": "nb", "nl": "nl", "pl": "pl", "pt_BR": "pt-BR", "ro": "ro", "ru": "ru",
               "sk": "sk", "sv": "sv", "tr": "tr", "zh_TW": "zh-Hant", "en": "en"}
CLAWS_SYMBOLS = {"d": "date", "f": "from", "t": "to", "c": "cc", "n": "newsgroups",
                 "s": "subject", "M": "body"}


def claws_expand(template: str, values: dict[str, str]) -> str:
    """Claws Mail's quote_fmt: ``?x{...}`` when x is set, ``%x`` symbols, ``\\n``."""
    def conditional(match: re.Match[str]) -> str:
        return match.group(2) if values.get(CLAWS_SYMBOLS[match.group(1)]) else ""

    text = re.sub(r"\?([a-zA-Z])\{([^}]*)\}", conditional, template)
    text = re.sub(r"%([a-zA-Z])", lambda m: values.get(CLAWS_SYMBOLS.get(m.group(1), ""), ""),
                  text)
    return text.replace("\\n", "\n")


def build_claws(src: Path, picker: OriginalPicker) -> None:
    root = next(src.glob("claws/usr/share/locale"))
    version = next(src.glob("claws-mail-i18n_*.deb")).name.split("_")[1]
    msgid = None
    for lang, language in CLAWS_LANGS.items():
        if lang == "en":
            template, where = msgid, "the msgid itself (Claws Mail's English default)"
        else:
            catalog = gettext.GNUTranslations((root / lang / "LC_MESSAGES" /
                                               "claws-mail.mo").open("rb"))._catalog
            msgid = msgid or next(k for k in catalog if isinstance(k, str)
                                  and k.startswith("\\n\\nBegin forwarded message:"))
            template = catalog.get(msgid)
            where = f"usr/share/locale/{lang}/LC_MESSAGES/claws-mail.mo"
            if not template:
                continue
        original = picker.next()
        text = claws_expand(template, {
            "date": email.utils.format_datetime(original.date), "from": mailbox(original),
            "to": original.to, "subject": original.subject, "body": original.body,
        }) + "\n"
        raw = outer_message(f"Fwd: {original.subject}", text, forward_date(original),
                            message_id=f"claws-{lang}",
                            user_agent=f"Claws Mail {version.split('-')[0]}")
        add(
            Sample(
                source="claws_mail",
                name=f"plain_{language}",
                client="claws_mail",
                client_version=version.split("-")[0],
                language=language,
                kind="client_strings",
                origin=f"package claws-mail-i18n {version} (debian), {where}: the "
                "translated default forward template (forward_body_format); original: "
                f"{NOTMUCH_ORIGIN}{original.path}",
                licence="GPL-3.0-or-later",
                notes="Claws Mail inline forward: its default forward template as the "
                "translation gives it, layout included, expanded as quote_fmt does "
                "(?x{} conditionals; %d the Date header as written, %f From, %t To, %s "
                "Subject, %M the body). Original: real list mail (notmuch's test corpus).",
                expected=expected_for(original),
                raw=raw,
            )
        )


# --- kind 3: SOGo's own forward templates, one per language ---------------------------

SOGO_LANGUAGES = {
    "Arabic": "ar", "Bosnian": "bs", "BrazilianPortuguese": "pt-BR", "Bulgarian": "bg",
    "Catalan": "ca", "ChineseChina": "zh-Hans", "ChineseTaiwan": "zh-Hant", "Croatian": "hr",
    "Czech": "cs", "Danish": "da", "Dutch": "nl", "English": "en", "Finnish": "fi",
    "French": "fr", "German": "de", "Hebrew": "he", "Hungarian": "hu", "Icelandic": "is",
    "Indonesian": "id", "Italian": "it", "Japanese": "ja", "Kazakh": "kk", "Latvian": "lv",
    "Lithuanian": "lt", "Macedonian": "mk", "Montenegrin": "cnr", "NorwegianBokmal": "nb",
    "NorwegianNynorsk": "nn", "Polish": "pl", "Portuguese": "pt-PT", "Romanian": "ro",
    "Russian": "ru", "Serbian": "sr", "SerbianLatin": "sr-Latn", "Slovak": "sk",
    "Slovenian": "sl", "SpanishArgentina": "es-AR", "SpanishSpain": "es", "Swedish": "sv",
    "TurkishTurkey": "tr", "Ukrainian": "uk", "Welsh": "cy",
}
WO_TAG = re.compile(r"<(/?)#(\w+)\s*(/?)>", re.S)


def wo_render(template: str, values: dict[str, str], conditions: dict[str, bool]) -> str:
    """A WebObjects template as SOGo renders it: ``<#x/>`` values, ``<#cond>…</#cond>``."""
    out = []
    skipping: list[bool] = []
    position = 0
    for tag in WO_TAG.finditer(template):
        if not any(skipping):
            out.append(template[position:tag.start()])
        closing, name, empty = tag.groups()
        if closing:
            skipping.pop()
        elif empty:
            if not any(skipping):
                out.append("\n" if name == "newLine" else values.get(name, ""))
        else:
            skipping.append(not conditions.get(name, False))
        position = tag.end()
    out.append(template[position:])
    return "".join(out)


def build_sogo(src: Path, picker: OriginalPicker) -> None:
    from babel.dates import format_date, format_time

    resources = next(src.glob("sogo/usr/share/GNUstep/SOGo/Mailer.SOGo/Resources"))
    version = next(src.glob("sogo_*.deb")).name.split("_")[1]
    for name, language in SOGO_LANGUAGES.items():
        path = resources / f"SOGoMail{name}Forward.wo" / f"SOGoMail{name}Forward.html"
        original = picker.next()
        locale = language.replace("-", "_")
        # SOGoLongDateFormat "%A, %B %d, %Y" and SOGoTimeFormat "%H:%M" (SOGoDefaults.plist),
        # day and month names from CLDR for the language.
        date = (f"{format_date(original.date, 'EEEE, MMMM dd, y', locale=locale)} "
                f"{format_time(original.date, 'HH:mm', locale=locale)}")
        text = wo_render(
            path.read_text(encoding="utf-8"),
            {"subject": original.subject, "date": date, "from": mailbox(original),
             "to": original.to, "messageBody": original.body, "signature": ""},
            {"signaturePlacementOnTop": True},
        ) + "\n"
        raw = outer_message(f"Fwd: {original.subject}", text, forward_date(original),
                            message_id=f"sogo-{name}")
        add(Sample(
            source="sogo", name=f"plain_{language}", client="sogo",
            client_version=version.split("-")[0], language=language, kind="client_strings",
            origin=f"package sogo-common {version} (debian), usr/share/GNUstep/SOGo/Mailer.SOGo/"
            f"Resources/SOGoMail{name}Forward.wo/SOGoMail{name}Forward.html (layout and "
            "labels); SOGoLongDateFormat/SOGoTimeFormat of package sogo's "
            "usr/lib/GNUstep/Frameworks/SOGo.framework/Versions/5/Resources/SOGoDefaults.plist;"
            f" original: {NOTMUCH_ORIGIN}{original.path}",
            licence="GPL-3.0-or-later",
            notes="SOGo inline forward: its own forward template for the language rendered "
            "as WebObjects does (literal text kept, <#newLine/> a line break, the "
            "hasReplyTo/hasCc conditionals false). The date is the default long date and "
            "time format with CLDR (Babel) day and month names, no zone: the expectation "
            f"assumes the outer Date's offset ({forward_date(original).strftime('%z')}), the "
            "zone it is written in. Original: real list mail (notmuch's test corpus).",
            expected=expected_for(original), raw=raw))


# --- kind 3: KMail's default forward template in each of its translations -------------

KMAIL_CONTEXT = "Default forward template: %1: subject of original message, %2: date of"


def bcp47_from_gettext(lang: str) -> str:
    special = {"zh_CN": "zh-Hans", "zh_TW": "zh-Hant", "sr@latin": "sr-Latn",
               "sr@ijekavian": "sr-ijekavsk", "sr@ijekavianlatin": "sr-Latn-ijekavsk",
               "ca@valencia": "ca-valencia", "pt": "pt-PT", "nb": "nb"}
    return special.get(lang, lang.replace("_", "-"))


def build_kmail(src: Path, picker: OriginalPicker) -> None:
    from babel import Locale, UnknownLocaleError
    from babel.dates import format_date, format_time

    root = next(src.glob("kmail/usr/share/locale"))
    version = next(src.glob("kf5-messagelib-data_*.deb")).name.split("_")[1]
    for mo in sorted(root.glob("*/LC_MESSAGES/libtemplateparser.mo")):
        lang = mo.parts[-3]
        catalog = gettext.GNUTranslations(mo.open("rb"))._catalog
        key = next((k for k in catalog if isinstance(k, str) and k.startswith(KMAIL_CONTEXT)),
                   None)
        template = catalog.get(key) if key else None
        to_label = catalog.get("@item:intext email To\x04To:")
        if not template or not to_label:
            continue
        locale = lang.split("@")[0]
        try:
            Locale.parse(locale)
        except (UnknownLocaleError, ValueError):
            continue
        original = picker.next()
        addressees = f"{to_label} {original.to}"
        text = (template.replace("%OADDRESSEESADDR", addressees)
                .replace("%1", original.subject)
                .replace("%2", format_date(original.date, "full", locale=locale))
                .replace("%3", format_time(original.date, "HH:mm:ss", locale=locale))
                .replace("%4", mailbox(original))
                .replace("%5", original.body)) + "\n"
        language = bcp47_from_gettext(lang)
        raw = outer_message(f"Fwd: {original.subject}", text, forward_date(original),
                            message_id=f"kmail-{lang}",
                            user_agent=f"KMail/{version.split('-')[0].split(':')[-1]}")
        add(Sample(
            source="kmail", name=f"plain_{language}", client="kmail",
            client_version=version.split("-")[0].split(":")[-1], language=language,
            kind="client_strings",
            origin=f"package kf5-messagelib-data {version} (debian), usr/share/locale/{lang}/"
            "LC_MESSAGES/libtemplateparser.mo: the translated default forward template "
            "(msgctxt 'Default forward template: ...', layout and labels) and 'To:' "
            "(msgctxt '@item:intext email To'); "
            f"original: {NOTMUCH_ORIGIN}{original.path}",
            licence="GPL-2.0-or-later",
            notes="KMail inline forward: its default forward template as the translation "
            "gives it, %1 the subject, %2 %ODATE (the long date: CLDR full date here), %3 "
            "%OTIMELONG (HH:mm:ss here; Qt may add a zone name, left out), %4 the From "
            "address, %OADDRESSEESADDR the translated 'To:' line, %5 the body. The date has "
            "no zone: the expectation assumes the outer Date's offset "
            f"({forward_date(original).strftime('%z')}), the zone it is written in. Original: "
            "real list mail (notmuch's test corpus)." + (
                "" if any("%2" in line and "%3" in line for line in template.splitlines())
                else
                " This translation's template drops the ', %3' after the date, so the time "
                "stands on the From line and the sender on the next one: that is what this "
                "KMail writes; the expectation is still the original's real sender."),
            expected=expected_for(original), raw=raw))


# --- kind 3: Horde IMP's forward text, from its own PHP and its translations ------------

def build_horde_imp(src: Path, picker: OriginalPicker) -> None:
    """IMP_Compose::forwardMessageText() and _getMsgHeaders() as its PHP writes them.

    ``\n----- Forwarded message from FROM -----\n``, then Date/From/Subject/To with the
    labels right-aligned to the longest plus ``": "`` (Horde_String::pad, STR_PAD_LEFT),
    a blank line, the body, ``\n\n----- End forwarded message -----\n``; subject "Fwd: ".
    """
    root = next(src.glob("imp/usr/share/horde/imp"))
    version = next(src.glob("php-horde-imp_*.deb")).name.split("_")[1]
    for mo in sorted(root.glob("locale/*/LC_MESSAGES/imp.mo")):
        lang = mo.parts[-3]
        catalog = gettext.GNUTranslations(mo.open("rb"))
        _ = catalog.gettext
        original = picker.next()
        rows = {_("Date"): email.utils.format_datetime(original.date),
                _("From"): mailbox(original), _("Subject"): original.subject,
                _("To"): original.to}
        width = max(len(key) for key in rows) + 2
        headers = "".join(f"{(key + ': ').rjust(width)}{value}\n" for key, value in rows.items())
        text = (f"\n----- {_('Forwarded message from %s') % mailbox(original)} -----\n"
                f"{headers}\n{original.body}\n\n----- {_('End forwarded message')} -----\n")
        language = bcp47_from_gettext(lang)
        raw = outer_message(f"Fwd: {original.subject}", text, forward_date(original),
                            message_id=f"horde-imp-{lang}",
                            user_agent="Horde Application Framework 5")
        add(Sample(
            source="horde_imp", name=f"plain_{language}", client="horde_imp",
            client_version=version.split("-")[0], language=language, kind="client_strings",
            origin=f"package php-horde-imp {version} (debian), usr/share/horde/imp/lib/"
            "Compose.php forwardMessageText() and _getMsgHeaders() (layout), "
            f"usr/share/horde/imp/locale/{lang}/LC_MESSAGES/imp.mo (strings); original: "
            f"{NOTMUCH_ORIGIN}{original.path}",
            licence="GPL-2.0-only",
            notes="Horde IMP inline forward (text) as its PHP writes it, with the labels of "
            "its translation; the Date is the original's Date header as written. Original: "
            "real list mail (notmuch's test corpus).",
            expected=expected_for(original), raw=raw))


# --- kind 2: mutt itself forwards real list mail --------------------------------------

MUTT_VARIANTS = {  # name -> muttrc lines beyond the common ones
    "inline": ["set mime_forward=no"],
    "inline_quoted": ["set mime_forward=no", "set forward_quote=yes"],
    "attached": ["set mime_forward=yes"],
    "fwd_subject": ["set mime_forward=no", 'set forward_format="Fwd: %s"'],
}
MUTT_LOCALES = {"en": "C.UTF-8", "de": "de_DE.UTF-8", "fr": "fr_FR.UTF-8", "cs": "cs_CZ.UTF-8",
                "da": "da_DK.UTF-8", "fi": "fi_FI.UTF-8", "pl": "pl_PL.UTF-8",
                "tr": "tr_TR.UTF-8", "ca": "ca_ES.UTF-8"}
MUTT_RC = """set mbox_type=Maildir
set folder="{work}"
set sendmail="{work}/sink.sh"
set editor="true"
set from="Forwarder <forwarder@example.com>"
set use_from=yes
set askcc=no
set edit_headers=no
set record=""
set copy=no
set charset="utf-8"
set send_charset="us-ascii:utf-8"
set hostname="forwarder.example.com"
set move=no
set wait_key=no
"""


def tmux_drive(session: str, command: str, keys: list[list[str]], sent: Path) -> bytes:
    """Run ``command`` in a tmux pane, type ``keys`` a step at a time; what it sent."""
    import subprocess
    import time

    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    command], check=True)
    try:
        for step in keys:
            time.sleep(1.3)
            subprocess.run(["tmux", "send-keys", "-t", session, *step], check=False,
                           stderr=subprocess.DEVNULL)
        for _ in range(20):
            if sent.exists() and sent.stat().st_size:
                break
            time.sleep(0.3)
    finally:
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False,
                       stderr=subprocess.DEVNULL)
    return sent.read_bytes()


def fresh_workdir(work: Path) -> None:
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sink = work / "sink.sh"
    sink.write_text(f"#!/bin/sh\ncat > {work}/sent.eml\n")
    sink.chmod(0o755)


def mutt_forward(work: Path, message: Path, rc_lines: list[str], locale: str,
                 program: str = "mutt") -> bytes:
    """Have mutt (or neomutt) forward ``message`` to the logging address; what it sent."""
    import shutil

    fresh_workdir(work)
    for sub in ("md/cur", "md/new", "md/tmp"):
        (work / sub).mkdir(parents=True)
    shutil.copy(message, work / "md" / "cur" / "1:2,S")
    (work / "muttrc").write_text(MUTT_RC.format(work=work) + "\n".join(rc_lines) + "\n")
    command = (f"env LANG={locale} LC_ALL={locale} {program} -n -F {work}/muttrc "
               f"-f {work}/md -e \"push '<forward-message>'\"")
    keys = [["log@inboxlog.example", "Enter"], ["Enter"], ["y"], ["q"], ["y"]]
    return tmux_drive(f"inboxlog-{program}-{work.name}", command, keys, work / "sent.eml")


ALPINE_RC = """personal-name=Forwarder
user-domain=forwarder.example.com
sendmail-path={work}/sink.sh -t
inbox-path={work}/box
default-fcc=""
feature-list=quit-without-confirm
"""


def alpine_forward(work: Path, message: Path, mbox_from: str) -> bytes:
    """Have alpine forward ``message`` (its default inline forward); what it sent."""
    fresh_workdir(work)
    (work / "box").write_bytes(f"From {mbox_from}\n".encode() + message.read_bytes() + b"\n")
    (work / "pinerc").write_text(ALPINE_RC.format(work=work))
    command = f"env LANG=C.UTF-8 alpine -p {work}/pinerc -i -f {work}/box"
    keys = [["E"], ["F"], ["log@inboxlog.example"], ["C-x"], ["y"], ["y"], ["q"], ["y"]]
    return tmux_drive(f"inboxlog-alpine-{work.name}", command, keys, work / "sent.eml")


AERC_ACCOUNTS = """[local]
source = maildir://{work}/mail
outgoing = {work}/sink.sh
default = INBOX
from = Forwarder <forwarder@example.com>
copy-to =
"""
AERC_CONF = "[compose]\neditor = true\n"


def aerc_forward(work: Path, message: Path, attach: bool, zone: str) -> bytes:
    """Have aerc forward ``message`` (``:forward``, or ``:forward -F`` to attach it)."""
    import shutil

    fresh_workdir(work)
    for sub in ("cur", "new", "tmp"):
        (work / "mail" / "INBOX" / sub).mkdir(parents=True)
    shutil.copy(message, work / "mail" / "INBOX" / "cur" / "1:2,S")
    config = work / "xdg" / "aerc"
    config.mkdir(parents=True)
    (config / "accounts.conf").write_text(AERC_ACCOUNTS.format(work=work))
    (config / "accounts.conf").chmod(0o600)
    (config / "aerc.conf").write_text(AERC_CONF)
    command = f"env TZ={zone} XDG_CONFIG_HOME={work}/xdg aerc"
    forward = ":forward -F log@inboxlog.example" if attach else ":forward log@inboxlog.example"
    keys = [[], [], [forward, "Enter"], [], ["y"], [], [":quit", "Enter"]]
    return tmux_drive(f"inboxlog-aerc-{work.name}", command, keys, work / "sent.eml")


def build_mutt(src: Path, originals: list[Original], work: Path) -> None:
    import subprocess

    version = subprocess.run(["mutt", "-v"], capture_output=True, text=True).stdout.split()[1]
    notmuch = next(src.glob("notmuch-*"))
    chosen = originals[::max(1, len(originals) // 40)]
    index = 0
    for language, locale in MUTT_LOCALES.items():
        variants = MUTT_VARIANTS if language == "en" else {"inline": MUTT_VARIANTS["inline"]}
        for variant, rc_lines in variants.items():
            for _ in range(3 if language == "en" else 1):
                original = chosen[index % len(chosen)]
                index += 1
                raw = mutt_forward(work / f"{language}-{variant}", notmuch / original.path,
                                   rc_lines, locale)
                name = f"{variant}_{language}_{index:02d}"
                add(
                    Sample(
                        source="mutt",
                        name=name,
                        client="mutt",
                        client_version=version,
                        language=language,
                        kind="real_client",
                        origin=f"mutt {version} (Debian package mutt) run here under tmux "
                        f"with LANG={locale}; original: {NOTMUCH_ORIGIN}{original.path}",
                        licence=NOTMUCH_LICENCE,
                        notes="Written by mutt itself: <forward-message> to the logging "
                        "address, muttrc " + "; ".join(rc_lines) + " (plus the common "
                        "settings in scripts/build_real_forwards.py MUTT_RC), sent through a "
                        "sendmail stand-in that keeps the message. Date and Message-ID are "
                        "mutt's, so a rebuild differs in those. Original: real list mail "
                        "(notmuch's test corpus).",
                        expected=expected_for(original),
                        raw=raw,
                    )
                )
    neomutt = subprocess.run(["neomutt", "-v"], capture_output=True, text=True).stdout.split()[1]
    for variant in ("inline", "inline_quoted", "attached"):
        for _ in range(2):
            original = chosen[index % len(chosen)]
            index += 1
            rc_lines = MUTT_VARIANTS[variant]
            raw = mutt_forward(work / f"neomutt-{variant}", notmuch / original.path,
                               rc_lines, "C.UTF-8", program="neomutt")
            add(Sample(
                source="neomutt", name=f"{variant}_en_{index:02d}", client="neomutt",
                client_version=neomutt, language="en", kind="real_client",
                origin=f"neomutt {neomutt} (Debian package neomutt) run here under tmux; "
                f"original: {NOTMUCH_ORIGIN}{original.path}",
                licence=NOTMUCH_LICENCE,
                notes="Written by neomutt itself: <forward-message> to the logging address, "
                "muttrc " + "; ".join(rc_lines) + " (plus MUTT_RC), through a sendmail "
                "stand-in. Date and Message-ID are neomutt's. Original: real list mail "
                "(notmuch's test corpus).",
                expected=expected_for(original), raw=raw))
    alpine = subprocess.run(["alpine", "-v"], capture_output=True, text=True).stdout.split()
    alpine_version = alpine[1] if len(alpine) > 1 else None
    for _ in range(6):
        original = chosen[index % len(chosen)]
        index += 1
        mbox_from = f"{original.from_addr} {original.date.strftime('%a %b %d %H:%M:%S %Y')}"
        raw = alpine_forward(work / "alpine", notmuch / original.path, mbox_from)
        add(Sample(
            source="alpine", name=f"inline_en_{index:02d}", client="alpine",
            client_version=alpine_version, language="en", kind="real_client",
            origin=f"alpine {alpine_version} (Debian package alpine) run here under tmux; "
            f"original: {NOTMUCH_ORIGIN}{original.path}",
            licence=NOTMUCH_LICENCE,
            notes="Written by alpine itself: F(orward) of the message to the logging "
            "address, default settings (ALPINE_RC), through a sendmail stand-in; alpine's "
            "Subject is 'subject (fwd)'. Date and Message-ID are alpine's. Original: real "
            "list mail (notmuch's test corpus).",
            expected=expected_for(original), raw=raw))


def build_aerc(src: Path, originals: list[Original], work: Path) -> None:
    import subprocess

    notmuch = next(src.glob("notmuch-*"))
    chosen = originals[::max(1, len(originals) // 40)]
    index = 32  # after the originals mutt, neomutt and alpine forward
    aerc = subprocess.run(["aerc", "-v"], capture_output=True, text=True).stdout.split()[1]
    for attach in (False, True):
        for _ in range(3):
            original = chosen[index % len(chosen)]
            index += 1
            zone = etc_zone(original.date)
            if zone is None:
                continue
            raw = aerc_forward(work / "aerc", notmuch / original.path, attach, zone)
            variant = "attached" if attach else "inline"
            add(Sample(
                source="aerc", name=f"{variant}_en_{index:02d}", client="aerc",
                client_version=aerc, language="en", kind="real_client",
                origin=f"aerc {aerc} (Debian package aerc) run here under tmux with "
                f"TZ={zone}; original: {NOTMUCH_ORIGIN}{original.path}",
                licence=NOTMUCH_LICENCE,
                notes="Written by aerc itself: "
                + (":forward -F (the original attached as message/rfc822)" if attach else
                   ":forward with its default forward_as_body template, whose line "
                   "'Forwarded message from NAME on DATE:' names the sender without an "
                   "address: no original can be logged, so the expectation is none")
                + " to the logging address, through a sendmail stand-in. Date and "
                "Message-ID are aerc's. Original: real list mail (notmuch's test corpus).",
                expected=expected_for(original) if attach else
                {"from": None, "subject": original.subject, "date": iso_utc(original.date)},
                raw=raw))


# --- writing ---------------------------------------------------------------------------

def licence_of(sample: Sample) -> str:
    """The sample's SPDX expression: its strings' licence and, when it forwards real list
    mail from notmuch's corpus, that corpus's licence too."""
    if NOTMUCH_ORIGIN in sample.origin and NOTMUCH_LICENCE not in sample.licence:
        return f"{sample.licence} AND {NOTMUCH_LICENCE}"
    return sample.licence


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
            "licence": licence_of(s),
            "notes": s.notes,
            "expected": s.expected,
        }
        for s in sorted(SAMPLES, key=lambda s: (s.source, s.name))
    ]
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def keep_committed(source: str) -> None:
    """Keep the committed samples of ``source`` as they are (``--no-clients``)."""
    manifest = json.loads((OUT / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest:
        folder, name = entry["file"].split("/", 1)
        if folder != source:
            continue
        add(Sample(source=folder, name=name.removesuffix(".eml"), client=entry["client"],
                   client_version=entry["client_version"], language=entry["language"],
                   kind=entry["kind"], origin=entry["origin"],
                   licence=entry["licence"].split(" AND ")[0],
                   notes=entry["notes"], expected=entry["expected"],
                   raw=(OUT / entry["file"]).read_bytes()))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    src = Path(argv[1])
    originals = load_originals(src)
    picker = OriginalPicker(originals)
    build_quotequail(src)
    build_fixture_forwards(src)
    build_thunderbird(src, picker)
    build_crisp(src, picker)
    build_roundcube(src, picker)
    build_claws(src, picker)
    build_outlook_classic(src, picker)
    build_sogo(src, picker)
    build_kmail(src, picker)
    build_horde_imp(src, picker)
    # The clients run here write a new Date and Message-ID each time: --no-clients keeps
    # the committed samples, --only-aerc reruns aerc alone.
    if "--no-clients" in argv or "--only-aerc" in argv:
        for source in ("mutt", "neomutt", "alpine"):
            keep_committed(source)
    else:
        build_mutt(src, originals, src / "client-work")
    if "--no-clients" in argv:
        keep_committed("aerc")
    else:
        build_aerc(src, originals, src / "client-work")
    write_all()
    print(f"{len(SAMPLES)} samples from {len(originals)} originals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
