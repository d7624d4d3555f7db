"""SPF (RFC 7208) of the envelope sender, or of the HELO name for the null sender.

The evaluation is pyspf's (the reference implementation of RFC 7208, as Debian's
``python3-spf``), its DNS through our :class:`~core.sender_auth.resolver.Resolver`.
pyspf looks names up through one module-level function, ``spf.DNSLookup``; it is replaced
once by a dispatcher that asks the resolver of the check running in this thread (a context
variable), and with no such resolver raises a temporary error: pyspf never reaches the
machine's resolver.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from typing import Any

import spf

from core.sender_auth._names import normalize_domain
from core.sender_auth.resolver import DnsTemporaryError, Resolver
from core.sender_auth.types import SmtpFacts, SpfCheck, SpfResult

_current: ContextVar[Resolver | None] = ContextVar("sender_auth_spf_resolver", default=None)


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None
            ) -> list[tuple[tuple[str, str], Any]]:
    # pyspf's DNSLookup contract: [((name, qtype), value)] with value an address (A/AAAA),
    # (preference, exchange) (MX), a name (PTR) or the list of strings (TXT); it raises
    # spf.TempError for failures. CNAMEs are followed by dnspython.
    resolver = _current.get()
    if resolver is None:
        raise spf.TempError("DNS: no resolver configured for this SPF check")
    try:
        records = resolver.lookup(name, qtype)
    except DnsTemporaryError as error:
        raise spf.TempError(error.message) from error
    answers: list[tuple[tuple[str, str], Any]] = []
    for record in records:
        value: Any
        if qtype in ("A", "AAAA"):
            value = record.address  # type: ignore[attr-defined]
        elif qtype == "MX":
            value = (record.preference, record.exchange)  # type: ignore[attr-defined]
        elif qtype == "PTR":
            value = record.target.to_text(True)  # type: ignore[attr-defined]
        elif qtype in ("TXT", "SPF"):
            value = record.strings  # type: ignore[attr-defined]
        else:
            continue
        answers.append(((name, qtype), value))
    return answers


spf.DNSLookup = _lookup


def _domain(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return normalize_domain(domain) if at and local else ""


def check_spf(smtp: SmtpFacts, resolver: Resolver) -> SpfCheck:
    """SPF of the envelope sender's domain for the client address; for the null sender,
    of the HELO name (``postmaster@helo``). Blocking: it queries DNS."""
    if smtp.mail_from:
        sender, domain, scope = smtp.mail_from, _domain(smtp.mail_from), "mfrom"
    else:
        domain = normalize_domain(smtp.helo)  # "" for an address literal: SPF none
        sender, scope = f"postmaster@{domain}", "helo"
    if not domain:
        return SpfCheck(SpfResult.NONE, "", scope, "no domain to check")
    try:
        client = ipaddress.ip_address(smtp.client_ip)
    except ValueError:
        return SpfCheck(SpfResult.NONE, domain, scope, "no client address to check")
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
        client = client.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    token = _current.set(resolver)
    try:
        # querytime bounds the whole evaluation (RFC 7208 section 4.6.4 asks for one).
        query = spf.query(i=str(client), s=sender, h=smtp.helo or domain,
                          timeout=resolver.config.lifetime,
                          querytime=resolver.config.lifetime * 3)
        result, _code, explanation = query.check()
    except spf.TempError as error:
        return SpfCheck(SpfResult.TEMPERROR, domain, scope, str(error))
    except Exception as error:
        # The records are the sender's to write: whatever pyspf trips over in them
        # is the sender's permanent error, never a crash of the check.
        return SpfCheck(SpfResult.PERMERROR, domain, scope, f"{type(error).__name__}: {error}")
    finally:
        _current.reset(token)
    try:
        outcome = SpfResult(str(result).lower())
    except ValueError:
        outcome = SpfResult.PERMERROR
    return SpfCheck(outcome, domain, scope, str(explanation))
