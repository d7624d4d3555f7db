"""Reply and forward prefixes of subjects (``RE:``, ``AW:``, ``Fwd:``, ``WG:``...); pure.

One table of the prefixes mail clients write, each with who writes it. Sources: the
reply prefixes Thunderbird recognises per locale (``mailnews.localizedRe`` in the
``messenger-region/region.properties`` of the ``thunderbird-l10n-*`` language packs
Debian ships, 153 ESR: de ``AW,Aw``, da/nb-no ``SV``, sv-se ``Sv``, fi ``VS,SV``, hu
``Aw,SV,Vá``, it ``R``, pl ``Odp,Odp.``, tr ``YNT,Yan``), which are the prefixes of the
localized Outlooks; the per-client forward prefixes of crisp's ``email-forward-parser``
(``regexs.SUBJECT``: Outlook Live/365, New Outlook, Outlook 2019, Gmail, Yahoo,
Thunderbird, Missive by locale). Entries marked "corpus" come from the forwards of
``tests/emails/`` and earlier tables, with no client string found for them.
Matching folds case (Python's folding also pairs ``İ``/``ı`` with ``i``/``I``).
"""

from __future__ import annotations

import re

# (prefix, who writes it). A reply prefix is one a reply starts with.
REPLY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("re", "every client (RFC 5322 3.6.5 names it)"),
    ("aw", "Outlook de (Antwort): Thunderbird de, hu"),
    ("sv", "Outlook da, nb, sv (svar): Thunderbird da, fi, hu, nb-no, sv-se"),
    ("antw", "Outlook nl (Antwoord): corpus"),
    ("odp", "Outlook pl (Odpowiedź): Thunderbird pl"),
    ("odp.", "Thunderbird pl"),
    ("r", "Outlook it (Risposta): Thunderbird it"),
    ("ris", "Italian clients (Risposta): corpus"),
    ("rif", "Italian clients (Riferimento): corpus"),
    ("res", "Outlook pt-BR (Resposta): corpus"),
    ("ynt", "Outlook tr (Yanıt): Thunderbird tr"),
    ("yan", "Thunderbird tr"),
    ("yanıt", "Turkish clients: corpus"),
    ("vá", "Outlook hu (Válasz): Thunderbird hu"),
    ("válasz", "Hungarian clients: corpus"),
    ("отв", "Russian clients (Ответ): corpus"),
    ("ответ", "Russian clients: corpus"),
)
# Finnish Outlook's reply is also "VS:" (vastaus), but Danish and Norwegian forwards
# are far more common: it counts as a forward.
FORWARD_PREFIXES: tuple[tuple[str, str], ...] = (
    ("fwd", "Gmail (all locales), Thunderbird (all locales), Missive"),
    ("fw", "Outlook Live/365 cs, en, hr, hu, nl, pt, sk; Outlook 2019 (all); Yahoo (all)"),
    ("fwrd", "corpus"),
    ("tr", "Outlook fr (transférer)"),
    ("wg", "Outlook de (weitergeleitet)"),
    ("rv", "Outlook es (reenviado)"),
    ("enc", "Outlook pt-BR (encaminhado)"),
    ("i", "Outlook it (inoltrato)"),
    ("doorst", "Outlook nl desktop (doorgestuurd): corpus"),
    ("pd", "Outlook pl (przekazanie dalej)"),
    ("vs", "Outlook da, Outlook Live/365 nb (videresendt)"),
    ("vb", "Outlook sv (vidarebefordrat)"),
    ("vl", "New Outlook fi (välitetty)"),
    ("tov", "Outlook hu desktop: corpus"),
    ("továbbítás", "Outlook hu: corpus"),
    ("пересл", "Russian clients (Переслано): corpus"),
    ("переслать", "Russian clients: corpus"),
    ("ilet", "Outlook tr (İlet): corpus"),
    ("ilt", "New Outlook tr (İLT)"),
    ("redir.", "Outlook Live/365 ro (redirecționat)"),
    ("videresend", "New Outlook nb"),
)


def _alternatives(prefixes: tuple[tuple[str, str], ...]) -> str:
    # Longest first, so that a prefix is never cut short by one that begins it.
    words = sorted((word for word, _ in prefixes), key=lambda w: (-len(w), w))
    return "|".join(re.escape(word) for word in words)


_REPLY = _alternatives(REPLY_PREFIXES)
_FORWARD = _alternatives(FORWARD_PREFIXES)
# A counted prefix: "Fwd[2]:", "Re(2):", "RE^2:".
_NUMBER = r"(?:\s*(?:\[\d+\]|\(\d+\)|\^\d+))?"
_PREFIX_CHAIN = re.compile(
    rf"^\s*(?:(?:{_FORWARD}|{_REPLY}){_NUMBER}\s*[:：]\s*)+", re.IGNORECASE
)
_FORWARD_CHAIN = re.compile(rf"^\s*(?:(?:{_FORWARD}){_NUMBER}\s*[:：]\s*)+", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(rf"(?:^|[:：]\s*)(?:{_FORWARD}){_NUMBER}\s*[:：]", re.IGNORECASE)
REPLY_PREFIX = re.compile(rf"^\s*(?:{_REPLY}){_NUMBER}\s*[:：]", re.IGNORECASE)
_BRACKETED = re.compile(r"^\s*\[(?:fwd|fw)\s*:\s*(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_LEADING_FORWARD_PREFIX = re.compile(rf"^\s*(?:{_FORWARD}){_NUMBER}\s*[:：]", re.IGNORECASE)
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)


def strip_prefixes(subject: str) -> str:
    """``subject`` without its leading chain of reply and forward prefixes, stripped:
    ``RE: AW: Fwd: Pricing`` -> ``Pricing``. Never raises."""
    return _PREFIX_CHAIN.sub("", subject).strip()


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
