"""Sender authentication: SPF, DKIM, ARC and DMARC of inbound mail, and what a portal's
``sender_auth`` policy makes of them. Pure logic plus DNS: no database, no adapters.

    authenticator = SenderAuthenticator(SenderAuthConfig(dns=DnsConfig(...)))
    result = await authenticator.check_async(raw, SmtpFacts(client_ip, helo, mail_from))
    decision = decide(result, SenderAuthPolicy.ENFORCE, Claim.PORTAL_USER)

docs/sender-auth.md has the decision table and how it is wired into SMTP ingest.
"""

from core.sender_auth.authenticate import SenderAuthConfig, SenderAuthenticator
from core.sender_auth.decision import (
    Action,
    Claim,
    Decision,
    FailedCheck,
    SenderAuthPolicy,
    SmtpAnswer,
    decide,
)
from core.sender_auth.resolver import DnsConfig, DnsTemporaryError, Nameserver, Resolver
from core.sender_auth.types import (
    Alignment,
    ArcCheck,
    ArcResult,
    AuthResult,
    AuthSource,
    Disposition,
    DkimResult,
    DkimSignature,
    DmarcCheck,
    DmarcRecord,
    DmarcResult,
    SmtpFacts,
    SpfCheck,
    SpfResult,
)

__all__ = [
    "Action",
    "Alignment",
    "ArcCheck",
    "ArcResult",
    "AuthResult",
    "AuthSource",
    "Claim",
    "Decision",
    "Disposition",
    "DkimResult",
    "DkimSignature",
    "DmarcCheck",
    "DmarcRecord",
    "DmarcResult",
    "DnsConfig",
    "DnsTemporaryError",
    "FailedCheck",
    "Nameserver",
    "Resolver",
    "SenderAuthConfig",
    "SenderAuthPolicy",
    "SenderAuthenticator",
    "SmtpAnswer",
    "SmtpFacts",
    "SpfCheck",
    "SpfResult",
    "decide",
]
