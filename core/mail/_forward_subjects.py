"""Forward and reply prefixes of subjects (``Fwd:``, ``WG:``, ``TR:``, ``RE:``...); pure."""

from __future__ import annotations

import re

_FORWARD_PREFIXES = (
    r"fwd|fw|fwrd|tr|wg|rv|enc|i|doorst|pd|vs|vb|vl|tov|továbbítás|пересл|переслать"
    r"|ilet|İlet|İLET|ilt|İlt|İLT|redir\.|videresend"
)
_REPLY_PREFIXES = r"re|aw|sv|antw|odp|r|ris|rif|res|ynt|yanıt|válasz|vá|отв|ответ"
_NUMBER = r"(?:\s*(?:\[\d+\]|\(\d+\)|\^\d+))?"
_PREFIX_CHAIN = re.compile(
    rf"^\s*(?:(?:{_FORWARD_PREFIXES}|{_REPLY_PREFIXES}){_NUMBER}\s*[:：]\s*)+", re.IGNORECASE
)
_FORWARD_CHAIN = re.compile(rf"^\s*(?:(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]\s*)+", re.I)
_FORWARD_PREFIX = re.compile(rf"(?:^|[:：]\s*)(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]", re.I)
REPLY_PREFIX = re.compile(rf"^\s*(?:{_REPLY_PREFIXES}){_NUMBER}\s*[:：]", re.IGNORECASE)
_BRACKETED = re.compile(r"^\s*\[(?:fwd|fw)\s*:\s*(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_LEADING_FORWARD_PREFIX = re.compile(rf"^\s*(?:{_FORWARD_PREFIXES}){_NUMBER}\s*[:：]", re.I)
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)


def strip_forward_prefixes(subject: str) -> str:
    """``subject`` without its leading chain of forward prefixes.

    Handles ``Fwd:/Fw:/TR:/WG:/RV:/ENC:/I:/Doorst:/PD:/VS:/VB:/VL:/Továbbítás:/
    Пересл:/İlet:``, counted forms (``Fwd[2]:``), ``[Fwd: ...]`` and a trailing
    ``(fwd)``. A reply prefix ends the chain: ``FW: RE: Pricing`` was the original's
    ``RE: Pricing``, and that is its subject. Never raises.
    """
    previous = None
    while previous != subject:
        previous = subject
        subject = _FORWARD_CHAIN.sub("", subject)
        bracketed = _BRACKETED.match(subject)
        if bracketed is not None:
            subject = bracketed.group(1)
        subject = _FWD_SUFFIX.sub("", subject)
    return subject.strip()


def is_forward_subject(subject: str) -> bool:
    """Whether ``subject`` carries a forward marker (a reply prefix alone is not one)."""
    chain = _PREFIX_CHAIN.match(subject)
    head = chain.group(0) if chain else ""
    return bool(
        _FORWARD_PREFIX.search(head) or _BRACKETED.match(subject) or _FWD_SUFFIX.search(subject)
    )


def starts_with_forward_prefix(subject: str) -> bool:
    """Whether ``subject``'s first prefix is a forward one (``FW: RE: x``, not ``RE: FW: x``)."""
    return _LEADING_FORWARD_PREFIX.match(subject) is not None
