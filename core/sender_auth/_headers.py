"""The header section of a raw message, read without building a message object, and
RFC 8601 ``Authentication-Results`` values (parsed by the ``authres`` package)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import authres

from core.mail._mime import parse_addresses
from core.sender_auth._names import normalize_domain

# Lines end as the email package's parser (routing's) ends them: CRLF, LF or a lone CR,
# never at what str.splitlines() also takes (FF, VT, FS, NEL, U+2028...). Splitting at
# those made `From: "attacker@evil.test<FF>" <user@...>` be checked as evil.test while
# routing logged it as the user's.
_LINE_END = re.compile(r"\r\n|\r|\n")
# A header section longer than this is not read further (the SMTP edge caps lines anyway).
MAX_HEADER_BYTES = 256 * 1024


@dataclass(frozen=True)
class Headers:
    """The fields in order, topmost first, values unfolded."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, raw: bytes) -> Headers:
        section = raw[:MAX_HEADER_BYTES].decode("utf-8", "surrogateescape")
        lines: list[str] = []
        for line in _LINE_END.split(section):
            if not line:
                break  # the empty line that ends the header section
            if line[0] in " \t":
                if lines:
                    lines[-1] += line  # a folded line continues the field before it
                continue
            lines.append(line)
        fields: list[tuple[str, str]] = []
        for line in lines:
            name, colon, value = line.partition(":")
            if colon and name:
                fields.append((name.strip(), value.strip()))
        return cls(tuple(fields))

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for field_name, value in self.fields if field_name.lower() == name]


def author_domain(headers: Headers) -> tuple[str | None, str]:
    """The RFC 5322.From domain DMARC is about, or ``None`` and why: RFC 7489 section
    6.6.1 leaves a message with no, several or an unparseable ``From`` to local policy;
    here it cannot pass."""
    values = headers.all("From")
    if len(values) != 1:
        return None, f"the message has {len(values)} From header fields"
    # Read exactly as routing reads it (core.mail.parsing): undeclared 8-bit bytes decoded the
    # same way, the same address parser. Read otherwise, a Shift_JIS character ending in
    # a backslash escaped a quote here and not there: the checked domain was the
    # attacker's and the logged From the user's.
    pairs, _notes = parse_addresses(values, "From")
    addresses = [address for _name, address in pairs]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None, "the From header is not exactly one address"
    domain = normalize_domain(addresses[0].rpartition("@")[2])
    if not domain:
        return None, "the From address has no usable domain"
    return domain, ""


@dataclass(frozen=True)
class ParsedResults:
    """One ``Authentication-Results`` value: the authserv-id and each method's result
    with its properties (``"header.d"`` -> ``"example.com"``)."""

    authserv_id: str
    results: tuple[tuple[str, str, dict[str, str]], ...]


def parse_results_value(value: str) -> ParsedResults | None:
    """``None`` for a value the RFC 8601 grammar does not accept."""
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # sender-controlled text: any failure of the parser is "unusable"
        return None
    results = []
    for result in header.results:
        properties = {f"{prop.type}.{prop.name}".lower(): str(prop.value)
                      for prop in getattr(result, "properties", ())}
        results.append((str(result.method).lower(), str(result.result).lower(), properties))
    return ParsedResults(str(header.authserv_id).lower(), tuple(results))
