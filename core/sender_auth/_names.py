"""Domain names as DMARC compares them: lower case, no trailing dot, A-labels."""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList

from core.sender_auth.types import Alignment


@cache
def _public_suffixes() -> PublicSuffixList:
    # The list the package ships (ICANN and private sections), never fetched at run time.
    # An unknown TLD (.test) is one label, as the list's default rule says.
    return PublicSuffixList()


def normalize_domain(domain: str) -> str:
    """``Example.COM.`` -> ``example.com``; a U-label becomes its A-label; ``""`` when
    the name cannot be a domain."""
    domain = domain.strip().rstrip(".").lower()
    if not domain or domain.startswith("[") or any(not label for label in domain.split(".")):
        return ""
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return ""


def organizational_domain(domain: str) -> str:
    """RFC 7489 section 3.2: the public suffix plus one label (``a.b.example.co.uk`` ->
    ``example.co.uk``); a public suffix itself is its own."""
    domain = normalize_domain(domain)
    if not domain:
        return ""
    return _public_suffixes().privatesuffix(domain) or domain


def aligned(identifier: str, author: str, mode: Alignment) -> bool:
    """RFC 7489 section 3.1: strict needs the same name, relaxed the same organizational
    domain."""
    identifier, author = normalize_domain(identifier), normalize_domain(author)
    if not identifier or not author:
        return False
    if mode is Alignment.STRICT:
        return identifier == author
    return organizational_domain(identifier) == organizational_domain(author)
