"""DKIM signatures (RFC 6376) and the ARC chain (RFC 8617), verified with dkimpy.

Keys are looked up through our resolver (dkimpy's ``dnsfunc``). dkimpy turns its own DNS
errors into a plain "did not verify"; ours propagate instead, so that a timeout is a
``temperror`` and never a ``fail``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import dkim
import dkim.util

from core.sender_auth._headers import Headers, parse_results_value
from core.sender_auth._names import aligned, normalize_domain
from core.sender_auth.resolver import DnsTemporaryError, Resolver
from core.sender_auth.types import Alignment, ArcCheck, ArcResult, DkimResult, DkimSignature

# A message may carry any number of signatures; each costs a DNS lookup and an RSA
# verification. Past this many, the rest are not looked at.
MAX_SIGNATURES = 8
# The key lookups of one message's signatures wait at most this many lookup lifetimes.
DNS_BUDGET_LIFETIMES = 2
MIN_KEY_BITS = 1024
_log = logging.getLogger(__name__)


def _dnsfunc(resolver: Resolver, deadline: float | None = None) -> Callable[..., bytes | None]:
    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace")
        if deadline is not None and time.monotonic() > deadline:
            raise DnsTemporaryError(f"DNS lookup of {text} TXT not made: this message's "
                                    "DNS time for signatures is used up")
        records = resolver.txt(text)
        return records[0] if records else None
    return txt


def _tag(tags: dict[bytes, bytes], key: bytes) -> str:
    return tags.get(key, b"").decode("ascii", "replace").strip().lower()


def verify_dkim(raw: bytes, headers: Headers, resolver: Resolver,
                from_domain: str | None = None) -> tuple[DkimSignature, ...]:
    """Each ``DKIM-Signature`` of the message (the first :data:`MAX_SIGNATURES`), verified,
    in header order. Those of a domain aligned (relaxed) with ``from_domain`` are verified
    first, and the key lookups of the others share what is left of a budget of
    :data:`DNS_BUDGET_LIFETIMES` lookup lifetimes: signatures of domains whose servers
    never answer cannot hold the check for minutes. Blocking: key lookups and RSA."""
    if not headers.all("DKIM-Signature"):
        return ()
    unparsable = ""
    try:
        verifier = dkim.DKIM(raw, logger=_log, minkey=MIN_KEY_BITS)
    except dkim.DKIMException as error:  # a header section dkimpy cannot parse
        verifier, unparsable = None, str(error)
    if verifier is None:
        values = [value.encode("utf-8", "surrogateescape")
                  for value in headers.all("DKIM-Signature")[:MAX_SIGNATURES]]
    else:
        # The signatures as dkimpy counts them: index i below is its i-th signature, so
        # the domain reported is always the one that was verified.
        values = [value for name, value in verifier.headers
                  if name.lower() == b"dkim-signature"][:MAX_SIGNATURES]
    names = [_signer(value) for value in values]
    order = sorted(range(len(values)), key=lambda index: not (
        from_domain and aligned(names[index][0], from_domain, Alignment.RELAXED)))
    deadline = time.monotonic() + DNS_BUDGET_LIFETIMES * resolver.config.lifetime
    dnsfunc = _dnsfunc(resolver, deadline)
    results: dict[int, DkimSignature] = {}
    for index in order:
        domain, selector = names[index]
        if verifier is None:
            results[index] = DkimSignature(DkimResult.PERMERROR, domain, selector, unparsable)
            continue
        try:
            ok = verifier.verify(index, dnsfunc=dnsfunc)
        except DnsTemporaryError as error:
            results[index] = DkimSignature(DkimResult.TEMPERROR, domain, selector, error.message)
            continue
        except dkim.DKIMException as error:
            # A changed body is a signature that does not verify (fail); anything else
            # dkimpy raises for is a malformed or unusable signature or key (permerror).
            changed = str(error).startswith("body hash mismatch")
            results[index] = DkimSignature(DkimResult.FAIL if changed else DkimResult.PERMERROR,
                                           domain, selector,
                                           "the body changed after signing" if changed
                                           else str(error))
            continue
        results[index] = DkimSignature(DkimResult.PASS if ok else DkimResult.FAIL,
                                       domain, selector,
                                       "" if ok else "signature or body hash did not verify")
    return tuple(results[index] for index in range(len(values)))


def _signer(value: bytes) -> tuple[str, str]:
    """A signature's ``d=`` and ``s=``, read without verifying anything."""
    try:
        tags = dkim.util.parse_tag_value(value)
    except dkim.util.InvalidTagValueList:
        tags = {}
    return _tag(tags, b"d"), _tag(tags, b"s")


def _trusted(sealer: str, trusted_sealers: Iterable[str]) -> bool:
    return any(sealer == entry or sealer.endswith("." + entry)
               for entry in map(normalize_domain, trusted_sealers) if entry)


def _vouches(aar_value: str, from_domain: str) -> bool:
    """The sealer's ``ARC-Authentication-Results`` say the message reached it
    authenticated for ``from_domain``: dmarc=pass for it, or an aligned dkim/spf pass."""
    _instance, _, value = aar_value.partition(";")
    parsed = parse_results_value(value)
    if parsed is None:
        return False
    for method, result, properties in parsed.results:
        if result != "pass":
            continue
        if method == "dmarc" and aligned(properties.get("header.from", ""), from_domain,
                                         Alignment.STRICT):
            return True
        if method == "dkim" and aligned(properties.get("header.d", ""), from_domain,
                                        Alignment.RELAXED):
            return True
        if method == "spf" and aligned(properties.get("smtp.mailfrom", "").rpartition("@")[2],
                                       from_domain, Alignment.RELAXED):
            return True
    return False


def _newest_seal(headers: Headers) -> tuple[int, str, int]:
    """The newest ``ARC-Seal``'s instance and domain, read without verifying anything,
    and how many seals there are."""
    newest, domain = 0, ""
    seals = headers.all("ARC-Seal")
    for value in seals:
        try:
            tags = dkim.util.parse_tag_value(value.encode("utf-8", "surrogateescape"))
            instance = int(tags.get(b"i", b"0"))
        except (dkim.util.InvalidTagValueList, ValueError):
            continue
        if instance > newest:
            newest, domain = instance, normalize_domain(_tag(tags, b"d"))
    return newest, domain, len(seals)


def verify_arc(raw: bytes, headers: Headers, resolver: Resolver, from_domain: str | None,
               trusted_sealers: Iterable[str]) -> ArcCheck:
    """The ARC chain, and whether its newest sealer vouches for the ``From`` domain.

    Only a chain whose newest seal is by a trusted sealer can change anything, so only
    such a chain is validated (its key lookups within :data:`DNS_BUDGET_LIFETIMES`); any
    other is reported ``none``, with its sealer, unvalidated: fifty instances of an
    attacker's keys cost no DNS. Blocking: key lookups and RSA."""
    newest, sealer, count = _newest_seal(headers)
    if not count:
        return ArcCheck(ArcResult.NONE)
    if not (sealer and from_domain and _trusted(sealer, trusted_sealers)):
        return ArcCheck(ArcResult.NONE, sealer or None, count,
                        explanation=f"not validated: {sealer or 'the sealer'} is not a "
                                    "trusted ARC sealer")
    deadline = time.monotonic() + DNS_BUDGET_LIFETIMES * resolver.config.lifetime
    try:
        cv, instances, explanation = dkim.arc_verify(
            raw, logger=_log, dnsfunc=_dnsfunc(resolver, deadline), minkey=MIN_KEY_BITS)
    except DnsTemporaryError as error:
        return ArcCheck(ArcResult.TEMPERROR, sealer, count, explanation=error.message)
    except dkim.DKIMException as error:  # a header section dkimpy cannot parse
        return ArcCheck(ArcResult.FAIL, sealer, count, explanation=str(error))
    verified = (normalize_domain(instances[0].get("as-domain", b"").decode("ascii", "replace"))
                if instances else "")
    if cv != dkim.CV_Pass or verified != sealer:
        # cv is None when a seal of the chain itself said cv=fail: the chain is over.
        return ArcCheck(ArcResult.FAIL, sealer, count, explanation=str(explanation))
    vouched = False
    for value in headers.all("ARC-Authentication-Results"):
        instance = value.partition(";")[0].strip().lower().replace(" ", "")
        if instance == f"i={newest}" and _vouches(value, from_domain):
            vouched = True
            break
    return ArcCheck(ArcResult.PASS, sealer, count, vouched,
                    "chain validated" + ("; the trusted sealer vouches for the From domain"
                                         if vouched else ""))
