"""DMARC (RFC 7489): the policy record of the ``From`` domain and the evaluation of a
message's SPF and DKIM results against it, with relaxed or strict alignment."""

from __future__ import annotations

import random
from collections.abc import Callable

from core.sender_auth._names import aligned, organizational_domain
from core.sender_auth.resolver import DnsTemporaryError, Resolver
from core.sender_auth.types import (
    Alignment,
    Disposition,
    DkimResult,
    DkimSignature,
    DmarcCheck,
    DmarcRecord,
    DmarcResult,
    SpfCheck,
    SpfResult,
)

_LESS_STRICT = {Disposition.REJECT: Disposition.QUARANTINE,
                Disposition.QUARANTINE: Disposition.NONE,
                Disposition.NONE: Disposition.NONE}


def parse_record(text: str, domain: str) -> DmarcRecord | None:
    """A ``_dmarc`` TXT value, or ``None`` when it is not a DMARC record or is unusable
    (RFC 7489 section 6.6.3: ``v=DMARC1`` first; a missing or invalid ``p=`` makes the
    record ``p=none`` if ``rua=`` is valid, else no record). Invalid optional tags fall
    back to their defaults."""
    parts = [part.strip() for part in text.split(";")]
    tags: dict[str, str] = {}
    for part in parts:
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip().lower(), value.strip())
    first_name, _, first_value = parts[0].partition("=")
    if first_name.strip() != "v" or first_value.strip() != "DMARC1":
        return None

    def disposition(value: str | None) -> Disposition | None:
        try:
            return Disposition(value.lower()) if value is not None else None
        except ValueError:
            return None

    policy = disposition(tags.get("p"))
    if policy is None:
        if not tags.get("rua", "").lower().startswith("mailto:"):
            return None
        policy = Disposition.NONE
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        pct = 100
    if not 0 <= pct <= 100:
        pct = 100

    def alignment(value: str | None) -> Alignment:
        return Alignment.STRICT if (value or "").lower() == "s" else Alignment.RELAXED

    return DmarcRecord(domain=domain, policy=policy,
                       subdomain_policy=disposition(tags.get("sp")), pct=pct,
                       adkim=alignment(tags.get("adkim")), aspf=alignment(tags.get("aspf")))


def _record_at(domain: str, resolver: Resolver) -> DmarcRecord | None:
    records = [record for text in resolver.txt(f"_dmarc.{domain}")
               if (record := parse_record(text.decode("utf-8", "replace"), domain))]
    # Several DMARC records at one name: as if there were none (section 6.6.3 step 5).
    return records[0] if len(records) == 1 else None


def find_record(from_domain: str, resolver: Resolver) -> DmarcRecord | None:
    """The record at ``_dmarc.<from_domain>``, else at its organizational domain.
    Raises :class:`DnsTemporaryError`."""
    record = _record_at(from_domain, resolver)
    if record is None:
        organizational = organizational_domain(from_domain)
        if organizational and organizational != from_domain:
            record = _record_at(organizational, resolver)
    return record


def evaluate(from_domain: str | None, spf: SpfCheck, signatures: tuple[DkimSignature, ...],
             resolver: Resolver, *, why_no_domain: str = "",
             sample: Callable[[], float] = random.random) -> DmarcCheck:
    """DMARC of the ``From`` domain given this message's SPF and DKIM results. A pass
    needs SPF or DKIM to pass for an identifier aligned with the ``From`` domain; a
    temporary error of a check that could have made it pass, or of the record lookup, is
    ``temperror``. ``sample`` draws the ``pct=`` sampling (a float in [0, 1)). Blocking
    (one or two TXT lookups)."""
    if from_domain is None:
        return DmarcCheck(DmarcResult.PERMERROR, None, explanation=why_no_domain)
    try:
        record = find_record(from_domain, resolver)
    except DnsTemporaryError as error:
        return DmarcCheck(DmarcResult.TEMPERROR, from_domain, explanation=error.message)

    aspf = record.aspf if record else Alignment.RELAXED
    adkim = record.adkim if record else Alignment.RELAXED
    spf_domain_aligned = aligned(spf.domain, from_domain, aspf)
    aligned_spf = spf.result is SpfResult.PASS and spf_domain_aligned
    aligned_dkim = next((s.domain for s in signatures
                         if s.result is DkimResult.PASS and aligned(s.domain, from_domain, adkim)),
                        None)
    policy = None
    if record is not None:
        subdomain = record.domain != from_domain
        policy = (record.subdomain_policy or record.policy) if subdomain else record.policy

    if aligned_spf or aligned_dkim:
        how = (f"DKIM signature of {aligned_dkim}" if aligned_dkim
               else f"SPF pass for {spf.domain}")
        return DmarcCheck(DmarcResult.PASS if record else DmarcResult.NONE, from_domain, record,
                          policy, Disposition.NONE, aligned_spf, aligned_dkim,
                          f"aligned {how}")

    # Only a check that could have made DMARC pass makes its outcome unknown.
    temporary = ([f"SPF of {spf.domain}: {spf.explanation}"]
                 if spf.result is SpfResult.TEMPERROR and spf_domain_aligned else [])
    temporary += [f"DKIM key {s.selector}._domainkey.{s.domain}: {s.explanation}"
                  for s in signatures
                  if s.result is DkimResult.TEMPERROR and aligned(s.domain, from_domain, adkim)]
    failures = _failures(from_domain, spf, signatures, aspf, adkim)
    if temporary:
        return DmarcCheck(DmarcResult.TEMPERROR, from_domain, record, policy,
                          explanation="; ".join(temporary))
    if record is None or policy is None:
        return DmarcCheck(DmarcResult.NONE, from_domain, explanation=failures)
    disposition = policy
    if record.pct < 100 and sample() * 100 >= record.pct:
        disposition = _LESS_STRICT[policy]  # section 6.6.4: not sampled, one step down
    return DmarcCheck(DmarcResult.FAIL, from_domain, record, policy, disposition,
                      explanation=failures)


def _failures(from_domain: str, spf: SpfCheck, signatures: tuple[DkimSignature, ...],
              aspf: Alignment, adkim: Alignment) -> str:
    """Why neither identifier aligned, in words an SMTP reply can carry."""
    if spf.result is SpfResult.PASS:
        spf_text = (f"SPF passes for {spf.domain or 'no domain'}, which is not aligned with "
                    f"{from_domain}" + (" (strict)" if aspf is Alignment.STRICT else ""))
    else:
        spf_text = f"SPF {spf.result} for {spf.domain or 'an empty sender'}"
    passing = [s.domain for s in signatures if s.result is DkimResult.PASS]
    if passing:
        dkim_text = (f"DKIM passes only for {', '.join(sorted(set(passing)))}, not aligned with "
                     f"{from_domain}" + (" (strict)" if adkim is Alignment.STRICT else ""))
    elif signatures:
        dkim_text = "DKIM signature " + ", ".join(
            f"of {s.domain or 'no domain'} {s.result}" for s in signatures)
    else:
        dkim_text = "no DKIM signature"
    return f"{spf_text}; {dkim_text}"
