"""The results of sender authentication: what was checked, what it gave, and why.

Each check's outcome is an enum whose values are the RFC 8601 result keywords, so a
stored result reads like an ``Authentication-Results`` header. Everything is frozen: a
result is computed once per message and then only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SpfResult(StrEnum):
    """RFC 7208 section 2.6."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DkimResult(StrEnum):
    """RFC 8601 section 2.7.1 (``policy`` and ``neutral`` are not produced here)."""

    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DmarcResult(StrEnum):
    """RFC 7489 section 11.2: ``none`` means the domain publishes no (usable) record."""

    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class ArcResult(StrEnum):
    """RFC 8617 chain validation status; ``temperror`` when a key lookup failed."""

    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"


class Alignment(StrEnum):
    """RFC 7489 section 3.1: relaxed compares organizational domains, strict the names."""

    RELAXED = "r"
    STRICT = "s"


class Disposition(StrEnum):
    """A DMARC policy (``p=``/``sp=``) and the disposition it asks for."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class AuthSource(StrEnum):
    """Where a result comes from: checked here, or read from a trusted upstream's
    ``Authentication-Results`` header."""

    CHECKED = "checked"
    UPSTREAM = "upstream"


@dataclass(frozen=True)
class SmtpFacts:
    """What the SMTP session knows about the sender: the client address, the HELO/EHLO
    name and the envelope sender (``""`` for the null sender of a bounce)."""

    client_ip: str
    helo: str
    mail_from: str


@dataclass(frozen=True)
class SpfCheck:
    """SPF of one identity: ``mfrom`` (the envelope sender's domain) or ``helo`` (when the
    envelope sender is null, RFC 7208 section 2.4)."""

    result: SpfResult
    domain: str
    scope: str = "mfrom"
    explanation: str = ""


@dataclass(frozen=True)
class DkimSignature:
    """One ``DKIM-Signature`` and its verification."""

    result: DkimResult
    domain: str
    selector: str
    explanation: str = ""


@dataclass(frozen=True)
class DmarcRecord:
    """A parsed ``_dmarc`` TXT record (RFC 7489 section 6.3); ``domain`` is where it was
    found: the author domain itself or its organizational domain."""

    domain: str
    policy: Disposition
    subdomain_policy: Disposition | None = None
    pct: int = 100
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED


@dataclass(frozen=True)
class DmarcCheck:
    """DMARC of the header ``From`` domain. ``policy`` is the one that applies to this
    domain (``sp=`` for a subdomain covered by its organizational record), ``disposition``
    what is asked for this message once ``pct=`` sampling is applied (``none`` on a
    pass). ``aligned_spf``/``aligned_dkim`` tell which identifier, if any, aligned; they are
    computed even without a record (relaxed), because the portal-user rule needs them."""

    result: DmarcResult
    from_domain: str | None
    record: DmarcRecord | None = None
    policy: Disposition | None = None
    disposition: Disposition = Disposition.NONE
    aligned_spf: bool = False
    aligned_dkim: str | None = None
    explanation: str = ""


@dataclass(frozen=True)
class ArcCheck:
    """The ARC chain. ``sealer`` is the domain of the newest ``ARC-Seal``; ``vouched`` is
    true when the chain passes, that sealer is one the operator trusts, and its
    ``ARC-Authentication-Results`` say the message arrived there authenticated for the
    ``From`` domain (RFC 8617 section 7.2: a local policy override of a DMARC failure)."""

    result: ArcResult
    sealer: str | None = None
    instances: int = 0
    vouched: bool = False
    explanation: str = ""


@dataclass(frozen=True)
class AuthResult:
    """Sender authentication of one message, as kept on the email (``auth``)."""

    source: AuthSource
    spf: SpfCheck
    dkim: tuple[DkimSignature, ...]
    dmarc: DmarcCheck
    arc: ArcCheck
    reason: str
    authserv_id: str | None = None  # the trusted upstream's, for AuthSource.UPSTREAM

    @property
    def dkim_result(self) -> DkimResult:
        """One DKIM outcome: pass if any signature passed, else the worst of the rest."""
        results = {signature.result for signature in self.dkim}
        for outcome in (DkimResult.PASS, DkimResult.TEMPERROR, DkimResult.FAIL,
                        DkimResult.PERMERROR):
            if outcome in results:
                return outcome
        return DkimResult.NONE

    @property
    def authenticated(self) -> bool:
        """The ``From`` domain is proven: DMARC passes, or a trusted ARC sealer vouches."""
        return self.dmarc.result is DmarcResult.PASS or self.arc.vouched

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the email's ``auth`` column and API field): the outcome of
        each check, the domains they concern, the domain's policy and the reason."""
        record = self.dmarc.record
        return {
            "source": str(self.source),
            "authserv_id": self.authserv_id,
            "spf": {"result": str(self.spf.result), "domain": self.spf.domain,
                    "scope": self.spf.scope},
            "dkim": {"result": str(self.dkim_result),
                     "signatures": [{"result": str(s.result), "domain": s.domain,
                                     "selector": s.selector} for s in self.dkim]},
            "dmarc": {"result": str(self.dmarc.result), "from_domain": self.dmarc.from_domain,
                      "policy": None if self.dmarc.policy is None else str(self.dmarc.policy),
                      "disposition": str(self.dmarc.disposition),
                      "record_domain": None if record is None else record.domain,
                      "pct": None if record is None else record.pct},
            "arc": {"result": str(self.arc.result), "sealer": self.arc.sealer,
                    "vouched": self.arc.vouched},
            "reason": self.reason,
        }
