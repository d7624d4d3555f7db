"""What a portal's ``sender_auth`` policy makes of an authentication result.

Two claims are judged. Mail **from a portal user** is logged as that user's: under
``enforce`` it needs its ``From`` domain proven (DMARC pass, or a trusted ARC sealer's
word; with no DMARC record, SPF or DKIM passing for an aligned domain), else it is refused
with ``550 5.7.1`` naming the check that failed. A **reply from a contact** is logged
either way, but under ``enforce`` one that fails DMARC of a domain asking for
``quarantine`` or ``reject`` is not attached to a thread. A DNS failure that leaves the
outcome open is ``451 4.7.0`` under ``enforce``: never a silent pass. ``monitor`` accepts
everything and says what ``enforce`` would have done; ``off`` checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.sender_auth.types import ArcResult, AuthResult, Disposition, DmarcResult


class SenderAuthPolicy(StrEnum):
    OFF = "off"
    MONITOR = "monitor"
    ENFORCE = "enforce"


class Claim(StrEnum):
    """Whom the message claims to be from, as the sender check found it."""

    PORTAL_USER = "portal_user"
    CONTACT = "contact"


class Action(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"  # 550 5.7.1
    TEMPFAIL = "tempfail"  # 451 4.7.0
    DETACH = "detach"  # log it, but attach it to no thread


class FailedCheck(StrEnum):
    DMARC = "dmarc"
    SPF_AND_DKIM = "spf+dkim"  # no DMARC record: neither passed for an aligned domain
    FROM = "from"  # no single From domain to check
    DNS = "dns"


@dataclass(frozen=True)
class SmtpAnswer:
    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"


@dataclass(frozen=True)
class Decision:
    """``action`` is what to do now. ``answer`` is the SMTP reply to send, only for
    ``refuse``/``tempfail``. Under ``monitor``, ``action`` is ``accept`` and
    ``would`` is what ``enforce`` would have done (``failed_check`` and ``reason`` say
    why), for the ingest log."""

    action: Action
    reason: str
    failed_check: FailedCheck | None = None
    answer: SmtpAnswer | None = None
    would: Action | None = None

    @property
    def attach_to_thread(self) -> bool:
        return self.action is Action.ACCEPT


# SMTP reply lines are 512 octets at most (RFC 5321 section 4.5.3.1.5), ASCII.
_MAX_TEXT = 400


def _text(text: str) -> str:
    text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _refuse(check: FailedCheck, text: str) -> Decision:
    return Decision(Action.REFUSE, text, check, SmtpAnswer(550, "5.7.1", _text(text)))


def _tempfail(text: str) -> Decision:
    text = f"{text}; try again later"
    return Decision(Action.TEMPFAIL, text, FailedCheck.DNS, SmtpAnswer(451, "4.7.0", _text(text)))


def _enforce(result: AuthResult, claim: Claim) -> Decision:
    dmarc, arc = result.dmarc, result.arc
    domain = dmarc.from_domain or "the From domain"
    policy = f" (p={dmarc.policy})" if dmarc.policy else ""
    if result.authenticated:
        return Decision(Action.ACCEPT, result.reason)
    if dmarc.result is DmarcResult.TEMPERROR:
        if claim is Claim.PORTAL_USER or dmarc.policy is not Disposition.NONE:
            return _tempfail(f"Sender authentication of {domain} could not be completed: "
                             f"{dmarc.explanation}")
        return Decision(Action.ACCEPT, result.reason)
    enforceable = (dmarc.result is DmarcResult.FAIL
                   and dmarc.disposition in (Disposition.QUARANTINE, Disposition.REJECT))
    if arc.result is ArcResult.TEMPERROR and (claim is Claim.PORTAL_USER or enforceable):
        return _tempfail(f"The ARC chain of this message could not be checked: "
                         f"{arc.explanation}")

    if claim is Claim.CONTACT:
        if enforceable:
            text = (f"DMARC check failed for {domain}{policy}: {dmarc.explanation}; "
                    "not attached to a thread")
            return Decision(Action.DETACH, text, FailedCheck.DMARC)
        return Decision(Action.ACCEPT, result.reason)

    if dmarc.result is DmarcResult.PERMERROR:
        return _refuse(FailedCheck.FROM,
                       f"Sender authentication failed: {dmarc.explanation or 'no From domain'}")
    if dmarc.result is DmarcResult.NONE:
        if dmarc.aligned_spf or dmarc.aligned_dkim:
            return Decision(Action.ACCEPT, result.reason)
        return _refuse(FailedCheck.SPF_AND_DKIM,
                       f"SPF and DKIM checks failed for {domain} (no DMARC record): "
                       f"{dmarc.explanation}")
    return _refuse(FailedCheck.DMARC,
                   f"DMARC check failed for {domain}{policy}: {dmarc.explanation}")


def decide(result: AuthResult | None, policy: SenderAuthPolicy, claim: Claim) -> Decision:
    """The portal's answer to a message. ``result`` is ``None`` when nothing was checked
    (the policy is ``off``, or the client is on a trusted network and no trusted upstream
    reported): then the message is accepted. Pure."""
    if policy is SenderAuthPolicy.OFF:
        return Decision(Action.ACCEPT, "sender authentication is off for this portal")
    if result is None:
        return Decision(Action.ACCEPT, "not checked: local submission from a trusted network")
    enforced = _enforce(result, claim)
    if policy is SenderAuthPolicy.ENFORCE:
        return enforced
    return Decision(Action.ACCEPT, enforced.reason, enforced.failed_check,
                    would=enforced.action)
